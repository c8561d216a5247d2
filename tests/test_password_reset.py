"""Password reset goes through the email outbox: retried, on record, its link kept from staff."""

import re
from datetime import timedelta

import time_machine
from django.utils import timezone

from attendance.models import EmailNotification
from tests.support.factories import UserFactory

Status = EmailNotification.Status
RESET = EmailNotification.Type.PASSWORD_RESET


def _ask_for_reset(client, email, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/password_reset/", {"email": email})
    assert response.status_code == 302
    assert response.url == "/accounts/password_reset/done/"


def _reset_path(text: str) -> str:
    [url] = re.findall(r"^(http\S+/accounts/reset/\S+)\r?$", text, flags=re.M)
    return "/" + url.split("/", 3)[3]  # the test client serves paths, not SITE_URL's host


def test_a_member_resets_their_password_from_the_emailed_link(
    client, crew, smtp_server, django_capture_on_commit_callbacks
):
    _ask_for_reset(client, crew.email, django_capture_on_commit_callbacks)

    row = EmailNotification.objects.get(notification_type=RESET)
    assert (row.recipient, row.user, row.status) == (crew.email, crew, Status.SENT)
    [message] = smtp_server.messages
    assert message["To"] == crew.email
    assert message["Subject"] == "Reset your Sound Fusion password"
    text = next(
        p.get_payload(decode=True).decode()
        for p in message.walk()
        if p.get_content_type() == "text/plain"
    )

    form_page = client.get(_reset_path(text), follow=True)
    assert b"new_password1" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "Tuskers-at-dawn-42", "new_password2": "Tuskers-at-dawn-42"},
    )
    assert done.status_code == 302 and done.url == "/accounts/reset/done/"
    crew.refresh_from_db()
    assert crew.check_password("Tuskers-at-dawn-42")
    # The link works once.
    again = client.get(_reset_path(text), follow=True)
    assert b"Link expired" in again.content


def test_an_unknown_address_gets_the_same_answer_and_no_email(
    client, db, smtp_server, django_capture_on_commit_callbacks
):
    _ask_for_reset(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert not EmailNotification.objects.exists()
    assert smtp_server.messages == []


def test_a_reset_asked_for_while_the_mail_server_is_down_waits_for_a_retry(
    client, crew, smtp_port_down, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    _ask_for_reset(client, crew.email, django_capture_on_commit_callbacks)
    row = EmailNotification.objects.get(notification_type=RESET)
    assert row.status == Status.QUEUED and row.failed_attempts == 1
    assert row.next_attempt_at is not None


def test_staff_see_that_a_reset_email_went_out_but_never_its_link(
    client, crew, staff_client, smtp_server, django_capture_on_commit_callbacks
):
    _ask_for_reset(client, crew.email, django_capture_on_commit_callbacks)
    row = EmailNotification.objects.get(notification_type=RESET)
    token_path = _reset_path(row.message)

    page = staff_client.get(f"/admin/attendance/emailnotification/{row.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Reset your Sound Fusion password" in html and crew.email in html
    assert "Hidden: this email carries a password reset link." in html
    assert token_path.rstrip("/").rsplit("/", 1)[-1] not in html
    assert "/accounts/reset/" not in html


def test_asking_again_within_two_minutes_sends_no_second_email(
    client, crew, smtp_server, django_capture_on_commit_callbacks
):
    for _ in range(5):
        _ask_for_reset(client, crew.email, django_capture_on_commit_callbacks)
    assert EmailNotification.objects.filter(notification_type=RESET).count() == 1
    assert len(smtp_server.messages) == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        _ask_for_reset(client, crew.email, django_capture_on_commit_callbacks)
    assert EmailNotification.objects.filter(notification_type=RESET).count() == 2
    assert len(smtp_server.messages) == 2


def test_a_member_who_takes_texts_gets_the_reset_link_by_sms_found_by_number(client, db, at_sms):
    import re

    from attendance.models import SmsMessage

    member = UserFactory(
        email="",
        profile__phone_number="254712000555",
        profile__message_channel="sms",
    )
    response = client.post("/accounts/password_reset/", {"email": "0712 000 555"}, follow=True)
    assert "Check your phone or email" in response.content.decode()
    text = SmsMessage.objects.get(user=member, notification_type="password_reset")
    link = re.search(r"(/accounts/reset/\S+/)", text.message).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200 and "new_password1" in page.content.decode()
    # Staff never read the link in admin.
    from tests.support.auth import log_in_staff

    staff = UserFactory(is_staff=True, is_superuser=True)
    log_in_staff(client, staff)
    shown = client.get(f"/admin/attendance/smsmessage/{text.pk}/change/").content.decode()
    assert "/accounts/reset/" not in shown and "Hidden" in shown


def test_a_number_nobody_has_says_the_same_and_sends_nothing(client, db, at_sms):
    from attendance.models import SmsMessage

    response = client.post("/accounts/password_reset/", {"email": "0799 000 000"}, follow=True)
    assert "Check your phone or email" in response.content.decode()
    assert not SmsMessage.objects.exists()
    bad = client.post("/accounts/password_reset/", {"email": "not a number"})
    assert "Type the email address on your account" in bad.content.decode()
