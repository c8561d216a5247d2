"""Checking in with the venue's QR code (issue 29, its first part): the code proves presence for
a minute or two, for one event, untampered; opening the link changes nothing; two taps check in
once."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from attendance.models import Attendance
from attendance.services.attendance import AttendanceError, attendance_check_in_at_venue
from attendance.venue_codes import SECONDS, VenueCodeError, venue_code, venue_code_check
from tests.support.auth import log_in_staff
from tests.support.clock import nairobi_at
from tests.support.factories import AttendanceFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db


def _at_call(user):
    """An attendance whose check-in window is open now (call time in 30 minutes)."""
    now = timezone.now()
    event = EventFactory(starts_at=now + timedelta(hours=1), call_time=now + timedelta(minutes=30))
    return AttendanceFactory(event=event, user=user)


def test_a_code_is_good_for_its_window_and_the_one_before_then_expires():
    start = 1_800_000_000.0  # any instant: the windows are the server's clock's
    code = venue_code(7, start)
    venue_code_check(7, code, start + 1)
    venue_code_check(7, code, start + SECONDS)  # changed on the screen, still accepted
    with pytest.raises(VenueCodeError, match="expired"):
        venue_code_check(7, code, start + 2 * SECONDS + 1)  # a forwarded photo, later
    with pytest.raises(VenueCodeError, match="expired"):
        venue_code_check(7, venue_code(7, start + 10 * SECONDS), start)  # from the future
    with pytest.raises(VenueCodeError, match="not this event's"):
        venue_code_check(8, code, start + 1)
    window, signature = code.split("-")
    with pytest.raises(VenueCodeError, match="not this event's"):
        venue_code_check(7, f"{int(window) + 1}-{signature}", start + SECONDS)  # tampered
    with pytest.raises(VenueCodeError, match="not a venue code"):
        venue_code_check(7, "hello", start)


@pytest.mark.parametrize("hh_mm", ["00:30", "12:00", "19:30", "23:50"])
def test_scanning_checks_in_once_with_the_code_as_proof_at_any_hour(client, crew, hh_mm):
    with nairobi_at(hh_mm):
        attendance = _at_call(crew)
        client.force_login(crew)
        url = f"/events/{attendance.event_id}/at-venue/{venue_code(attendance.event_id)}/"

        page = client.get(url)
        assert page.status_code == 200 and "Check in now" in page.content.decode()
        attendance.refresh_from_db()
        assert attendance.check_in_at is None  # opening the link (a chat preview) changes nothing

        first = client.post(url, follow=True)
        second = client.post(url, follow=True)
    attendance.refresh_from_db()
    assert attendance.check_in_method == Attendance.Method.QR
    assert attendance.status == Attendance.Status.PRESENT
    assert "code (present)." in first.content.decode()
    assert "(already)" in second.content.decode()


def test_a_forwarded_code_fails_later_and_another_members_event_is_a_404(client, crew, other_crew):
    attendance = _at_call(crew)
    code = venue_code(attendance.event_id)
    client.force_login(crew)
    with time_machine.travel(timezone.now() + timedelta(seconds=3 * SECONDS)):
        page = client.get(f"/events/{attendance.event_id}/at-venue/{code}/")
        assert "This code has expired" in page.content.decode()
        done = client.post(f"/events/{attendance.event_id}/at-venue/{code}/", follow=True)
    assert "This code has expired" in done.content.decode()
    attendance.refresh_from_db()
    assert attendance.check_in_at is None

    client.force_login(other_crew)
    assert client.get(f"/events/{attendance.event_id}/at-venue/{code}/").status_code == 404


def test_the_code_does_not_open_check_in_outside_its_window(crew):
    event = EventFactory(starts_at=timezone.now() + timedelta(days=2))
    attendance = AttendanceFactory(event=event, user=crew)
    with pytest.raises(AttendanceError, match="Check-in opens at"):
        attendance_check_in_at_venue(attendance=attendance, code=venue_code(event.pk))


def test_managers_open_the_venue_qr_page_others_are_refused(client, crew):
    attendance = _at_call(crew)
    manager = UserFactory(is_staff=True)
    manager.groups.add(Group.objects.get(name="Event managers"))
    log_in_staff(client, manager)
    page = client.get(f"/admin/attendance/event/{attendance.event_id}/venue-qr/")
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    assert 'http-equiv="refresh"' in html and "scan this with your phone" in html
    change = client.get(f"/admin/attendance/event/{attendance.event_id}/change/").content.decode()
    assert "venue-qr-link" in change

    viewer = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    log_in_staff(client, viewer)
    assert client.get(f"/admin/attendance/event/{attendance.event_id}/venue-qr/").status_code == 403
