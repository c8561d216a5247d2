"""The staffing board's candidates: who could fill a role on an event, best first. Reads only.

Ranked by what decides a call: free that day (not marked unavailable, not confirmed on an
overlapping event), able to do the role, then their track record. A fixed number of queries
whatever the number of members (tests/test_crew_board.py pins it at 1 and 200).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Least

from attendance.models import CrewRole, Event, EventCrew, Profile, Unavailability
from attendance.services.crew.availability import unavailable_for
from attendance.services.crew.track_record import TrackRecord, track_records

Status = EventCrew.Status
SHOWN = 50


@dataclass
class Candidate:
    user: User
    can_do: bool
    unavailable: Unavailability | None
    booked_at: str  # the overlapping event they are confirmed for, or ""
    record: TrackRecord

    @property
    def free(self) -> bool:
        return self.unavailable is None and not self.booked_at

    def rank(self) -> tuple:
        name = (self.user.first_name or self.user.username).lower()
        return (not self.free, not self.can_do, -self.record.score, name, self.user.pk)


def board_candidates(
    event: Event, role: CrewRole, *, search: str = "", shown: int = SHOWN
) -> tuple[list[Candidate], int]:
    """The best `shown` members for the role (not already on the event), and how many could
    be considered in all."""
    start = event.call_time if event.call_time < event.starts_at else event.starts_at
    clash = (
        EventCrew.objects.filter(user=OuterRef("pk"), status=Status.CONFIRMED)
        .exclude(event=event)
        .exclude(event__status=Event.Status.CANCELLED)
        .annotate(_start=Least(Coalesce("call_time", "event__call_time"), "event__starts_at"))
        .filter(_start__lt=event.ends_at, event__ends_at__gt=start)
    )
    # Crew, not the office: a staff login is a candidate only when its profile says which
    # crew roles that person does (a manager who also works as an engineer).
    does_crew_work = Exists(Profile.roles.through.objects.filter(profile__user=OuterRef("pk")))
    members = (
        User.objects.filter(is_active=True, profile__isnull=False)
        .filter(Q(is_staff=False) | does_crew_work)
        .exclude(pk__in=EventCrew.objects.filter(event=event).values("user_id"))
        .annotate(
            can_do=Exists(
                Profile.roles.through.objects.filter(profile__user=OuterRef("pk"), crewrole=role)
            ),
            booked_at=Subquery(clash.values("event__name")[:1]),
        )
        .only("pk", "username", "first_name", "last_name")
    )
    if search:
        members = members.filter(
            Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(username__icontains=search)
        )
    rows = list(members)
    away = unavailable_for(event)
    records = track_records([member.pk for member in rows])
    candidates = sorted(
        (
            Candidate(
                user=member,
                can_do=member.can_do,
                unavailable=away.get(member.pk),
                booked_at=member.booked_at or "",
                record=records[member.pk],
            )
            for member in rows
        ),
        key=Candidate.rank,
    )
    return candidates[:shown], len(candidates)
