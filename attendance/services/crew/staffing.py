"""How an event's crew stands: clashes, filled / needed per role, the roster. Reads only."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, When, Window
from django.db.models.functions import Coalesce, Least, RowNumber

from attendance.models import Event, EventCrew, EventRoleRequirement

Status = EventCrew.Status


def event_contacts(event: Event) -> list[User]:
    """Who hears about an event's crew (declines, offers, dates marked unavailable): its
    managers with an email address; when nobody was picked, whoever created it."""
    managers = [manager for manager in event.managers.all() if manager.email]
    if not managers and event.created_by is not None and event.created_by.email:
        managers = [event.created_by]
    return managers


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
    invited: int  # sent an invitation, no answer yet
    not_invited: int = 0  # assigned, invitation not sent yet
    standby: int = 0  # waiting for a place
    offered: int = 0  # offered themselves, waiting for a manager
    asking: int = 0  # confirmed, asking to be replaced (the board fills it in)

    @property
    def is_filled(self) -> bool:
        return self.confirmed >= self.needed


def event_staffing(event: Event) -> list[RoleStaffing]:
    """Per role: how many are needed, confirmed, invited without an answer, and assigned but
    not invited yet (two queries)."""
    counts = {
        row["role__name"]: row
        for row in event.crew.values("role__name").annotate(
            confirmed=Count("pk", filter=Q(status__in=[Status.CONFIRMED, Status.COMPLETED])),
            invited=Count("pk", filter=Q(status=Status.INVITED, invitation_sent=True)),
            not_invited=Count("pk", filter=Q(status=Status.INVITED, invitation_sent=False)),
            standby=Count("pk", filter=Q(status=Status.STANDBY)),
            offered=Count("pk", filter=Q(status=Status.OFFERED)),
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
                row.get("not_invited", 0),
                row.get("standby", 0),
                row.get("offered", 0),
            )
        )
    # Roles someone is assigned to without a requirement still show, as "0 needed".
    for name, row in sorted(counts.items()):
        staffing.append(
            RoleStaffing(
                name,
                0,
                row["confirmed"],
                row["invited"],
                row["not_invited"],
                row["standby"],
                row["offered"],
            )
        )
    return staffing


def role_places_left(*, event_id: int, role_id: int, lock: bool = False) -> int | None:
    """How many more of this role the event can confirm (None: no limit set for the role).

    `lock` takes the requirement row's lock first (inside the caller's transaction): every
    confirmation of the role queues on it, so two answers at once cannot both take the last
    place.
    """
    requirements = EventRoleRequirement.objects.filter(event_id=event_id, role_id=role_id)
    if lock:
        requirements = requirements.select_for_update()
    needed = requirements.values_list("needed", flat=True).first()
    if needed is None:
        return None
    taken = EventCrew.objects.filter(
        event_id=event_id, role_id=role_id, status__in=[Status.CONFIRMED, Status.COMPLETED]
    ).count()
    return max(needed - taken, 0)


def role_places_open(*, event_id: int, role_id: int) -> int:
    """Places of a role neither confirmed nor waiting on an invitation already sent: how many
    standbys to invite now. 0 when the role has no requirement."""
    needed = (
        EventRoleRequirement.objects.filter(event_id=event_id, role_id=role_id)
        .values_list("needed", flat=True)
        .first()
    )
    if not needed:
        return 0
    spoken_for = EventCrew.objects.filter(
        Q(status__in=[Status.CONFIRMED, Status.COMPLETED])
        | Q(status=Status.INVITED, invitation_sent=True),
        event_id=event_id,
        role_id=role_id,
    ).count()
    return max(needed - spoken_for, 0)


def crew_roster_queryset() -> QuerySet[EventCrew]:
    """Confirmed (and completed) crew in roster order, with what a roster shows."""
    return (
        EventCrew.objects.filter(status__in=[Status.CONFIRMED, Status.COMPLETED])
        .select_related("user__profile", "role")
        .order_by("role__sort_order", "user__first_name", "user__username")
    )


def crew_roster(event: Event) -> QuerySet[EventCrew]:
    return crew_roster_queryset().filter(event=event)


# What a member's phone shows of an event's crew: their own role's first, then the rest, up
# to this many (a 2,000-person festival's roster would be the page); the count says the rest.
ROSTER_SHOWN = 40


def crew_rosters_for(*, member: User, event_ids: list[int]) -> dict[int, tuple[list, int]]:
    """{event id: (the first ROSTER_SHOWN of its crew, how many in all)} in two queries.

    The member's own role comes first: whom they work beside.
    """
    if not event_ids:
        return {}
    own_role = EventCrew.objects.filter(event=OuterRef("event"), user=member).values("role")[:1]
    ranked = (
        crew_roster_queryset()
        .filter(event_id__in=event_ids)
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=F("event_id"),
                order_by=[
                    Case(When(role=Subquery(own_role), then=0), default=1).asc(),
                    F("role__sort_order").asc(),
                    F("user__first_name").asc(),
                    F("user__username").asc(),
                ],
            )
        )
        .filter(place__lte=ROSTER_SHOWN)
        .order_by("event_id", "place")
    )
    totals = dict(
        EventCrew.objects.filter(
            event_id__in=event_ids, status__in=[Status.CONFIRMED, Status.COMPLETED]
        )
        .values("event_id")
        .annotate(n=Count("pk"))
        .values_list("event_id", "n")
    )
    shown: dict[int, list] = {pk: [] for pk in event_ids}
    for row in ranked:
        shown[row.event_id].append(row)
    return {pk: (shown[pk], totals.get(pk, 0)) for pk in event_ids}
