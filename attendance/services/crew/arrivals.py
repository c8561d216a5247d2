"""The live arrivals board: who is expected, on site (and how that was proven), late, on their
way, not coming, a no-show, and who was invited from standby. Reads only, in two queries
however big the crew (a 2,000-person festival refreshes it every few seconds)."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import Attendance, Event, EventCrew

# The board's states, in the order a crew chief reads them: the gaps first.
STATES = {
    "no_show": "No-show",
    "cant": "Can't make it",
    "late": "Late",
    "on_way": "On my way",
    "expected": "Expected",
    "on_site": "On site",
    "left": "Checked out",
    "standby": "Invited from standby",
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


def _state(
    assignment: EventCrew, attendance: Attendance | None, call: datetime, now: datetime
) -> str:
    if assignment.status == EventCrew.Status.INVITED:
        return "standby"
    if attendance is not None and attendance.check_in_at is not None:
        return "left" if attendance.check_out_at is not None else "on_site"
    answer = attendance.arrival_answer if attendance is not None else ""
    closes = min(
        call + timedelta(minutes=settings.CHECKIN_CLOSES_MINUTES_AFTER), assignment.event.ends_at
    )
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
            # Invited from standby and not answered yet: a place being filled.
            | Q(status=EventCrew.Status.INVITED, standby_since__isnull=False)
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
    attendance = {
        row.user_id: row
        for row in Attendance.objects.filter(event=event).only(
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
    arrivals = []
    for pk, status, call_time, role, first, last, username, user_id in crew:
        call = call_time or event.call_time
        row = attendance.get(user_id)
        assignment = EventCrew(pk=pk, status=status, event=event)
        arrivals.append(
            Arrival(
                crew_id=pk,
                name=f"{first} {last}".strip() or username,
                role=role,
                call=call,
                state=_state(assignment, row, call, now),
                checked_in=row.check_in_at if row else None,
                proof=row.check_in_proof if row and row.check_in_at else "",
                proven=bool(row and row.check_in_proven),
                answered_at=row.arrival_answer_at if row else None,
            )
        )
    order = list(STATES)
    arrivals.sort(key=lambda a: (order.index(a.state), a.call, a.role, a.name))
    return Board(event=event, now=now, arrivals=arrivals)


def board_json(board: Board) -> dict:
    """What the board's page fetches every few seconds."""
    local = timezone.localtime
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
                "call": local(a.call).strftime("%H:%M"),
                "state": a.state,
                "in": local(a.checked_in).strftime("%H:%M") if a.checked_in else "",
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
