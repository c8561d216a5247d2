"""How an event's crew stands: clashes, filled / needed per role, the roster. Reads only."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce, Least

from attendance.models import Event, EventCrew

Status = EventCrew.Status


def crew_conflicts(
    *, user: User, event: Event, call_time: datetime | None = None
) -> QuerySet[EventCrew]:
    """The member's confirmed assignments on other events whose working time overlaps this one.

    Working time runs from the earlier of call time and start to the end of the event.
    """
    start = min(call_time or event.call_time, event.starts_at)
    return (
        EventCrew.objects.filter(user=user, status=Status.CONFIRMED)
        .exclude(event=event)
        .exclude(event__status=Event.Status.CANCELLED)
        .annotate(
            _start=Least(Coalesce("call_time", "event__call_time"), "event__starts_at"),
        )
        .filter(_start__lt=event.ends_at, event__ends_at__gt=start)
        .select_related("event", "role")
        .order_by("event__starts_at")
    )


@dataclass(frozen=True)
class RoleStaffing:
    role: str
    needed: int
    confirmed: int
    invited: int

    @property
    def is_filled(self) -> bool:
        return self.confirmed >= self.needed


def event_staffing(event: Event) -> list[RoleStaffing]:
    """Per role: how many are needed, confirmed and still invited (two queries)."""
    counts = {
        row["role__name"]: row
        for row in event.crew.values("role__name").annotate(
            confirmed=Count("pk", filter=Q(status__in=[Status.CONFIRMED, Status.COMPLETED])),
            invited=Count("pk", filter=Q(status=Status.INVITED)),
        )
    }
    staffing = []
    for requirement in event.role_requirements.select_related("role"):
        row = counts.pop(requirement.role.name, {})
        staffing.append(
            RoleStaffing(
                requirement.role.name,
                requirement.needed,
                row.get("confirmed", 0),
                row.get("invited", 0),
            )
        )
    # Roles someone is assigned to without a requirement still show, as "0 needed".
    for name, row in sorted(counts.items()):
        staffing.append(RoleStaffing(name, 0, row["confirmed"], row["invited"]))
    return staffing


def crew_roster_queryset() -> QuerySet[EventCrew]:
    """Confirmed (and completed) crew in roster order, with what a roster shows."""
    return (
        EventCrew.objects.filter(status__in=[Status.CONFIRMED, Status.COMPLETED])
        .select_related("user__profile", "role")
        .order_by("role__sort_order", "user__first_name", "user__username")
    )


def crew_roster(event: Event) -> QuerySet[EventCrew]:
    return crew_roster_queryset().filter(event=event)
