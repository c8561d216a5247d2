"""Paying from the portal in a real browser: the button, the simulator, a real callback."""

from decimal import Decimal

import pytest

from attendance.models import LedgerEntry, MpesaPayment
from attendance.services.ledger import ledger_post
from tests.support.browser import assert_fits_the_phone, log_in, screenshot, wait_for_text
from tests.support.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAYMENT_SETTLES_WITHIN = 15  # the simulator answers after 0.2 s; the page asks every 2 s


@pytest.fixture
def member(db):
    member = UserFactory(
        username="otieno",
        first_name="Otieno",
        email="otieno@example.com",
        profile__phone_number="0712345678",
    )
    member.set_password("portal-pass-2026")
    member.save()
    ledger_post(
        user=member,
        kind=LedgerEntry.Kind.CHARGE,
        amount=Decimal("1500"),
        description="Lost XLR cable",
    )
    return member


def _open_home(browser, live_server):
    log_in(browser, live_server, "otieno", "portal-pass-2026", "/")
    wait_for_text(browser, "#balance-value", "KES 1,500.00")


def test_a_member_pays_their_balance_and_watches_it_settle(
    browser, callbacks_to_live_server, member
):
    _open_home(browser, callbacks_to_live_server)
    assert browser.find_element("id", "pay-amount").get_attribute("value") == "1500"
    assert browser.find_element("id", "pay-phone").get_attribute("value") == "+254 712 345678"
    assert_fits_the_phone(browser)

    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", "Check your phone")
    wait_for_text(browser, "#pay-progress", "Paid, thank you", PAYMENT_SETTLES_WITHIN)
    payment = MpesaPayment.objects.get()
    assert payment.receipt_number in browser.find_element("id", "pay-progress").text
    # The page reloads itself with the new balance and the payment in the history, and the
    # thank-you is still there.
    wait_for_text(browser, "#balance-value", "KES 0.00")
    wait_for_text(browser, "#pay-result", f"M-Pesa code {payment.receipt_number}")
    assert f"M-Pesa payment {payment.receipt_number}" in browser.page_source
    screenshot(browser, "portal-paid")
    assert LedgerEntry.objects.filter(kind="payment", user=member).count() == 1


@pytest.mark.parametrize(
    ("phone", "says"),
    [
        ("0711111032", "Not paid: The prompt was cancelled on the phone. Nothing was paid."),
        ("0711110009", "Our team checks it before your balance is updated"),  # paid 1 short
        ("0711115000", "M-Pesa did not take the request"),
    ],
    ids=["cancelled", "underpaid", "daraja-refused"],
)
def test_a_payment_that_does_not_settle_cleanly_says_why_and_credits_nothing(
    browser, callbacks_to_live_server, member, phone, says
):
    _open_home(browser, callbacks_to_live_server)
    field = browser.find_element("id", "pay-phone")
    field.clear()
    field.send_keys(phone)
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", says, PAYMENT_SETTLES_WITHIN)
    assert browser.find_element("id", "pay-button").is_enabled()  # free to try again
    assert not LedgerEntry.objects.filter(kind="payment").exists()
    member.profile.refresh_from_db()
    assert member.profile.balance == Decimal("1500")


def test_a_prompt_daraja_never_confirmed_is_still_followed_and_a_late_payment_shown(
    browser, callbacks_to_live_server, daraja, member, settings
):
    settings.MPESA_READ_TIMEOUT = 0.5
    daraja.state.callback_delay = 1.5  # the customer pays after we stopped waiting for Daraja
    _open_home(browser, callbacks_to_live_server)
    field = browser.find_element("id", "pay-phone")
    field.clear()
    field.send_keys("0711115041")
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", "M-Pesa did not answer in time")
    wait_for_text(
        browser, "#pay-progress", "Our team checks it before your balance", PAYMENT_SETTLES_WITHIN
    )
    payment = MpesaPayment.objects.get()
    assert payment.needs_review
    assert payment.receipt_number in browser.find_element("id", "pay-progress").text
    assert not LedgerEntry.objects.filter(kind="payment").exists()


def test_the_payment_status_shows_where_the_member_is_looking(
    browser, callbacks_to_live_server, member
):
    """Upcoming events above the pay card push it down the page: the status the tap starts
    is brought into view, not left below the screen while the button goes pale."""
    from datetime import timedelta

    from django.utils import timezone

    from attendance.services.attendance import attendance_expect
    from tests.support.factories import EventFactory

    for days in range(1, 5):
        start = timezone.now() + timedelta(days=days)
        attendance_expect(event=EventFactory(starts_at=start), user=member)
    _open_home(browser, callbacks_to_live_server)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.find_element("id", "pay-button").click()
    wait_for_text(browser, "#pay-progress", "Check your phone")
    import time

    time.sleep(1)  # the smooth scroll
    in_view = browser.execute_script(
        """const r = document.getElementById('pay-progress').getBoundingClientRect();
           return r.top >= 0 && r.bottom <= window.innerHeight;"""
    )
    assert in_view
