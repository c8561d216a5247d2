"""Show day: the call-time messages that find gaps before doors open, and what managers and
members do about them.

The beat runs `show_day_run` every minute. For each event still on (planned or confirmed) that
is near its call time or just over, it sends, each at most once:
- *leave now*, N hours before each member's call time (the map and the call sheet);
- *are you coming?*, X minutes after call to a member not checked in (one-tap answers), and to
  the event's contacts a list of who is missing, each with "offer the place to standby";
- *role still short*, N hours before call, to the contacts, with the staffing board per role;
- *check out*, an hour after the end, to members still checked in.
"Once" is a ShowDayNotice row (unique per event, kind and key) written in the transaction
that writes the message, with the event row locked: two runs or two workers never send twice.
All times are the server's; messages say them in Nairobi time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance.models import (
    Attendance,
    CrewRole,
    EmailNotification,
    Event,
    EventCrew,
    ShowDayNotice,
)
from attendance.models.events import SHORT_ALERT_MAX_HOURS
from attendance.services.attendance import AttendanceError
from attendance.services.core.urls import absolute_url
from attendance.services.crew.assignments import CrewError, crew_decline, crew_promote_standby
from attendance.services.crew.notices import crew_email, crew_tell_member_off, event_contacts_tell
from attendance.services.crew.staffing import event_staffing

logger = logging.getLogger(__name__)
Kind = ShowDayNotice.Kind
Type = EmailNotification.Type
ON = (Event.Status.PLANNED, Event.Status.CONFIRMED)
# A forgotten check-out is asked about this long after the end.
CHECK_OUT_AFTER = timedelta(hours=1)


def show_day_run(*, now: datetime | None = None) -> dict[str, int]:
    """The beat job: every message that is due now, once. Returns how many of each."""
    now = now or timezone.now()
    sent = dict.fromkeys(Kind.values, 0)
    for event_id in _events_near(now):
        with transaction.atomic():
            # Locked (skipping one another worker holds): that worker is sending its messages.
            event = (
                Event.objects.select_for_update(skip_locked=True)
                .filter(pk=event_id, status__in=ON)
                .first()
            )
            if event is None:
                continue
            for kind, count in _run_event(event, now).items():
                sent[kind] += count
    return sent


def _events_near(now: datetime) -> list[int]:
    """Events still on whose call is near or whose end was lately: a handful, however many
    events a year holds (the status-and-start index; ends_at cuts the rest)."""
    horizon = now + timedelta(hours=SHORT_ALERT_MAX_HOURS + 24)
    closes = timedelta(hours=settings.CHECKOUT_CLOSES_HOURS_AFTER_END)
    return list(
        Event.objects.filter(status__in=ON, starts_at__lte=horizon, ends_at__gte=now - closes)
        .order_by("starts_at")
        .values_list("pk", flat=True)
    )


def _run_event(event: Event, now: datetime) -> dict[str, int]:
    return {
        Kind.LEAVE_NOW: _leave_now(event, now),
        Kind.LATE: _late(event, now),
        Kind.ROLE_SHORT: _role_short(event, now),
        Kind.CHECK_OUT: _check_out(event, now),
    }


def _noticed(kind: str) -> Exists:
    """A notice of this kind exists for the row's member (member notices carry the user)."""
    return Exists(
        ShowDayNotice.objects.filter(
            event_id=OuterRef("event_id"), kind=kind, user_id=OuterRef("user_id")
        )
    )


def _confirmed(event: Event, kind: str) -> QuerySet[EventCrew]:
    """Confirmed crew not checked in and not yet sent this kind, each with their own call
    time (`call`)."""
    checked_in = Attendance.objects.filter(
        event_id=OuterRef("event_id"), user_id=OuterRef("user_id"), check_in_at__isnull=False
    )
    return (
        EventCrew.objects.filter(event=event, status=EventCrew.Status.CONFIRMED)
        .annotate(call=Coalesce("call_time", F("event__call_time")))
        .filter(~Exists(checked_in), ~_noticed(kind))
    )


def _claim(event: Event, kind: str, rows: Iterable[tuple[str, User | None, str]]) -> None:
    """The notices that make these messages once-only (same transaction as the messages)."""
    ShowDayNotice.objects.bulk_create(
        [
            ShowDayNotice(event=event, kind=kind, key=key, user=user, detail=detail[:200])
            for key, user, detail in rows
        ]
    )


