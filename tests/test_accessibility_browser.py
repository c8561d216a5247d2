"""Every portal page and the main admin lists in Chromium at phone and desktop width: axe-core
finds nothing serious, tap targets are 44 px, nothing scrolls sideways, key columns show."""

from decimal import Decimal

import pytest

from attendance.models import MpesaPayment
from attendance.services.ledger import ledger_post
from tests.support.browser import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    assert_fits_the_width,
    assert_no_serious_accessibility_problems,
    columns_off_screen,
    log_in,
    open_page,
    screenshot,
    small_tap_targets,
    wait_for_text,
)
from tests.support.factories import (
    PaymentFactory,
    PayRunFactory,
)
from tests.support.portal_world import ANONYMOUS_PAGES, PASSWORD, PORTAL_PAGES, portal_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("width", "phone"), [(PHONE_WIDTH, True), (DESKTOP_WIDTH, False)])
def test_every_portal_page_is_accessible_with_44px_targets_and_no_sideways_scroll(
    make_browser, live_server, world, width, phone
):
    driver = make_browser(width, phone=phone)
    for path in ANONYMOUS_PAGES:
        open_page(driver, live_server.url + path)
        assert_no_serious_accessibility_problems(driver, path)
        assert small_tap_targets(driver) == [], path
        assert_fits_the_width(driver, width)
    log_in(driver, live_server, "wanjiku", PASSWORD, "/")
    for path in PORTAL_PAGES:
        path = portal_path(path, world)
        open_page(driver, live_server.url + path)
        # Opened sections count too: the roster, the decline form, the emails.
        driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert_no_serious_accessibility_problems(driver, path)
        assert small_tap_targets(driver) == [], path
        assert_fits_the_width(driver, width)
        screenshot(driver, "portal" + path.replace("/", "-").rstrip("-")[:40])


ADMIN_LISTS = {
    "event": ["name_and_client", "status_badge", "crew_filled"],
    "eventcrew": ["member", "status_badge", "invite_button"],
    "mpesapayment": [
        "member",
        "amount_kes",
        "status_badge",
        "receipt_number",
        "resend_button",
        "phone_number",
        "payment_purpose",
    ],
    "emailnotification": ["recipient", "subject", "status_badge", "sent_at"],
    "profile": ["display_name", "balance_kes"],
    "attendance": ["event_name", "member", "status_badge", "checked_in", "checked_out", "hours"],
    "paybillpayment": ["receipt", "amount_kes", "status_badge", "member", "bill_ref", "paid_at"],
}


@pytest.mark.parametrize(("width", "phone"), [(PHONE_WIDTH, True), (DESKTOP_WIDTH, False)])
def test_the_main_admin_lists_are_accessible_and_show_their_key_columns_at_1280(
    make_browser, live_server, world, width, phone
):
    PaymentFactory(
        user=world["member"],
        status="completed",
        receipt_number="SFR1234567",
        phone_number="254712340000",
    )
    from attendance.services.payments.paybill import paybill_seen

    paybill_seen(
        receipt="SFP1234567",
        amount=Decimal(1500),
        paid_at=None,
        bill_ref="my phone 0712 345 678",
        source="confirmation",
        payer_name="JANE WANJIRU",
    )
    driver = make_browser(width, phone=phone)
    log_in(driver, live_server, "grace", PASSWORD, "/admin/", admin=True)
    assert_no_serious_accessibility_problems(driver, "admin index")
    hidden = {}
    for model, key_columns in ADMIN_LISTS.items():
        open_page(driver, f"{live_server.url}/admin/attendance/{model}/", "#result_list")
        assert_no_serious_accessibility_problems(driver, model)
        if not phone:
            hidden[model] = columns_off_screen(driver, key_columns)
            screenshot(driver, f"admin-{model}")
    assert not phone or not hidden
    assert {model: cols for model, cols in hidden.items() if cols} == {}


def test_the_balance_fits_its_card_at_360px_with_large_fonts(make_browser, live_server, world):
    ledger_post(user=world["member"], kind="charge", amount=Decimal("248500"), description="Truck")
    driver = make_browser(360, phone=True)
    log_in(driver, live_server, "wanjiku", PASSWORD, "/")
    for font in ("100%", "200%"):
        driver.execute_script(f"document.documentElement.style.fontSize = '{font}'")
        overflow = driver.execute_script(
            """const card = document.getElementById("balance-card");
               const value = document.getElementById("balance-value");
               return [card.scrollWidth - card.clientWidth, value.scrollWidth - value.clientWidth,
                       document.documentElement.scrollWidth - window.innerWidth];"""
        )
        assert overflow == [0, 0, 0], font
    screenshot(driver, "portal-balance-large-font")


def test_paying_more_than_is_owed_asks_first(browser, live_server, daraja, world):
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")
    amount = browser.find_element("id", "pay-amount")
    assert amount.get_attribute("value") == "1500"
    amount.clear()
    amount.send_keys("99999")
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-confirm-text", "You owe KES 1,500. Pay KES 99,999 anyway?")
    browser.find_element("id", "pay-confirm-no").click()
    assert not MpesaPayment.objects.filter(amount=99999).exists()
    assert browser.find_element("id", "pay-confirm").get_attribute("hidden") is not None


