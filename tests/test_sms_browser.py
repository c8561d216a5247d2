"""SMS from the member's side in a real browser at phone width: choosing texts on the Account
page, then answering an SMS invitation through its short link."""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from attendance.models import EventCrew
from attendance.services.crew.assignments import crew_invite
from tests.support.browser import (
    assert_fits_the_phone,
    assert_no_serious_accessibility_problems,
    click_and_wait_for,
    log_in,
    open_page,
    screenshot,
    small_tap_targets,
)
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_chooses_sms_and_answers_a_texted_invitation_by_its_link(
    browser, live_server, at_sms, settings
):
    settings.SITE_URL = live_server.url
    member = UserFactory(
        username="achieng", first_name="Achieng", profile__phone_number="254733345001"
    )
    member.set_password("portal-pass-2026")
    member.save()
    log_in(browser, live_server, "achieng", "portal-pass-2026", "/account/")
    assert browser.find_element("css selector", "input[value=sms]").is_selected()
    assert "+254 733 345001" in browser.find_element("id", "channel-form").text
    assert_no_serious_accessibility_problems(browser, "account with SMS")
    assert_fits_the_phone(browser)
    browser.find_element("css selector", "input[value=both]").click()
    click_and_wait_for(
        browser,
        browser.find_element("css selector", "#channel-form [type=submit]"),
        ".messages",
        "by SMS and email",
    )
    member.profile.refresh_from_db()
    assert member.profile.message_channel == "both"
    screenshot(browser, "sms-account-375")

    start = timezone.now() + timedelta(days=4)
    assignment = EventCrewFactory(
        user=member,
        role=CrewRoleFactory(name="Lighting tech"),
        event=EventFactory(
            name="Koroga Festival, Arboretum",
            venue="Nairobi Arboretum",
            starts_at=start,
            ends_at=start + timedelta(hours=7),
            call_time=start - timedelta(hours=3),
        ),
    )
    crew_invite(assignment=assignment)
    [text] = [
        m["message"] for m in requests.get(f"{at_sms.url}/simulator/messages", timeout=5).json()
    ]
    link = re.search(r"(http://\S+/[2-9A-HJ-NP-Z]{10}/)", text).group(1)
    open_page(browser, link)
    assert "Koroga Festival" in browser.find_element("tag name", "main").text
    assert_no_serious_accessibility_problems(browser, "short link page")
    assert_fits_the_phone(browser)
    assert small_tap_targets(browser) == []
    click_and_wait_for(
        browser,
        browser.find_element("xpath", "//button[contains(., 'Yes, confirm')]"),
        "main",
        "you are confirmed",
    )
    screenshot(browser, "sms-short-link-confirmed-375")
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED
