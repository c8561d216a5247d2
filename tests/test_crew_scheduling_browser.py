"""Scheduling on a phone and the staffing board on a desktop, in headless Chromium (issue 19):
marking dates unavailable, offering for an open role, subscribing to the calendar feed, and a
manager assigning and inviting from the board; axe-core on each page."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from icalendar import Calendar

from attendance.models import BulkJob, EventCrew, EventRoleRequirement, Unavailability
from attendance.services.crew.assignments import crew_confirm
from tests.support.browser import (
    assert_fits_the_width,
    assert_no_serious_accessibility_problems,
    click_and_wait_for,
    log_in,
    open_page,
    screenshot,
    small_tap_targets,
)
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "schedule-pass-2026"


def _member(username="achieng", **fields):
    member = UserFactory(username=username, profile__phone_number="0712345678", **fields)
    member.set_password(PASSWORD)
    member.save()
    return member


def _upcoming(name, days, **fields):
    starts = (timezone.now() + timedelta(days=days)).replace(second=0, microsecond=0)
    return EventFactory(
        name=name,
        starts_at=starts,
        ends_at=starts + timedelta(hours=6),
        call_time=starts - timedelta(hours=2),
        **fields,
    )


def _check(driver, name: str, width: int = 375) -> None:
    assert_no_serious_accessibility_problems(driver, name)
    assert small_tap_targets(driver) == [], name
    assert_fits_the_width(driver, width)


def test_a_member_marks_dates_offers_for_an_open_role_and_subscribes_at_375px(
    make_browser, live_server, settings
):
    settings.SITE_URL = live_server.url
    member = _member(first_name="Achieng")
    rigger = CrewRoleFactory(name="Rigger")
    member.profile.roles.add(rigger)
    gig = _upcoming("Koroga Festival, Arboretum", 6)
    EventRoleRequirement.objects.create(event=gig, role=rigger, needed=2)
    confirmed = EventCrewFactory(
        user=member, role=rigger, event=_upcoming("Sol Fest, Uhuru Gardens", 9)
    )
    crew_confirm(assignment=confirmed)
    driver = make_browser(375, phone=True)
    log_in(driver, live_server, "achieng", PASSWORD, "/crew/assignments/")

    # Dates she cannot work.
    click_and_wait_for(
        driver,
        driver.find_element("link text", "Dates you cannot work"),
        "h1",
        "Dates you cannot work",
    )
    _check(driver, "availability")
    first = timezone.localdate() + timedelta(days=20)
    for field, value in (("starts_on", first), ("ends_on", first + timedelta(days=2))):
        # A date input takes its value in the browser's own format; set it as the form sends it.
        element = driver.find_element("name", field)
        driver.execute_script("arguments[0].value = arguments[1]", element, value.isoformat())
    driver.find_element("name", "reason").send_keys("Cousin's wedding in Kisumu")
    click_and_wait_for(
        driver,
        driver.find_element("css selector", "#unavailable-form button[type=submit]"),
        ".messages",
        "Saved: you cannot work",
    )
    assert "Cousin's wedding in Kisumu" in driver.find_element("tag name", "main").text
    _check(driver, "availability with a range")
    assert Unavailability.objects.get(user=member).ends_on == first + timedelta(days=2)

    # An open role she can do.
    open_page(driver, f"{live_server.url}/crew/open-roles/")
    _check(driver, "open roles")
    screenshot(driver, "portal-open-roles")
    click_and_wait_for(
        driver,
        driver.find_element("css selector", f"#open-{gig.pk}-{rigger.pk} button"),
        ".messages",
        "Offer sent: Rigger at Koroga Festival",
    )
    assert EventCrew.objects.get(user=member, event=gig).status == EventCrew.Status.OFFERED

    # Her calendar.
    open_page(driver, f"{live_server.url}/account/")
    click_and_wait_for(
        driver,
        driver.find_element("css selector", "button[value=start]"),
        ".messages",
        "Your calendar address is ready",
    )
    _check(driver, "account with a calendar feed")
    screenshot(driver, "portal-calendar-feed")
    subscribe = driver.find_element("link text", "Subscribe on this phone").get_attribute("href")
    address = driver.find_element("id", "feed-url").get_attribute("value")
    assert subscribe.startswith("webcal://") and subscribe[len("webcal://") :] in address
    feed = requests.get(address, timeout=10)
    assert feed.status_code == 200
    [entry] = Calendar.from_ical(feed.content).walk("VEVENT")
    assert str(entry["SUMMARY"]) == "Sol Fest, Uhuru Gardens (Rigger)"
    click_and_wait_for(
        driver,
        driver.find_element("css selector", "button[value=stop]"),
        ".messages",
        "Calendar feed stopped",
    )
    assert requests.get(address, timeout=10).status_code == 404


def test_a_manager_staffs_a_role_from_the_board_at_1280px(make_browser, live_server):
    manager = UserFactory(username="grace", is_staff=True, is_superuser=True)
    manager.set_password(PASSWORD)
    manager.save()
    engineer = CrewRoleFactory(name="FOH engineer")
    event = _upcoming("Safari Sevens, RFUEA", 7)
    EventRoleRequirement.objects.create(event=event, role=engineer, needed=2)
    picks = []
    for name in ("Kamau", "Njeri", "Odhiambo"):
        member = UserFactory(first_name=name)
        member.profile.roles.add(engineer)
        picks.append(member)
    driver = make_browser(1280, phone=False)
    log_in(
        driver,
        live_server,
        "grace",
        PASSWORD,
        f"/admin/attendance/event/{event.pk}/board/",
        admin=True,
    )
    assert_no_serious_accessibility_problems(driver, "staffing board")
    screenshot(driver, "admin-staffing-board")
    for member in picks[:2]:
        driver.find_element("id", f"pick-{member.pk}").click()
    click_and_wait_for(
        driver,
        driver.find_element("css selector", "#board-candidates button[value=invite]"),
        "#job-summary",
        "of 2",
    )
    job = BulkJob.objects.get()
    assert job.kind == BulkJob.Kind.SEND_INVITATIONS
    assert {a.user for a in event.crew.all()} == set(picks[:2])
    # The job page leads back where the manager came from, with no empty error box.
    assert not driver.find_element("id", "job-error").is_displayed()
    click_and_wait_for(
        driver, driver.find_element("id", "job-back"), "#board-roles", "FOH engineer"
    )
    assert driver.current_url.endswith(f"/admin/attendance/event/{event.pk}/board/")
