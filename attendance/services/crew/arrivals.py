"""The live arrivals board: who is expected, on site (and how that was proven), late, on their
way, not coming, a no-show, and who was invited from standby. Reads only, in two queries
however big the crew (a 2,000-person festival refreshes it every few seconds)."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import Attendance, Event, EventCrew
from attendance.models.events import PROVEN, proof_in_words

# The board's states, in the order a crew chief reads them: the gaps first.
STATES = {
    "no_show": "No-show",
    "cant": "Can't make it",
    "late": "Late",
    "on_way": "On my way",
    "expected": "Expected",
    "on_site": "On site",
    "left": "Checked out",
    "standby": "Invited, no answer yet",
}


@dataclass(frozen=True)
class Arrival:
    crew_id: int
    name: str
    role: str
    call: datetime
    state: str
    checked_in: datetime | None
    proof: str
    proven: bool
    answered_at: datetime | None


def _state(invited: bool, row: tuple | None, call: datetime, ends: datetime, now: datetime) -> str:
    """The member's state on the board, from their assignment and attendance row."""
    if invited:
        return "standby"
    check_in_at, check_out_at, answer = (row[0], row[1], row[5]) if row else (None, None, "")
    if check_in_at is not None:
        return "left" if check_out_at is not None else "on_site"
    closes = min(call + timedelta(minutes=settings.CHECKIN_CLOSES_MINUTES_AFTER), ends)
    if answer == Attendance.Arrival.CANT_COME:
        return "cant"
    if now > closes:
        return "no_show"
    if answer == Attendance.Arrival.ON_MY_WAY:
        return "on_way"
    if now > call + timedelta(minutes=settings.ATTENDANCE_GRACE_MINUTES):
        return "late"
    return "expected"


@dataclass(frozen=True)
class Board:
    event: Event
    now: datetime
    arrivals: list[Arrival]

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(arrival.state for arrival in self.arrivals)
        return {state: counted.get(state, 0) for state in STATES}

    @property
    def roles(self) -> list[dict]:
        """Per role: confirmed crew, on site (or left), and still missing."""
        per_role: dict[str, Counter] = {}
        for arrival in self.arrivals:
            if arrival.state == "standby":
                continue
            counter = per_role.setdefault(arrival.role, Counter())
            counter["crew"] += 1
            counter["here"] += arrival.state in ("on_site", "left")
        return [
            {"role": role, "crew": c["crew"], "here": c["here"], "missing": c["crew"] - c["here"]}
            for role, c in sorted(per_role.items())
        ]


def arrivals_board(event: Event, *, now: datetime | None = None) -> Board:
    now = now or timezone.now()
    crew = list(
        EventCrew.objects.filter(event=event)
        .filter(
            Q(status__in=[EventCrew.Status.CONFIRMED, EventCrew.Status.COMPLETED])
            # Invited and not answered yet: on the day, a place being filled (from standby).
            | Q(status=EventCrew.Status.INVITED, invitation_sent=True)
        )
        .values_list(
            "pk",
            "status",
            "call_time",
            "role__name",
            "user__first_name",
            "user__last_name",
            "user__username",
            "user_id",
        )
    )
    # Tuples, not model instances: a festival's 2,000 rows every five seconds.
    attendance = {
        row[0]: row[1:]
        for row in Attendance.objects.filter(event=event).values_list(
            "user_id",
            "check_in_at",
            "check_out_at",
            "check_in_method",
            "check_in_flag",
            "check_in_distance_m",
            "arrival_answer",
            "arrival_answer_at",
        )
    }
    invited = EventCrew.Status.INVITED
    arrivals = []
    for pk, status, call_time, role, first, last, username, user_id in crew:
        call = call_time or event.call_time
        row = attendance.get(user_id)
        checked_in = row[0] if row else None
        method, flag = (row[2], row[3]) if row else ("", "")
        arrivals.append(
            Arrival(
                crew_id=pk,
                name=f"{first} {last}".strip() or username,
                role=role,
                call=call,
                state=_state(status == invited, row, call, event.ends_at, now),
                checked_in=checked_in,
                proof=proof_in_words(method, flag, row[4]) if checked_in and row else "",
                proven=method in PROVEN and not flag,
                answered_at=row[6] if row else None,
            )
        )
    order = list(STATES)
    arrivals.sort(key=lambda a: (order.index(a.state), a.call, a.role, a.name))
    return Board(event=event, now=now, arrivals=arrivals)


def board_json(board: Board) -> dict:
    """What the board's page fetches every few seconds."""
    local = timezone.localtime
    hh_mm = lru_cache(maxsize=None)(lambda moment: local(moment).strftime("%H:%M"))
    return {
        "at": local(board.now).strftime("%H:%M:%S"),
        "counts": board.counts,
        "labels": STATES,
        "roles": board.roles,
        "rows": [
            {
                "id": a.crew_id,
                "name": a.name,
                "role": a.role,
                "call": hh_mm(a.call),  # most of a crew share a call time
                "state": a.state,
                "in": hh_mm(a.checked_in) if a.checked_in else "",
                "proof": a.proof,
                "proven": a.proven,
            }
            for a in board.arrivals
        ],
    }


def arrivals_wall_start(*, event: Event) -> str:
    """Turn on the wall display link (a new one: the old link stops working)."""
    with transaction.atomic():
        event.wall_token = secrets.token_urlsafe(32)
        event.save(update_fields=["wall_token", "updated_at"])
    return event.wall_token


def arrivals_wall_stop(*, event: Event) -> None:
    event.wall_token = None
    event.save(update_fields=["wall_token", "updated_at"])


def arrivals_wall_event(token: str) -> Event | None:
    """The event a wall display link shows, while the link is on and the event not long over."""
    if not token:
        return None
    return (
        Event.objects.filter(wall_token=token, ends_at__gte=timezone.now() - timedelta(days=1))
        .exclude(status=Event.Status.CANCELLED)
        .first()
    )
