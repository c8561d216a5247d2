"""The crew portal in a real browser: Debian's headless Chromium at phone width."""

from datetime import timedelta

import pytest
from django.utils import timezone

from attendance.models import EventCrew
from attendance.services.crew.assignments import crew_invite
from tests.support.browser import (
    assert_fits_the_phone,
    click_and_wait_for,
    log_in,
    screenshot,
    wait_for_text,
)
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _stat(driver, name: str) -> str:
    return driver.find_element("css selector", f"#stat-{name} .value").text


def test_a_member_declines_one_invitation_confirms_another_and_sees_the_counts_change(
    browser, live_server
):
    member = UserFactory(
        username="wanjiku", first_name="Wanjiku", profile__phone_number="0712345678"
    )
    member.set_password("portal-pass-2026")
    member.save()
    start = timezone.now() + timedelta(days=5)
    festival = EventCrewFactory(
        user=member,
        role=CrewRoleFactory(name="Monitor engineer"),
        event=EventFactory(
            name="Nyege Nyege warm-up, Uhuru Gardens main stage",
            venue="Uhuru Gardens Memorial Park, Lang'ata Road, Nairobi",
            starts_at=start,
            ends_at=start + timedelta(hours=8),
            call_time=start - timedelta(hours=4),
            special_instructions="Long cable runs: bring the 50 m multicore and spare XLRs.",
        ),
    )
    wedding = EventCrewFactory(
        user=member,
        event=EventFactory(
            name="Wedding reception",
            starts_at=start + timedelta(days=2),
            ends_at=start + timedelta(days=2, hours=6),
            call_time=start + timedelta(days=2, hours=-2),
        ),
    )
    for assignment in (festival, wedding):
        crew_invite(assignment=assignment)

    log_in(browser, live_server, "wanjiku", "portal-pass-2026", "/crew/assignments/")

    assert _stat(browser, "pending") == "2"
    assert _stat(browser, "upcoming") == "0"

    card = browser.find_element("id", f"assignment-{wedding.pk}")
    card.find_element("css selector", "details.decline summary").click()
    card.find_element("name", "reason").send_keys("Out of town that weekend")
    screenshot(browser, "crew-invitations")
    click_and_wait_for(
        browser,
        card.find_element("css selector", "details.decline button[type=submit]"),
        ".messages",
        "Declined: Wedding reception",
    )

    assert "Declined: Wedding reception" in browser.find_element("css selector", ".messages").text
    assert _stat(browser, "pending") == "1"
    assert _stat(browser, "declined") == "1"

    card = browser.find_element("id", f"assignment-{festival.pk}")
    click_and_wait_for(
        browser,
        card.find_element("xpath", ".//button[normalize-space()='Confirm']"),
        ".messages",
        "Confirmed: Nyege Nyege",
    )

    assert "Confirmed: Nyege Nyege" in browser.find_element("css selector", ".messages").text
    assert _stat(browser, "pending") == "0"
    assert _stat(browser, "upcoming") == "1"
    assert "spare XLRs" in browser.find_element("id", f"assignment-{festival.pk}").text

    assert_fits_the_phone(browser)
    screenshot(browser, "crew-assignments")

    festival.refresh_from_db()
    wedding.refresh_from_db()
    assert festival.status == EventCrew.Status.CONFIRMED
    assert (wedding.status, wedding.decline_reason) == (
        EventCrew.Status.DECLINED,
        "Out of town that weekend",
    )


def test_staff_send_an_invitation_with_one_click_from_the_crew_list_on_a_phone(
    browser, live_server
):
    admin = UserFactory(username="grace", is_staff=True, is_superuser=True)
    admin.set_password("admin-pass-2026")
    admin.save()
    assignment = EventCrewFactory(user=UserFactory(first_name="Brian", last_name="Otieno"))

    log_in(
        browser, live_server, "grace", "admin-pass-2026", "/admin/attendance/eventcrew/", admin=True
    )
    wait_for_text(browser, "#content h1", "event crew assignment")
    click_and_wait_for(
        browser,
        browser.find_element("xpath", "//button[normalize-space()='Send invite']"),
        ".messagelist",
        "Invitation sent to Brian Otieno",
    )
    assignment.refresh_from_db()
    assert assignment.invitation_sent
    assert "Resend invite" in browser.page_source
