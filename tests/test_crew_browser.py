"""The crew portal in a real browser: Debian's headless Chromium at phone width."""

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from attendance.models import EventCrew
from attendance.services.crew import crew_invite
from tests.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PHONE_WIDTH = 375

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="sf-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # This machine has no internet: without these Chromium keeps dialling Google.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # A phone: the page is laid out for a 375 px wide viewport, touch and all.
    options.add_experimental_option(
        "mobileEmulation",
        {"deviceMetrics": {"width": PHONE_WIDTH, "height": 812, "pixelRatio": 2, "touch": True}},
    )
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _click_and_wait_for(driver, element, css: str, text: str) -> None:
    """Click, then wait until the next page shows `text` in `css`."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    element.click()
    WebDriverWait(driver, 10).until(
        expected_conditions.text_to_be_present_in_element(("css selector", css), text)
    )


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

    browser.get(f"{live_server.url}/accounts/login/?next=/crew/assignments/")
    browser.find_element("name", "username").send_keys("wanjiku")
    browser.find_element("name", "password").send_keys("portal-pass-2026")
    browser.find_element(
        "css selector", "form button[type=submit], form input[type=submit]"
    ).click()

    assert _stat(browser, "pending") == "2"
    assert _stat(browser, "upcoming") == "0"

    card = browser.find_element("id", f"assignment-{wedding.pk}")
    card.find_element("css selector", "details.decline summary").click()
    card.find_element("name", "reason").send_keys("Out of town that weekend")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "crew-invitations-375px.png"))
    _click_and_wait_for(
        browser,
        card.find_element("css selector", "details.decline button[type=submit]"),
        ".messages",
        "Declined: Wedding reception",
    )

    assert "Declined: Wedding reception" in browser.find_element("css selector", ".messages").text
    assert _stat(browser, "pending") == "1"
    assert _stat(browser, "declined") == "1"

    card = browser.find_element("id", f"assignment-{festival.pk}")
    _click_and_wait_for(
        browser,
        card.find_element("xpath", ".//button[normalize-space()='Confirm']"),
        ".messages",
        "Confirmed: Nyege Nyege",
    )

    assert "Confirmed: Nyege Nyege" in browser.find_element("css selector", ".messages").text
    assert _stat(browser, "pending") == "0"
    assert _stat(browser, "upcoming") == "1"
    assert "spare XLRs" in browser.find_element("id", f"assignment-{festival.pk}").text

    viewport = browser.execute_script("return window.innerWidth")
    page_width = browser.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    assert viewport == PHONE_WIDTH
    assert page_width <= viewport, f"horizontal scroll: page {page_width}px > {viewport}px"

    assert browser.save_screenshot(str(ARTIFACTS / "crew-assignments-375px.png"))

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

    browser.get(f"{live_server.url}/admin/login/?next=/admin/attendance/eventcrew/")
    browser.find_element("name", "username").send_keys("grace")
    browser.find_element("name", "password").send_keys("admin-pass-2026")
    _click_and_wait_for(
        browser,
        browser.find_element("css selector", "[type=submit]"),
        "#content h1",
        "event crew assignment",
    )
    _click_and_wait_for(
        browser,
        browser.find_element("xpath", "//button[normalize-space()='Send invite']"),
        ".messagelist",
        "Invitation sent to Brian Otieno",
    )
    assignment.refresh_from_db()
    assert assignment.invitation_sent
    assert "Resend invite" in browser.page_source
