from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _

from attendance.models import (
    Attendance,
    AttendanceCorrection,
    AttendanceRemoval,
    Event,
    RefusedCheckIn,
)
from attendance.services.core.errors import ServiceError
from attendance.venue_codes import VenueCodeError, venue_code_check
from attendance.venue_location import Judgement, Position, judge_position


class AttendanceError(ServiceError):
    """A check-in or check-out that the rules do not allow; the message is for the member."""


def attendance_status_for(*, check_in_at: datetime, call_time: datetime) -> str:
    """On time up to the grace period after the call time, late after that."""
    grace = timedelta(minutes=settings.ATTENDANCE_GRACE_MINUTES)
    if check_in_at <= call_time + grace:
        return Attendance.Status.PRESENT
    return Attendance.Status.LATE


def attendance_checkin_window(attendance: Attendance) -> tuple[datetime, datetime]:
    call = attendance.expected_call_time
    opens = call - timedelta(minutes=settings.CHECKIN_OPENS_MINUTES_BEFORE)
    closes = min(
        call + timedelta(minutes=settings.CHECKIN_CLOSES_MINUTES_AFTER), attendance.event.ends_at
    )
    return opens, closes


def attendance_can_check_in(attendance: Attendance, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    opens, closes = attendance_checkin_window(attendance)
    return attendance.check_in_at is None and opens <= now <= closes and _event_is_on(attendance)


def attendance_can_check_out(attendance: Attendance, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return attendance.is_checked_in and now <= _checkout_deadline(attendance)


def _checkout_deadline(attendance: Attendance) -> datetime:
    return attendance.event.ends_at + timedelta(hours=settings.CHECKOUT_CLOSES_HOURS_AFTER_END)


def _event_is_on(attendance: Attendance) -> bool:
    return attendance.event.status != Event.Status.CANCELLED


def _hours_between(start: datetime, end: datetime) -> Decimal:
    hours = Decimal((end - start).total_seconds()) / Decimal(3600)
    return hours.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def attendance_expect(*, event: Event, user: User, call_time: datetime | None = None) -> Attendance:
    """Put a person on an event's attendance list (idempotent)."""
    attendance, created = Attendance.objects.get_or_create(
        event=event, user=user, defaults={"call_time": call_time}
    )
    if not created and call_time and attendance.call_time != call_time:
        attendance.call_time = call_time
        attendance.save(update_fields=["call_time", "updated_at"])
    return attendance


def attendance_check_in_at_venue(
    *, attendance: Attendance, code: str, now: datetime | None = None
) -> tuple[Attendance, bool]:
    """A member checks in with the venue's QR code, which proves they are there.

    Returns (attendance, checked_in_now): a second scan finds them checked in already and
    changes nothing. Raises AttendanceError for a code that is expired, another event's or
    tampered with, and for the rules of the portal's button (window, cancelled event).
    """
    now = now or timezone.now()
    try:
        venue_code_check(attendance.event_id, code, now.timestamp())
    except VenueCodeError as error:
        raise AttendanceError(str(error)) from error
    if Attendance.objects.filter(pk=attendance.pk, check_in_at__isnull=False).exists():
        attendance.refresh_from_db()
        return attendance, False
    try:
        return attendance_check_in(
            attendance=attendance, now=now, method=Attendance.Method.QR
        ), True
    except AttendanceError:
        attendance.refresh_from_db()
        if attendance.check_in_at is not None:  # the other tap of a double scan won
            return attendance, False
        raise


# A phone's clock may run a little ahead of ours: a check-in "from the future" by less than
# this is taken as made now.
CLOCK_AHEAD = timedelta(minutes=2)


def attendance_check_in_sent_later(
    *, attendance: Attendance, code: str, claimed_at: datetime, now: datetime | None = None
) -> tuple[Attendance, bool]:
    """A check-in made at the venue with no signal (the venue's QR code scanned, kept on the
    phone) and sent when the phone had signal again.

    Accepted only if the code was this event's code at the time the phone claims, and that time
    is plausible: not ahead of ours (beyond CLOCK_AHEAD), not older than
    OFFLINE_CHECK_IN_MAX_HOURS, and inside the event's check-in window. The check-in is
    recorded at the claimed time, as proven by the code, with when it reached us. Returns
    (attendance, checked_in_now); sent twice, it checks in once. Anything else raises
    AttendanceError and is kept as a RefusedCheckIn for the event manager.
    """
    now = now or timezone.now()
    if now < claimed_at <= now + CLOCK_AHEAD:
        claimed_at = now
    try:
        _offline_proof(attendance, code, claimed_at, now)
    except AttendanceError as error:
        RefusedCheckIn.objects.create(
            event_id=attendance.event_id,
            user_id=attendance.user_id,
            code=str(code)[:80],
            claimed_at=claimed_at,
            reason=str(error)[:300],
        )
        raise
    try:
        with transaction.atomic():
            checked_in = attendance_check_in(
                attendance=attendance, now=claimed_at, method=Attendance.Method.QR
            )
            checked_in.check_in_sent_at = now
            checked_in.save(update_fields=["check_in_sent_at"])
    except AttendanceError:
        attendance.refresh_from_db()
        if attendance.check_in_at is not None:  # sent twice, or checked in meanwhile
            return attendance, False
        raise  # the event's rules (cancelled, window): said to the member, not a forgery
    return checked_in, True


def _offline_proof(attendance: Attendance, code: str, claimed_at: datetime, now: datetime) -> None:
    """Raise AttendanceError unless `code` proves presence at `claimed_at`, a plausible time."""
    if claimed_at > now:
        raise AttendanceError(
            _("This check-in says it was made later than now. Check your phone's clock.")
        )
    if now - claimed_at > timedelta(hours=settings.OFFLINE_CHECK_IN_MAX_HOURS):
        raise AttendanceError(
            _("This check-in was kept on the phone too long to count. Ask the event manager.")
        )
    try:
        venue_code_check(attendance.event_id, code, claimed_at.timestamp())
    except VenueCodeError as error:
        raise AttendanceError(str(error)) from error


def _proof(event: Event, position: Position | None) -> Judgement:
    """How a tap on the portal's button is proven: by the phone's position where the venue's
    is known. A member the rules would leave with no way to check in is told how instead."""
    if event.venue_position is None and not event.plain_check_in:
        raise AttendanceError(
            _("Check in by scanning the venue's QR code: ask the crew chief to show it.")
        )
    return judge_position(position, venue=event.venue_position, radius_m=event.venue_radius_m)


def attendance_check_in_from_portal(
    *, attendance: Attendance, position: Position | None, now: datetime | None = None
) -> Attendance:
    """The portal's Check in button, with the phone's position if the browser gave one.

    Inside the venue's radius proves presence; a refused, weak or distant position is
    recorded with a flag for the manager, and never stops the check-in.
    """
    judgement = _proof(attendance.event, position)
    return attendance_check_in(
        attendance=attendance,
        now=now,
        method=Attendance.Method.LOCATION if judgement.at_venue else Attendance.Method.SELF,
        judgement=judgement,
    )


def attendance_check_in(
    *,
    attendance: Attendance,
    now: datetime | None = None,
    method: str = Attendance.Method.SELF,
    judgement: Judgement | None = None,
) -> Attendance:
    """A member checks themself in from the portal (or with the venue's code: `method`).

    Allowed once, inside the window around their call time. Raises AttendanceError otherwise.
    `judgement` is the position's verdict, kept with the check-in (flag and distance).
    """
    now = now or timezone.now()
    flag = judgement.flag if judgement else ("" if method != Attendance.Method.SELF else "plain")
    with transaction.atomic():
        # Locked so that a double tap on the button cannot check in twice.
        attendance = (
            Attendance.objects.select_for_update().select_related("event").get(pk=attendance.pk)
        )
        if attendance.check_in_at is not None:
            raise AttendanceError(_("You are already checked in."))
        if not _event_is_on(attendance):
            raise AttendanceError(_("This event has been cancelled."))
        opens, closes = attendance_checkin_window(attendance)
        local_opens = timezone.localtime(opens)
        if now < opens:
            raise AttendanceError(
                _("Check-in opens at %(time)s on %(day)s.")
                % {"time": f"{local_opens:%H:%M}", "day": dateformat.format(local_opens, "j M")}
            )
        if now > closes:
            raise AttendanceError(_("Check-in for this event has closed. Ask the event manager."))
        attendance.check_in_at = now
        attendance.check_in_method = method
        attendance.check_in_flag = flag
        attendance.check_in_distance_m = judgement.distance_m if judgement else None
        attendance.status = attendance_status_for(
            check_in_at=now, call_time=attendance.expected_call_time
        )
        attendance.save(
            update_fields=[
                "check_in_at",
                "check_in_method",
                "check_in_flag",
                "check_in_distance_m",
                "status",
                "updated_at",
            ]
        )
    return attendance


def attendance_check_out(
    *, attendance: Attendance, now: datetime | None = None, position: Position | None = None
) -> Attendance:
    """A member checks themself out; hours worked are computed from check-in. The position,
    where given, is judged as at check-in (a flag, never a refusal)."""
    now = now or timezone.now()
    event = Event.objects.get(pk=attendance.event_id)
    judgement = judge_position(position, venue=event.venue_position, radius_m=event.venue_radius_m)
    with transaction.atomic():
        attendance = (
            Attendance.objects.select_for_update().select_related("event").get(pk=attendance.pk)
        )
        if attendance.check_in_at is None:
            raise AttendanceError(_("Check in first."))
        if attendance.check_out_at is not None:
            raise AttendanceError(_("You have already checked out."))
        if now > _checkout_deadline(attendance):
            raise AttendanceError(_("Check-out has closed. Ask the event manager to record it."))
        if now <= attendance.check_in_at:
            raise AttendanceError(_("Check-out must come after check-in."))
        attendance.check_out_at = now
        attendance.check_out_method = (
            Attendance.Method.LOCATION if judgement.at_venue else Attendance.Method.SELF
        )
        attendance.check_out_flag = judgement.flag
        attendance.check_out_distance_m = judgement.distance_m
        attendance.hours_worked = _hours_between(attendance.check_in_at, now)
        attendance.save(
            update_fields=[
                "check_out_at",
                "check_out_method",
                "check_out_flag",
                "check_out_distance_m",
                "hours_worked",
                "updated_at",
            ]
        )
    return attendance


def attendance_close_at_end(*, event: Event, user_ids: list[int] | None = None) -> int:
    """Members still checked in when the event is over are checked out at its end (and their
    notes say so), so completion never pays an open-ended shift. Returns how many."""
    still_in = Attendance.objects.select_for_update().filter(
        event=event, check_in_at__isnull=False, check_out_at__isnull=True
    )
    if user_ids is not None:
        still_in = still_in.filter(user_id__in=user_ids)
    end = timezone.localtime(event.ends_at)
    note = f"Checked out at the end of the event ({end:%H:%M}): still checked in then."
    rows = list(still_in)
    for attendance in rows:
        checked_in = attendance.check_in_at
        assert checked_in is not None
        attendance.check_out_at = checked_out = max(event.ends_at, checked_in)
        attendance.check_out_method = Attendance.Method.ADMIN
        attendance.hours_worked = _hours_between(checked_in, checked_out)
        attendance.notes = f"{attendance.notes}\n{note}".strip()
        attendance.updated_at = timezone.now()
    # One statement for a whole festival crew still checked in.
    fields = ["check_out_at", "check_out_method", "hours_worked", "notes", "updated_at"]
    Attendance.objects.bulk_update(rows, fields, batch_size=500)
    return len(rows)


# What staff may record or correct on an attendance record (admin forms offer these).
CORRECTABLE_FIELDS = ("status", "check_in_at", "check_out_at", "call_time", "notes")


def attendance_check_times(*, check_in_at: datetime | None, check_out_at: datetime | None) -> None:
    """Refuse times that cannot be: a check-out without a check-in, or before it.

    Raises AttendanceError with a message that names the check-out (the field to fix).
    """
    if check_out_at and not check_in_at:
        raise AttendanceError(_("A check-out needs a check-in."))
    if check_out_at and check_in_at and check_out_at <= check_in_at:
        raise AttendanceError(_("Check-out must come after check-in."))


def attendance_correct(
    *, attendance: Attendance, by: User | None, reason: str = "", **changes: Any
) -> Attendance:
    """Staff record or correct attendance; every changed field is kept with who changed it.

    Accepts any of status, check_in_at, check_out_at, call_time, notes. A check-in without an
    explicit status is judged against the call time; hours are recomputed.
    """
    unknown = set(changes) - set(CORRECTABLE_FIELDS)
    if unknown:
        raise ValueError(f"Cannot correct {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = (
            Attendance.objects.select_for_update().select_related("event").get(pk=attendance.pk)
        )
        diff = {}
        for field, value in changes.items():
            before = getattr(current, field)
            if before != value:
                diff[field] = [_jsonable(before), _jsonable(value)]
                setattr(current, field, value)
        if "check_in_at" in diff:
            current.check_in_method = Attendance.Method.ADMIN if current.check_in_at else ""
            # Staff vouch for the time they record: the member's own proof no longer applies.
            current.check_in_flag, current.check_in_distance_m = "", None
            if "status" not in changes and current.check_in_at:
                current.status = attendance_status_for(
                    check_in_at=current.check_in_at, call_time=current.expected_call_time
                )
        if "check_out_at" in diff:
            current.check_out_method = Attendance.Method.ADMIN if current.check_out_at else ""
            current.check_out_flag, current.check_out_distance_m = "", None
        attendance_check_times(check_in_at=current.check_in_at, check_out_at=current.check_out_at)
        current.hours_worked = (
            _hours_between(current.check_in_at, current.check_out_at)
            if current.check_in_at and current.check_out_at
            else None
        )
        if not diff:
            return current
        current.save()
        AttendanceCorrection.objects.create(
            attendance=current, changed_by=by, changes=diff, reason=reason[:255]
        )
    return current


def attendance_remove(*, attendance: Attendance, by: User | None, reason: str) -> AttendanceRemoval:
    """Take a record off an event's list, keeping what it held, who removed it and why.

    Attendance is what crew are paid for: a removed record is never simply gone.
    """
    with transaction.atomic():
        current = Attendance.objects.select_for_update().get(pk=attendance.pk)
        removal = AttendanceRemoval.objects.create(
            event_id=current.event_id,
            user_id=current.user_id,
            removed_by=by,
            reason=(reason or "Removed")[:255],
            record={
                field: _jsonable(getattr(current, field))
                for field in (*CORRECTABLE_FIELDS, "hours_worked", "check_in_method")
            },
        )
        current.delete()
    return removal


def _jsonable(value):
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value
