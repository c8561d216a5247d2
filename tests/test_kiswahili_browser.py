"""The portal in Kiswahili in Chromium at 375 px, as a member who chose it reads it: no English
sentence of ours left on any page, axe finds nothing serious, targets stay 44 px and nothing
scrolls sideways (Kiswahili words are longer)."""

import re

import polib
import pytest

from attendance.models import Profile
from tests.support.browser import (
    PHONE_WIDTH,
    assert_fits_the_width,
    assert_no_serious_accessibility_problems,
    log_in,
    open_page,
    screenshot,
    small_tap_targets,
)
from tests.support.i18n import ROOT
from tests.support.portal_world import PASSWORD, PORTAL_PAGES, portal_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _english_sentences() -> list[str]:
    """Our English phrases of three words or more: none may show on a Kiswahili page."""
    found = []
    for name in ("django", "djangojs"):
        for entry in polib.pofile(str(ROOT / f"locale/sw/LC_MESSAGES/{name}.po")):
            text = re.sub(r"<[^>]+>|&[a-z]+;", " ", entry.msgid)
            pieces = [p.strip() for p in re.split(r"%\(\w+\)s", text)]
            found += [p for p in pieces if len(re.findall(r"[A-Za-z]{2,}", p)) >= 3]
    return sorted(set(found))


def test_every_portal_page_reads_in_kiswahili_at_375_px(make_browser, live_server, world):
    Profile.objects.filter(user=world["member"]).update(language="sw")
    english = _english_sentences()
    assert len(english) > 150
    driver = make_browser(PHONE_WIDTH, phone=True)
    log_in(driver, live_server, "wanjiku", PASSWORD, "/")
    for page in PORTAL_PAGES:
        path = portal_path(page, world)
        open_page(driver, live_server.url + path)
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert driver.execute_script("return document.documentElement.lang") == "sw", path
        text = driver.execute_script("return document.body.innerText")
        assert [sentence for sentence in english if sentence in text] == [], path
        assert_no_serious_accessibility_problems(driver, path)
        assert small_tap_targets(driver) == [], path
        assert_fits_the_width(driver, PHONE_WIDTH)
        screenshot(driver, "portal-sw" + path.replace("/", "-").rstrip("-")[:40])


def test_the_pay_form_asks_in_kiswahili_before_paying_more_than_is_owed(
    browser, live_server, world
):
    Profile.objects.filter(user=world["member"]).update(language="sw")
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")
    amount = browser.find_element("id", "pay-amount")
    amount.clear()
    amount.send_keys("2000")
    browser.find_element("id", "pay-button").click()
    question = browser.find_element("id", "pay-confirm-text").text
    assert question.startswith("Unadaiwa KES 1,500") and "salio lako la ziada" in question
    assert browser.find_element("id", "pay-confirm-yes").text == "Lipa KES 2,000"
