"""A member's M-Pesa number is proven and owned (issue 25): a new number takes effect only
after the code texted to it comes back, with the password asked again; a colleague's number
cannot be taken; the old number and the email hear of a change; payouts to a new number wait
for a second Finance approval; and SMS replies then reach the right member."""

import re
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, transaction
from django.utils import timezone

from attendance.models import EmailNotification, PhoneVerification, Profile, SmsMessage
from attendance.services.people.phones import (
    MAX_WRONG_CODES,
    PhoneChangeError,
    phone_change_confirm,
    phone_change_start,
)
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "crew-password-123"


@pytest.fixture
def wanjiku(at_sms):
    return UserFactory(first_name="Wanjiku", profile__phone_number="254712000001")


def _code(phone):
    text = SmsMessage.objects.filter(phone_number=phone, notification_type="phone_code").last()
    return re.search(r"code is (\d{6})", text.message).group(1)


def test_a_new_number_takes_effect_only_after_its_code_and_the_old_number_is_told(wanjiku):
    phone_change_start(user=wanjiku, phone_number="254722000002", password=PASSWORD)
    wanjiku.profile.refresh_from_db()
    assert wanjiku.profile.phone_number == "254712000001"  # nothing changed yet
    code = _code("254722000002")
    phone_change_confirm(user=wanjiku, code=f"{code[:3]} {code[3:]}")  # typed with a space
    wanjiku.profile.refresh_from_db()
    assert wanjiku.profile.phone_number == "254722000002"
    assert wanjiku.profile.phone_changed_at is not None
    to_old = SmsMessage.objects.get(phone_number="254712000001", notification_type="phone_changed")
    assert "If this was not you, call the office now" in to_old.message
    assert EmailNotification.objects.filter(user=wanjiku, notification_type="phone_changed")
    entry = LogEntry.objects.get(additional_data__event="phone_changed")
    assert "254722000002" not in str(entry.changes)  # masked in the audit trail too


def test_the_password_is_asked_again(wanjiku):
    with pytest.raises(PhoneChangeError, match="not your password"):
        phone_change_start(user=wanjiku, phone_number="254722000002", password="guess")
    assert not SmsMessage.objects.filter(notification_type="phone_code").exists()


def test_a_colleague_s_number_cannot_be_saved(wanjiku):
    otieno = UserFactory(profile__phone_number="254733000003")
    with pytest.raises(PhoneChangeError, match="on another member's account"):
        phone_change_start(user=wanjiku, phone_number="254733000003", password=PASSWORD)
    # Nor behind the service's back: the database keeps a number one member's.
    with pytest.raises(IntegrityError), transaction.atomic():
        Profile.objects.filter(user=wanjiku).update(phone_number=otieno.profile.phone_number)


def test_wrong_codes_end_the_change_and_an_old_code_expires(wanjiku):
    phone_change_start(user=wanjiku, phone_number="254722000002", password=PASSWORD)
    for _ in range(MAX_WRONG_CODES - 1):
        with pytest.raises(PhoneChangeError, match="not the code"):
            phone_change_confirm(user=wanjiku, code="000000")
    with pytest.raises(PhoneChangeError, match="Too many wrong codes"):
        phone_change_confirm(user=wanjiku, code="000000")
    with pytest.raises(PhoneChangeError, match="expired"):
        phone_change_confirm(user=wanjiku, code=_code("254722000002"))  # even the right one
    phone_change_start(user=wanjiku, phone_number="254722000002", password=PASSWORD)
    PhoneVerification.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PhoneChangeError, match="expired"):
        phone_change_confirm(user=wanjiku, code=_code("254722000002"))
    wanjiku.profile.refresh_from_db()
    assert wanjiku.profile.phone_number == "254712000001"


def test_the_account_page_walks_a_member_through_it(wanjiku, client):
    client.force_login(wanjiku)
    blank = client.post("/account/", {"phone_number": "", "password": PASSWORD})
    assert "This field is required" in blank.content.decode()  # never "no number"
    taken = UserFactory(profile__phone_number="254733000003")
    page = client.post(
        "/account/", {"phone_number": "0733 000 003", "password": PASSWORD}
    ).content.decode()
    assert "is on another member&#x27;s account" in page
    assert taken.profile.phone_number == "254733000003"
    page = client.post(
        "/account/", {"phone_number": "0722 000 002", "password": PASSWORD}, follow=True
    ).content.decode()
    assert 'id="phone-code"' in page and "+254 722 000002" in page
    page = client.post("/account/", {"code": "123"}, follow=True).content.decode()
    assert "not the code we texted" in page
    page = client.post("/account/", {"phone": "cancel"}, follow=True).content.decode()
    assert "Number change cancelled" in page and 'id="phone-code"' not in page


@pytest.mark.django_db(transaction=True)
def test_a_reply_from_the_new_number_reaches_its_owner_only(wanjiku, settings):
    """Before: a colleague could save Wanjiku's number and her "YES" went to him."""
    from attendance.services.crew.assignments import crew_invite
    from attendance.services.messaging.sms_inbox import sms_callback_receive
    from tests.support.factories import EventCrewFactory, EventFactory

    settings.SMS_REPLIES_ENABLED = True
    colleague = UserFactory()
    with pytest.raises(PhoneChangeError):
        phone_change_start(user=colleague, phone_number="254712000001", password=PASSWORD)
    start = timezone.now() + timedelta(days=2)
    mine = EventCrewFactory(
        event=EventFactory(starts_at=start, ends_at=start + timedelta(hours=4)), user=wanjiku
    )
    crew_invite(assignment=mine)
    mine.refresh_from_db()
    body = f"id=ATIn_9&from=%2B254712000001&text=YES+{mine.reply_code}".encode()
    sms_callback_receive(kind="incoming", body=body, remote_addr=None)
    mine.refresh_from_db()
    assert mine.status == "confirmed"
