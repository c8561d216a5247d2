"""Show day in a real browser (issue 29): a member at 375 px opens the venue QR code's link
(logged out, as a phone camera would), logs in and checks in; another checks in with the
phone's location, which Chromium is told to report."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import Attendance
from attendance.venue_codes import venue_code
from tests.support.browser import (
    assert_fits_the_phone,
    assert_no_serious_accessibility_problems,
    click_and_wait_for,
    log_in,
    open_page,
    screenshot,
    wait_for_text,
)
from tests.support.factories import AttendanceFactory, EventFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
KICC = (Decimal("-1.288750"), Decimal("36.823290"))


def _member(username):
    member = UserFactory(username=username, first_name=username.title())
    member.set_password("portal-pass-2026")
    member.save()
    return member


def _tonight(**fields):
    now = timezone.now()
    return EventFactory(
        name="Blankets & Wine, Nairobi",
        venue="KICC Grounds",
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=6),
        call_time=now + timedelta(minutes=20),
        **fields,
    )


def test_a_member_scans_the_venue_code_logs_in_and_is_checked_in_once(browser, live_server):
    event = _tonight()
    member = _member("akinyi")
    AttendanceFactory(event=event, user=member)
    scanned = f"/events/{event.pk}/at-venue/{venue_code(event.pk)}/"

    browser.get(f"{live_server.url}{scanned}")  # the camera opens the link; not logged in
    assert "/accounts/login/" in browser.current_url
    log_in(browser, live_server, "akinyi", "portal-pass-2026", scanned)
    wait_for_text(browser, "main", "Check in now")
    assert_fits_the_phone(browser)
    assert_no_serious_accessibility_problems(browser, "venue check-in")
    screenshot(browser, "venue-check-in-confirm")
    button = browser.find_element("css selector", "main form button[type=submit]")
    click_and_wait_for(browser, button, ".messages", "with the venue's code")
    attendance = Attendance.objects.get(event=event, user=member)
    assert attendance.check_in_method == "qr"
    assert "(venue QR)" in browser.find_element("css selector", f"#event-{event.pk}").text

    # Back to the confirm page: the browser kept no copy of it (a signed-in member's pages are
    # not stored), so it asks again and the page says they are in, with nothing to press.
    browser.back()
    wait_for_text(browser, "#venue-check-in", "You checked in at")
    assert not browser.find_elements("id", "venue-check-in-button")
    # A second tap from a page opened before the first (another tab): still one check-in.
    browser.execute_script(
        "const form = document.createElement('form'); form.method = 'post';"
        "form.innerHTML = '<input name=csrfmiddlewaretoken value=' +"
        " document.cookie.match(/csrftoken=([^;]+)/)[1] + '>';"
        "document.body.append(form); form.submit();"
    )
    wait_for_text(browser, ".messages", "(already)")
    attendance.refresh_from_db()
    assert attendance.check_in_method == "qr"
    # Scanning again later says so, with no button to press.
    open_page(browser, f"{live_server.url}{scanned}")
    wait_for_text(browser, "#venue-check-in", "You checked in at")


def test_the_check_in_button_sends_the_phones_location_when_the_venue_has_one(browser, live_server):
    event = _tonight(venue_latitude=KICC[0], venue_longitude=KICC[1])
    member = _member("brian")
    AttendanceFactory(event=event, user=member)
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": live_server.url, "permissions": ["geolocation"]}
    )
    browser.execute_cdp_cmd(
        "Emulation.setGeolocationOverride",
        {"latitude": -1.2889, "longitude": 36.8234, "accuracy": 25},
    )
    log_in(browser, live_server, "brian", "portal-pass-2026", "/")
    card = browser.find_element("id", f"event-{event.pk}")
    button = card.find_element("css selector", "form[data-locate] button[type=submit]")
    click_and_wait_for(browser, button, ".messages", "Checked in at")
    attendance = Attendance.objects.get(event=event, user=member)
    assert (attendance.check_in_method, attendance.check_in_flag) == ("gps", "")
    assert "(at the venue)" in browser.find_element("id", f"event-{event.pk}").text
    assert_fits_the_phone(browser)


def test_a_refused_location_still_checks_the_member_in_flagged(browser, live_server):
    event = _tonight(venue_latitude=KICC[0], venue_longitude=KICC[1])
    member = _member("chebet")
    AttendanceFactory(event=event, user=member)
    # No permission granted: headless Chromium refuses the position, as a member tapping
    # "Block" would.
    browser.execute_cdp_cmd(
        "Browser.setPermission",
        {"permission": {"name": "geolocation"}, "setting": "denied", "origin": live_server.url},
    )
    log_in(browser, live_server, "chebet", "portal-pass-2026", "/")
    card = browser.find_element("id", f"event-{event.pk}")
    button = card.find_element("css selector", "form[data-locate] button[type=submit]")
    click_and_wait_for(browser, button, ".messages", "Checked in at")
    attendance = Attendance.objects.get(event=event, user=member)
    assert (attendance.check_in_method, attendance.check_in_flag) == ("self", "no_fix")


def test_the_arrivals_board_follows_a_check_in_made_elsewhere(make_browser, live_server):
    """A crew chief watches the board at 1280 px (and on a phone): a member checks in on their
    own phone, and the board shows them on site within one refresh, without a reload."""
    from attendance.models import EventCrew
    from attendance.services.attendance import attendance_check_in
    from tests.support.factories import CrewRoleFactory

    chief = UserFactory(username="chief", is_staff=True, is_superuser=True)
    chief.set_password("portal-pass-2026")
    chief.save()
    event = _tonight()
    role = CrewRoleFactory(name="Monitor engineer")
    members = [_member(name) for name in ("diana", "evans", "faith")]
    for member in members:
        EventCrew.objects.create(
            event=event, user=member, role=role, status="confirmed", confirmed_at=timezone.now()
        )
        AttendanceFactory(event=event, user=member)
    desk = make_browser(1280, phone=False)
    log_in(desk, live_server, "chief", "portal-pass-2026", "/admin/", admin=True)
    open_page(desk, f"{live_server.url}/admin/attendance/event/{event.pk}/arrivals/", "#arrivals")
    wait_for_text(desk, "#count-expected", "3")
    wait_for_text(desk, "#count-on_site", "0")
    assert_no_serious_accessibility_problems(desk, "arrivals board")
    old_html = desk.find_element("tag name", "html")

    attendance_check_in(attendance=Attendance.objects.get(event=event, user=members[1]))

    wait_for_text(desk, "#count-on_site", "1", 15)
    assert "On site" in desk.find_element("id", f"crew-{_crew_id(event, members[1])}").text
    assert desk.find_element("tag name", "html") == old_html  # no reload: the same page
    screenshot(desk, "arrivals-board")

    phone = make_browser(375, phone=True)
    log_in(phone, live_server, "chief", "portal-pass-2026", "/admin/", admin=True)
    open_page(phone, f"{live_server.url}/admin/attendance/event/{event.pk}/arrivals/", "#arrivals")
    wait_for_text(phone, "#count-on_site", "1")
    assert_fits_the_phone(phone)


def _crew_id(event, member):
    from attendance.models import EventCrew

    return EventCrew.objects.get(event=event, user=member).pk
