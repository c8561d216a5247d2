from datetime import timedelta

import pytest
from django.utils import timezone

from attendance.models import Attendance, AttendanceCorrection
from attendance.services.attendance import (
    AttendanceError,
    attendance_check_in,
    attendance_check_out,
    attendance_correct,
    attendance_expect,
)
from tests.support.factories import EventFactory


@pytest.fixture
def booking(crew):
    call = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    event = EventFactory(
        call_time=call, starts_at=call + timedelta(hours=1), ends_at=call + timedelta(hours=8)
    )
    return attendance_expect(event=event, user=crew)


def test_check_in_before_the_window_opens_is_refused(booking, settings):
    settings.CHECKIN_OPENS_MINUTES_BEFORE = 60
    too_early = booking.event.call_time - timedelta(minutes=61)
    with pytest.raises(AttendanceError, match="Check-in opens at"):
        attendance_check_in(attendance=booking, now=too_early)
    booking.refresh_from_db()
    assert booking.check_in_at is None


def test_on_time_within_the_grace_period_is_present(booking, settings):
    settings.ATTENDANCE_GRACE_MINUTES = 15
    at = booking.event.call_time + timedelta(minutes=15)
    result = attendance_check_in(attendance=booking, now=at)
    assert result.status == Attendance.Status.PRESENT
    assert result.check_in_method == Attendance.Method.SELF


def test_after_the_grace_period_is_late(booking, settings):
    settings.ATTENDANCE_GRACE_MINUTES = 15
    at = booking.event.call_time + timedelta(minutes=16)
    assert attendance_check_in(attendance=booking, now=at).status == Attendance.Status.LATE


def test_personal_call_time_is_what_counts(booking, settings):
    settings.ATTENDANCE_GRACE_MINUTES = 10
    booking.call_time = booking.event.call_time + timedelta(hours=1)
    booking.save()
    at = booking.event.call_time + timedelta(minutes=50)
    assert attendance_check_in(attendance=booking, now=at).status == Attendance.Status.PRESENT


def test_check_in_after_the_window_closes_is_refused(booking, settings):
    settings.CHECKIN_CLOSES_MINUTES_AFTER = 120
    with pytest.raises(AttendanceError, match="closed"):
        attendance_check_in(
            attendance=booking, now=booking.event.call_time + timedelta(minutes=121)
        )


def test_checking_in_twice_is_refused(booking):
    attendance_check_in(attendance=booking, now=booking.event.call_time)
    with pytest.raises(AttendanceError, match="already checked in"):
        attendance_check_in(attendance=booking, now=booking.event.call_time + timedelta(minutes=1))


def test_cancelled_events_cannot_be_checked_into(booking):
    booking.event.status = "cancelled"
    booking.event.save()
    with pytest.raises(AttendanceError, match="cancelled"):
        attendance_check_in(attendance=booking, now=booking.event.call_time)


def test_check_out_records_hours_worked(booking):
    attendance_check_in(attendance=booking, now=booking.event.call_time)
    result = attendance_check_out(
        attendance=booking, now=booking.event.call_time + timedelta(hours=7, minutes=30)
    )
    assert result.hours_worked == pytest.approx(7.5)
    with pytest.raises(AttendanceError, match="already checked out"):
        attendance_check_out(attendance=booking, now=booking.event.call_time + timedelta(hours=8))


def test_check_out_without_check_in_is_refused(booking):
    with pytest.raises(AttendanceError, match="Check in first"):
        attendance_check_out(attendance=booking, now=booking.event.call_time)


def test_staff_corrections_keep_who_changed_what(booking, staff):
    at = booking.event.call_time + timedelta(minutes=40)
    result = attendance_correct(
        attendance=booking,
        by=staff,
        reason="Sheet",
        check_in_at=at,
        check_out_at=at + timedelta(hours=4),
    )
    assert result.status == Attendance.Status.LATE
    assert result.hours_worked == pytest.approx(4)
    assert result.check_in_method == Attendance.Method.ADMIN
    correction = AttendanceCorrection.objects.get(attendance=booking)
    assert correction.changed_by == staff
    assert correction.reason == "Sheet"
    assert set(correction.changes) == {"check_in_at", "check_out_at"}
    assert correction.changes["check_in_at"][0] is None

    attendance_correct(
        attendance=booking,
        by=staff,
        status=Attendance.Status.EXCUSED,
        reason="Traffic accident on Mombasa Rd",
    )
    assert AttendanceCorrection.objects.filter(attendance=booking).count() == 2
    booking.refresh_from_db()
    assert booking.status == Attendance.Status.EXCUSED


def test_a_correction_that_changes_nothing_leaves_no_trace(booking, staff):
    attendance_correct(attendance=booking, by=staff, status=booking.status)
    assert not AttendanceCorrection.objects.exists()
