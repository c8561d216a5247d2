"""After crew confirm: reminders the day before, the setup briefing, completion after the event."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from attendance.models import (
    Attendance,
    EmailNotification,
    Event,
    EventCrew,
)
from attendance.services.attendance import attendance_close_at_end
from attendance.services.core.urls import absolute_url
from attendance.services.crew.assignments import CrewError
from attendance.services.crew.callsheet import call_sheet_for
from attendance.services.crew.notices import crew_email
from attendance.services.crew.staffing import crew_roster
from attendance.services.messaging.channels import MemberMessage
from attendance.services.pay.timesheets import timesheet_create

Status = EventCrew.Status


def crew_remind(*, assignment: EventCrew, now: datetime | None = None) -> bool:
    """Email one confirmed member a reminder, at most once ever. True if this call sent it.

    The flag is claimed by a conditional UPDATE in the same transaction as the email row: of
    two overlapping runs, the second waits for the first's row lock, then matches nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        claimed = EventCrew.objects.filter(
            pk=assignment.pk, status=Status.CONFIRMED, reminder_sent=False
        ).update(reminder_sent=True, reminder_sent_at=now, updated_at=now)
        if not claimed:
            return False
        current = EventCrew.objects.select_related("event", "role", "user").get(pk=assignment.pk)
        # No roster in a reminder: a 2,000-person festival would put 2,000 names in each
        # of 2,000 emails. The portal link in it shows the crew.
        crew_email(current, EmailNotification.Type.CREW_REMINDER, {})
    return True


def crew_send_reminders(*, now: datetime | None = None) -> int:
    """The beat job: remind confirmed crew of events starting tomorrow (local date).

    Runs hourly; sends nothing before CREW_REMINDER_HOUR so nobody is emailed at midnight.
    Safe to run twice or concurrently (see crew_remind). Returns how many were reminded.
    """
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.CREW_REMINDER_HOUR:
        return 0
    tomorrow = datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=local.tzinfo)
    due = (
        EventCrew.objects.filter(
            status=Status.CONFIRMED,
            reminder_sent=False,
            event__starts_at__gte=tomorrow,
            event__starts_at__lt=tomorrow + timedelta(days=1),
        )
        .exclude(event__status=Event.Status.CANCELLED)
        .values_list("pk", flat=True)
    )
    return sum(crew_remind(assignment=EventCrew(pk=pk), now=now) for pk in list(due))


# A briefing lists the member's own role's crew (whom they work beside), up to this many; the
# portal has the whole roster. Cost per email stays flat however big the event.
BRIEFING_ROSTER_LIMIT = 40


def crew_briefing_targets(*, event: Event) -> list[int]:
    """The assignments a setup briefing goes to: confirmed members (each by their channel).

    Raises CrewError if nobody has confirmed yet.
    """
    confirmed = event.crew.filter(status=Status.CONFIRMED)
    if not confirmed.exists():
        raise CrewError(f"Nobody has confirmed for {event.name} yet.")
    reachable = ~Q(user__email="")
    if settings.SMS_ENABLED:
        reachable |= ~Q(user__profile__phone_number="") & Q(
            user__profile__sms_blocked_at__isnull=True
        )
    return list(confirmed.filter(reachable).values_list("pk", flat=True))


def crew_brief_one(*, assignment: EventCrew) -> MemberMessage | None:
    """Email one confirmed member the briefing: instructions, and who works their role.

    Raises CrewError if they are not confirmed (any more).
    """
    current = EventCrew.objects.select_related("event", "role", "user").get(pk=assignment.pk)
    if current.status != Status.CONFIRMED:
        raise CrewError("not confirmed (any more).")
    same_role = crew_roster(current.event).filter(status=Status.CONFIRMED, role=current.role_id)
    roster = list(same_role[:BRIEFING_ROSTER_LIMIT])
    context = {
        # The call sheet goes with it: run of show, their pickup and kit, the link to it.
        "sheet": call_sheet_for(current),
        "call_sheet_url": absolute_url("attendance:call_sheet", current.event_id),
        "roster": roster,
        "roster_total": current.event.crew.filter(status=Status.CONFIRMED).count(),
        "roster_more": max(same_role.count() - len(roster), 0),
    }
    return crew_email(current, EmailNotification.Type.SETUP_BRIEFING, context)


def crew_send_briefing(*, event: Event) -> int:
    """Brief every confirmed member at once (small events; the admin runs a background job).

    Returns how many were emailed; raises CrewError if nobody has confirmed yet.
    """
    with transaction.atomic():
        targets = crew_briefing_targets(event=event)
        for pk in targets:
            crew_brief_one(assignment=EventCrew(pk=pk))
    return len(targets)


def crew_complete(
    *, assignment_ids: Iterable[int], by: User | None = None, now: datetime | None = None
) -> tuple[int, int]:
    """Confirmed members who checked in to an event that is over become completed, and each
    gets a timesheet line worked out from their attendance. Anyone still checked in is
    checked out at the event's end first (attendance_close_at_end).

    Returns (completed, left as they were).
    """
    now = now or timezone.now()
    ids = list(assignment_ids)
    attended = Attendance.objects.filter(
        event=OuterRef("event"), user=OuterRef("user"), check_in_at__isnull=False
    )
    with transaction.atomic():
        done_rows = list(
            EventCrew.objects.select_for_update()
            .filter(pk__in=ids, status=Status.CONFIRMED, event__ends_at__lte=now)
            .filter(Exists(attended))
            .values_list("pk", "event_id", "user_id")
        )
        by_event: dict[int, list[int]] = {}
        for _, event_id, user_id in done_rows:
            by_event.setdefault(event_id, []).append(user_id)
        # Usually one event (the admin's "complete the crew"): a query or two per event.
        for event in Event.objects.filter(pk__in=by_event):
            attendance_close_at_end(event=event, user_ids=by_event[event.pk])
        done = [pk for pk, _, _ in done_rows]
        EventCrew.objects.filter(pk__in=done).update(
            status=Status.COMPLETED, completed_at=now, updated_at=now
        )
        timesheet_create(assignment_ids=done, by=by, now=now)
    return len(done), len(ids) - len(done)


@dataclass(frozen=True)
class Completion:
    completed: int
    never_checked_in: int
    checked_out_at_end: int


def crew_complete_event(
    *, event: Event, by: User | None = None, now: datetime | None = None
) -> Completion:
    """After the event: complete the crew who attended; the event itself becomes completed.

    Refused (CrewError) until the event has ended: someone 3 minutes into their shift is not
    done. Members still checked in then are checked out at the end, and the result says how
    many.
    """
    now = now or timezone.now()
    if event.ends_at > now:
        end = timezone.localtime(event.ends_at)
        raise CrewError(
            f"{event.name} has not ended yet (it ends {end:%a} {end.day} {end:%b at %H:%M}): "
            "complete its crew after that."
        )
    with transaction.atomic():
        still_in = Attendance.objects.filter(
            event=event, check_in_at__isnull=False, check_out_at__isnull=True
        ).count()
        done, left = crew_complete(
            assignment_ids=event.crew.filter(status=Status.CONFIRMED).values_list("pk", flat=True),
            by=by,
            now=now,
        )
        if event.status != Event.Status.COMPLETED:
            Event.objects.filter(pk=event.pk).update(status=Event.Status.COMPLETED, updated_at=now)
            event.status = Event.Status.COMPLETED
    return Completion(done, left, still_in)
