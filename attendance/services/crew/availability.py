"""Crew availability: the dates members say they cannot work, and who hears of it.

Dates are Nairobi calendar days, both ends included. An event touches every local day from the
earlier of its call time and start to its end, so an overnight show counts on both days.
"""

from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance.models import EmailNotification, Event, EventCrew, Unavailability
from attendance.services.core.errors import ServiceError
from attendance.services.core.urls import absolute_url
from attendance.services.crew.notices import event_contacts_tell

# Far enough ahead for a season's planning; longer is a mistake more often than a plan.
MAX_DAYS = 366


class AvailabilityError(ServiceError):
    """A range that cannot be recorded; the message is for the member."""


def event_days(event: Event) -> tuple[date, date]:
    """The first and last local day an event's work touches."""
    start = min(event.call_time or event.starts_at, event.starts_at)
    return timezone.localdate(start), timezone.localdate(event.ends_at)


def availability_mark(
    *, user: User, starts_on: date, ends_on: date | None = None, reason: str = ""
) -> tuple[Unavailability, list[EventCrew]]:
    """Record dates the member cannot work. Returns the row and the confirmed assignments it
    clashes with; their events' managers are told (after commit), since someone must cover."""
    ends_on = ends_on or starts_on
    today = timezone.localdate()
    if ends_on < starts_on:
        raise AvailabilityError(_("The last date is before the first."))
    if ends_on < today:
        raise AvailabilityError(_("Those dates are in the past."))
    if (ends_on - starts_on).days >= MAX_DAYS:
        raise AvailabilityError(_("Mark at most %(days)s days at a time.") % {"days": MAX_DAYS})
    reason = " ".join(reason.split())[:200]
    with transaction.atomic():
        row = Unavailability.objects.create(
            user=user, starts_on=max(starts_on, today), ends_on=ends_on, reason=reason
        )
        clashes = list(_confirmed_on(user, row.starts_on, row.ends_on))
        for assignment in clashes:
            _tell_managers(assignment, row)
    return row, clashes


def availability_remove(*, user: User, pk: int) -> bool:
    """The member can work those dates after all. False if it is not theirs (or gone)."""
    deleted, _by_model = Unavailability.objects.filter(user=user, pk=pk).delete()
    return bool(deleted)


def availability_upcoming(user: User) -> list[Unavailability]:
    return list(Unavailability.objects.filter(user=user, ends_on__gte=timezone.localdate()))


def unavailable_for(event: Event, user_ids: list[int] | None = None) -> dict[int, Unavailability]:
    """Members (all, or those given) who marked a day of this event: user id -> the range."""
    first, last = event_days(event)
    rows = Unavailability.objects.filter(starts_on__lte=last, ends_on__gte=first)
    if user_ids is not None:
        rows = rows.filter(user_id__in=user_ids)
    found: dict[int, Unavailability] = {}
    for row in rows.order_by("starts_on"):
        found.setdefault(row.user_id, row)
    return found


def _confirmed_on(user: User, first: date, last: date) -> QuerySet[EventCrew]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return (
        EventCrew.objects.filter(user=user, status=EventCrew.Status.CONFIRMED)
        .exclude(event__status=Event.Status.CANCELLED)
        .filter(Q(event__ends_at__gt=start) & Q(event__starts_at__lt=end))
        .select_related("event", "role", "event__created_by")
    )


def _tell_managers(assignment: EventCrew, row: Unavailability) -> None:
    event = assignment.event
    event_contacts_tell(
        event,
        EmailNotification.Type.CREW_UNAVAILABLE,
        {
            "assignment": assignment,
            "event": event,
            "member": assignment.user,
            "role": assignment.role,
            "dates": row,
            "event_url": absolute_url("admin:attendance_event_change", event.pk),
        },
    )