def _tell_each(event: Event, kind: str, due: list[EventCrew], message: str, **context: Any) -> int:
    """One message per member on their channel, and a notice for each."""
    claimed = []
    for assignment in due:
        sent = crew_email(assignment, message, {**context, **_links(assignment)})
        claimed.append(
            (str(assignment.user_id), assignment.user, "" if sent else "no channel reaches them")
        )
    _claim(event, kind, claimed)
    return len(due)


def _links(assignment: EventCrew) -> dict[str, str]:
    event_id = assignment.event_id
    return {
        "call_sheet_url": absolute_url("attendance:call_sheet", event_id),
        "coming_url": absolute_url("attendance:coming", event_id),
    }


def _leave_now(event: Event, now: datetime) -> int:
    if not event.leave_now_hours:
        return 0
    due = list(
        _confirmed(event, Kind.LEAVE_NOW)
        .filter(Q(call__gt=now, call__lte=now + timedelta(hours=event.leave_now_hours)))
        .select_related("user__profile", "role", "event")
        .order_by("pk")
    )
    return _tell_each(event, Kind.LEAVE_NOW, due, Type.SHOW_LEAVE_NOW)


def _late(event: Event, now: datetime) -> int:
    """Confirmed crew not checked in X minutes after their call: each is asked "are you
    coming?", and the contacts get one list of them (this run's), with what to do."""
    if not event.late_alert_minutes or now >= event.ends_at:
        return 0
    said_cant = Attendance.objects.filter(
        event_id=OuterRef("event_id"),
        user_id=OuterRef("user_id"),
        arrival_answer=Attendance.Arrival.CANT_COME,
    )
    due = list(
        _confirmed(event, Kind.LATE)
        .filter(Q(call__lte=now - timedelta(minutes=event.late_alert_minutes)))
        .filter(~Exists(said_cant))
        .select_related("user__profile", "role", "event")
        .order_by("call", "role__name", "pk")
    )
    if not due:
        return 0
    _tell_each(event, Kind.LATE, due, Type.SHOW_ARE_YOU_COMING)
    _tell_contacts_missing(event, due, now, cant_come=False)
    return len(due)


def _tell_contacts_missing(
    event: Event, missing: list[EventCrew], now: datetime, *, cant_come: bool
) -> None:
    event_contacts_tell(
        event,
        Type.SHOW_LATE,
        {
            "event": event,
            "missing": [(a, offer_url(a)) for a in missing],
            "cant_come": cant_come,
            "can_offer": event.starts_at > now,
            "arrivals_url": absolute_url("admin:attendance_event_arrivals", event.pk),
        },
    )


def offer_url(assignment: EventCrew) -> str:
    return absolute_url("admin:attendance_event_offer_place", assignment.event_id, assignment.pk)


def _role_short(event: Event, now: datetime) -> int:
    """N hours before call, once per N: the roles still short, to the contacts. Checked once
    even when nothing is short (then no message), so the check is not made every minute."""
    due_hours = [
        hours
        for hours in event.short_alert_list
        if event.call_time - timedelta(hours=hours) <= now < event.call_time
    ]
    if not due_hours:
        return 0
    done = set(
        ShowDayNotice.objects.filter(event=event, kind=Kind.ROLE_SHORT).values_list(
            "key", flat=True
        )
    )
    todo = [hours for hours in due_hours if str(hours) not in done]
    if not todo:
        return 0
    short = [row for row in event_staffing(event) if not row.is_filled]
    detail = f"{len(short)} role(s) short" if short else "nothing short"
    _claim(event, Kind.ROLE_SHORT, [(str(hours), None, detail) for hours in todo])
    if not short:
        return 0
    board = absolute_url("admin:attendance_event_board", event.pk)
    role_ids = dict(
        CrewRole.objects.filter(name__in=[row.role for row in short]).values_list("name", "pk")
    )
    event_contacts_tell(
        event,
        Type.SHOW_ROLE_SHORT,
        {
            "event": event,
            # The board opens on the role, its standby and candidates ready to invite.
            "short": [(row, f"{board}?role={role_ids.get(row.role, '')}") for row in short],
            "hours": min(todo),
            "board_url": board,
        },
    )
    return 1