def test_the_pay_page_stops_following_a_failing_status_check_and_offers_to_check_again(
    browser, callbacks_to_live_server, daraja, world, monkeypatch
):
    live_server = callbacks_to_live_server
    MpesaPayment.objects.filter(status="pending").update(status="cancelled")
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")

    def broken(payment):
        raise RuntimeError("the status endpoint is down")

    monkeypatch.setattr("attendance.views.api.payment_json", broken)
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", "We cannot reach Sound Fusion", 20)
    assert browser.find_element("id", "pay-button").is_enabled()

    monkeypatch.undo()  # back up: "Check again" follows the payment to its end
    browser.find_element("id", "pay-check-again").click()
    wait_for_text(browser, "#pay-progress", "Paid, thank you", 20)


def test_the_pay_page_asks_to_log_in_again_when_the_session_ends(
    browser, live_server, daraja, world
):
    MpesaPayment.objects.filter(status="pending").update(status="cancelled")
    daraja.state.callback_delay = 60  # the payment stays pending while we look
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", "Check your phone")
    browser.delete_cookie("sessionid")
    wait_for_text(browser, "#pay-progress", "Please log in again", 10)
    assert "/accounts/login/" in browser.find_element(
        "css selector", "#pay-progress a"
    ).get_attribute("href")


def test_a_waiting_payment_updates_in_place_in_the_admin_list(desktop_browser, live_server, world):
    waiting = MpesaPayment.objects.get(status="pending")
    log_in(
        desktop_browser,
        live_server,
        "grace",
        PASSWORD,
        "/admin/attendance/mpesapayment/",
        admin=True,
    )
    badge = f'[data-open-payment="{waiting.pk}"]'
    assert desktop_browser.find_elements("css selector", badge)
    MpesaPayment.objects.filter(pk=waiting.pk).update(
        status="completed", receipt_number="LIVE12345"
    )
    wait_for_text(desktop_browser, "#result_list", "LIVE12345", 15)
    assert not desktop_browser.find_elements("css selector", badge)


def test_the_email_preview_shows_a_whole_invitation_and_its_text_wraps(
    desktop_browser, live_server, world
):
    from attendance.models import EmailNotification

    invitation = EmailNotification.objects.get(notification_type="crew_invitation")
    log_in(
        desktop_browser,
        live_server,
        "grace",
        PASSWORD,
        f"/admin/attendance/emailnotification/{invitation.pk}/change/",
        admin=True,
    )
    text = desktop_browser.find_element("css selector", ".sf-email-text")
    assert desktop_browser.execute_script(
        "return arguments[0].scrollWidth <= arguments[0].clientWidth", text
    )
    frame = desktop_browser.find_element("css selector", "iframe.sf-email-preview")
    frame_height = frame.size["height"]
    desktop_browser.switch_to.frame(frame)
    decline = desktop_browser.find_element("partial link text", "Decline")
    bottom = desktop_browser.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.bottom", decline
    )
    desktop_browser.switch_to.default_content()
    assert bottom <= frame_height, f"Decline at {bottom}px in a {frame_height}px preview"
    assert frame.size["width"] >= 600  # as wide as the email itself, not squeezed into a column


def test_every_portal_destination_is_in_view_on_a_360px_phone(make_browser, live_server, world):
    driver = make_browser(360, phone=True)
    log_in(driver, live_server, "wanjiku", PASSWORD, "/")
    outside = driver.execute_script(
        """const out = [];
           for (const el of document.querySelectorAll('nav.nav a, nav.nav button')) {
             const r = el.getBoundingClientRect();
             const away = r.left < 0 || r.right > window.innerWidth || r.width === 0;
             if (away) out.push(el.textContent.trim());
           }
           return out;"""
    )
    assert outside == []
    labels = driver.execute_script(
        "return [...document.querySelectorAll('nav.nav a, nav.nav button')]"
        ".map(e => e.textContent.trim())"
    )
    assert labels[-3:] == ["My pay", "Account", "Log out"]
    assert small_tap_targets(driver) == []
    screenshot(driver, "portal-nav-360")


def test_the_admin_pages_staff_work_on_have_no_serious_accessibility_problems(
    make_browser, live_server, world
):
    """The event add and change pages (with their inline rows), the staffing board, the
    dashboard, a pay run and the payouts list, at 1280 px: axe finds nothing serious."""
    from attendance.models import EventRoleRequirement

    event = world["confirmed"].event
    EventRoleRequirement.objects.create(event=event, role=world["confirmed"].role, needed=3)
    run = PayRunFactory()
    driver = make_browser(1280, phone=False)
    log_in(driver, live_server, "grace", PASSWORD, "/admin/", admin=True)
    problems = []
    for path in (
        "/admin/",
        "/admin/attendance/event/add/",
        f"/admin/attendance/event/{event.pk}/change/",
        f"/admin/attendance/event/{event.pk}/board/",
        f"/admin/attendance/payrun/{run.pk}/change/",
        "/admin/attendance/payout/",
        "/admin/attendance/statementimport/import/",
        "/admin/attendance/statementimport/reconcile/",
    ):
        open_page(driver, live_server.url + path, "#content")
        try:
            assert_no_serious_accessibility_problems(driver, path)
        except AssertionError as error:
            problems.append(str(error))
    assert problems == [], "\n\n".join(problems)