def _check_out(event: Event, now: datetime) -> int:
    if not event.check_out_reminder or now < event.ends_at + CHECK_OUT_AFTER:
        return 0
    still_in = list(
        Attendance.objects.filter(event=event, check_in_at__isnull=False, check_out_at__isnull=True)
        .filter(~_noticed(Kind.CHECK_OUT))
        .select_related("user__profile", "event")
        .order_by("pk")
    )
    crew = {
        a.user_id: a
        for a in EventCrew.objects.filter(
            event=event, user_id__in=[row.user_id for row in still_in]
        ).select_related("user__profile", "role", "event")
    }
    due = [crew[row.user_id] for row in still_in if row.user_id in crew]
    return _tell_each(event, Kind.CHECK_OUT, due, Type.SHOW_CHECK_OUT)


# --- What members and managers do about it --------------------------------------------------


@dataclass(frozen=True)
class Answered:
    attendance: Attendance
    changed: bool


def show_answer_coming(
    *, attendance: Attendance, answer: str, now: datetime | None = None
) -> Answered:
    """The member's answer to "are you coming?": on my way, or can't make it. "Can't make it"
    goes to the event's contacts at once (they may offer the place to standby); answering the
    same again changes nothing."""
    now = now or timezone.now()
    if answer not in Attendance.Arrival.values:
        raise AttendanceError(_("Choose 'On my way' or 'Can't make it'."))
    with transaction.atomic():
        current = (
            Attendance.objects.select_for_update().select_related("event").get(pk=attendance.pk)
        )
        if current.check_in_at is not None:
            raise AttendanceError(_("You are checked in already: nothing to tell."))
        if current.event.status not in ON or now >= current.event.ends_at:
            raise AttendanceError(_("This event is over or cancelled: nothing to tell."))
        if current.arrival_answer == answer:
            return Answered(current, False)
        current.arrival_answer = answer
        current.arrival_answer_at = now
        current.save(update_fields=["arrival_answer", "arrival_answer_at", "updated_at"])
        if answer == Attendance.Arrival.CANT_COME:
            assignment = (
                EventCrew.objects.filter(
                    event_id=current.event_id,
                    user_id=current.user_id,
                    status=EventCrew.Status.CONFIRMED,
                )
                .select_related("user", "role", "event")
                .first()
            )
            if assignment is not None:
                ShowDayNotice.objects.get_or_create(
                    event=current.event,
                    kind=Kind.CANT_COME,
                    key=str(current.user_id),
                    defaults={"user_id": current.user_id},
                )
                _tell_contacts_missing(current.event, [assignment], now, cant_come=True)
    return Answered(current, True)


def show_offer_place(*, assignment: EventCrew, by: User) -> list[EventCrew]:
    """A manager gives a missing member's place to standby: the member is taken off (told,
    their calendar entry cancelled) and the next standby for the role who is free that day is
    invited, under the role's capacity (crew_promote_standby). Returns those invited.

    Raises CrewError when the event has started (invitations can no longer be answered) or
    the member is no longer confirmed (checked in meanwhile, or already replaced)."""
    with transaction.atomic():
        current = (
            EventCrew.objects.select_for_update(of=("self",))
            .select_related("event", "role", "user")
            .get(pk=assignment.pk)
        )
        if current.status != EventCrew.Status.CONFIRMED:
            raise CrewError(f"{current.user.get_full_name() or current.user} is not confirmed now.")
        if Attendance.objects.filter(
            event_id=current.event_id, user_id=current.user_id, check_in_at__isnull=False
        ).exists():
            raise CrewError(
                f"{current.user.get_full_name() or current.user} has checked in meanwhile."
            )
        before = set(
            EventCrew.objects.filter(
                event_id=current.event_id, role_id=current.role_id, status=EventCrew.Status.INVITED
            ).values_list("pk", flat=True)
        )
        declined = crew_decline(
            assignment=current,
            reason=f"Not at the venue by call time; place given to standby by {by}",
            via="replaced",
        )
        crew_tell_member_off(declined, removed=False)
        if not current.event.auto_replace:
            crew_promote_standby(event=current.event, role=current.role, places=1)
        invited = list(
            EventCrew.objects.filter(
                event_id=current.event_id, role_id=current.role_id, status=EventCrew.Status.INVITED
            )
            .exclude(pk__in=before)
            .select_related("user")
        )
    return invited
