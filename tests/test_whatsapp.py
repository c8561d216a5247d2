"""WhatsApp as a third channel (issue 32): templates and free text through the outbox, the
signed webhook, statuses in order of meaning, the next channel once, and one-tap answers.

Everything goes over real HTTP to the local Cloud API simulator, and its statuses and replies
come back signed to a live server."""

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from attendance.models import (
    EmailNotification,
    EventCrew,
    Profile,
    SmsMessage,
    WhatsAppInbound,
    WhatsAppMessage,
    WhatsAppWebhook,
)
from attendance.services.crew.assignments import crew_invite
from attendance.services.messaging.channels import member_message
from attendance.services.messaging.whatsapp import whatsapp_deliver
from attendance.services.messaging.whatsapp_inbox import (
    whatsapp_webhook_process,
    whatsapp_webhook_receive,
)
from attendance.whatsapp.templates import BY_TYPE, TEMPLATES
from attendance.whatsapp.webhook import signature_ok
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.waiting import wait_until
from tests.support.whatsapp import incoming, on_whatsapp, raw, signed, status

pytestmark = pytest.mark.django_db


def _invite(member, capture, *, name="Safari Rally gala"):
    start = timezone.now() + timedelta(days=2)
    assignment = EventCrewFactory(
        event=EventFactory(name=name, starts_at=start, ends_at=start + timedelta(hours=5)),
        user=member,
    )
    with capture(execute=True):
        crew_invite(assignment=assignment)
    assignment.refresh_from_db()
    return assignment


def _sent(simulator, to):
    return [m for m in simulator.state.messages if m["to"] == to]


# --- The signature ------------------------------------------------------------------------


def test_the_signature_matches_the_reference_vector():
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":'
        b'[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":'
        b'"254700000001","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.TEST1",'
        b'"status":"delivered","timestamp":"1793318400","recipient_id":"254712345678"}]},'
        b'"field":"messages"}]}]}'
    )
    assert len(body) == 344
    secret = "0123456789abcdef0123456789abcdef"
    header = "sha256=15e32e4d978459a309eb86a102324d9f23120ff70caf60a8add6f613cc38fd2e"
    assert signature_ok(body, header, secret)
    respaced = json.dumps(json.loads(body)).encode()
    assert not signature_ok(respaced, header, secret)
    assert not signature_ok(body, header, "")


# --- The webhook view -----------------------------------------------------------------------


def test_the_handshake_echoes_the_challenge_only_with_our_verify_token(client, settings):
    settings.WHATSAPP_VERIFY_TOKEN = "our-verify-token"
    url = reverse("attendance:api_whatsapp_webhook")
    ok = client.get(
        url,
        {
            "hub.mode": "subscribe",
            "hub.challenge": "1158201444",
            "hub.verify_token": "our-verify-token",
        },
    )
    assert (ok.status_code, ok.content, ok["Content-Type"]) == (200, b"1158201444", "text/plain")
    wrong = client.get(
        url, {"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "guess"}
    )
    assert wrong.status_code == 403


def test_a_forged_or_missing_signature_is_refused_and_nothing_is_stored(client, settings):
    settings.WHATSAPP_APP_SECRET = "the-app-secret"
    url = reverse("attendance:api_whatsapp_webhook")
    body = raw(status("wamid.X", "delivered"))
    forged = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    for headers in ({"HTTP_X_HUB_SIGNATURE_256": forged}, {}):
        answer = client.post(url, body, content_type="application/json", **headers)
        assert answer.status_code == 403
    assert not WhatsAppWebhook.objects.exists()
    data, headers = signed(status("wamid.X", "delivered"), "the-app-secret")
    answer = client.post(url, data, content_type="application/json", **headers)
    assert answer.status_code == 200
    row = WhatsAppWebhook.objects.get()
    assert row.raw_body == data.decode()
    assert whatsapp_webhook_process(webhook_id=row.pk) == "unmatched"  # names nothing of ours


def test_a_signed_body_we_cannot_read_is_kept_and_answered_200(client, settings):
    settings.WHATSAPP_APP_SECRET = "the-app-secret"
    data = b'{"object":"page","entry":[]}'
    signature = "sha256=" + hmac.new(b"the-app-secret", data, hashlib.sha256).hexdigest()
    answer = client.post(
        reverse("attendance:api_whatsapp_webhook"),
        data,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )
    assert answer.status_code == 200
    assert WhatsAppWebhook.objects.get().status == "malformed"


# --- Sending -----------------------------------------------------------------------------


def test_an_invitation_goes_as_the_template_with_buttons_and_nothing_else(
    wa, django_capture_on_commit_callbacks, settings
):
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345671")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    message = WhatsAppMessage.objects.get(user=member)
    assert message.kind == "template" and message.template_name == "sf_crew_invitation_v1"
    assert message.status == "sent" and message.provider_message_id.startswith("wamid.")
    assert member.first_name in message.text and "Safari Rally gala" in message.text
    [sent] = _sent(wa, "254712345671")
    assert [b["payload"] for b in sent["buttons"]] == [
        f"crew:{assignment.pk}:yes",
        f"crew:{assignment.pk}:no",
    ]
    assert [b["text"] for b in sent["buttons"]] == ["Confirm", "Decline"]
    assert sent["reference"] == f"wa:{message.pk}"
    # The email is written and held, no text goes: one channel.
    assert EmailNotification.objects.get(user=member).status == "held"
    assert not SmsMessage.objects.filter(user=member).exists()


def test_in_kiswahili_the_template_is_the_kiswahili_one(wa, django_capture_on_commit_callbacks):
    member = on_whatsapp(phone="254712345672", language="sw")
    _invite(member, django_capture_on_commit_callbacks)
    message = WhatsAppMessage.objects.get(user=member)
    assert message.language == "sw" and message.text.startswith("Habari")
    [sent] = _sent(wa, "254712345672")
    assert [b["text"] for b in sent["buttons"]] == ["Nitakuja", "Siwezi"]


def test_outside_the_window_free_text_is_not_attempted(
    wa, settings, django_capture_on_commit_callbacks
):
    """crew_off has no template: with the window closed it goes by SMS, WhatsApp untouched."""
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345673")
    assignment = EventCrewFactory(user=member)
    with django_capture_on_commit_callbacks(execute=True):
        member_message(
            user=member,
            notification_type="crew_off",
            context={"event": assignment.event, "removed": True, "portal_url": "http://x/"},
            event=assignment.event,
        )
    assert not WhatsAppMessage.objects.exists()
    assert wa.state.stats["send"] == 0
    assert SmsMessage.objects.get(user=member).notification_type == "crew_off"


def test_inside_the_window_free_text_goes_by_whatsapp(
    wa, settings, django_capture_on_commit_callbacks
):
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345674", window=True)
    assignment = EventCrewFactory(user=member)
    with django_capture_on_commit_callbacks(execute=True):
        member_message(
            user=member,
            notification_type="crew_off",
            context={"event": assignment.event, "removed": True, "portal_url": "http://x/"},
        )
    message = WhatsAppMessage.objects.get()
    assert message.kind == "text" and message.status == "sent"
    assert _sent(wa, "254712345674")[0]["type"] == "text"
    assert not SmsMessage.objects.exists()


def test_131047_on_the_webhook_falls_back_to_sms_once(
    wa_to_live_server, wa, settings, django_capture_on_commit_callbacks
):
    """The API accepted the template; the failure comes later, twice: one SMS, no email."""
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345682")  # the simulator fails it with 131047
    _invite(member, django_capture_on_commit_callbacks)
    message = WhatsAppMessage.objects.get(user=member)
    assert wait_until(lambda: SmsMessage.objects.filter(user=member).exists(), timeout=10)
    message.refresh_from_db()
    assert (message.delivery_status, message.error_code) == ("failed", 131047)
    # The same failure again (Meta delivers at least once): nothing more.
    data, _ = signed(
        status(message.provider_message_id, "failed", to="254712345682", code=131047),
        wa.state.app_secret,
    )
    whatsapp_webhook_process(
        webhook_id=whatsapp_webhook_receive(body=data, remote_addr=None).row_id
    )
    sms = SmsMessage.objects.get(user=member)
    assert sms.notification_type == "crew_invitation" and "Safari Rally" in sms.message
    message.refresh_from_db()
    assert message.fallback_sms_id == sms.pk and message.fell_back_at is not None
    # The email stays held behind the SMS: it goes only if the text fails too.
    assert EmailNotification.objects.get(user=member).status == "held"
    assert sms.fallback_email_id == EmailNotification.objects.get(user=member).pk


def test_not_on_whatsapp_falls_back_and_stops_using_the_number(
    wa_to_live_server, settings, django_capture_on_commit_callbacks
):
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345683")
    _invite(member, django_capture_on_commit_callbacks)
    assert wait_until(lambda: SmsMessage.objects.filter(user=member).exists(), timeout=10)
    member.profile.refresh_from_db()
    assert member.profile.whatsapp_blocked_at is not None
    assert "131026" in member.profile.whatsapp_blocked_reason
    # The next invitation goes by SMS straight away.
    _invite(member, django_capture_on_commit_callbacks, name="Jazz Night")
    assert WhatsAppMessage.objects.filter(user=member).count() == 1
    assert SmsMessage.objects.filter(user=member).count() == 2


def test_a_member_without_sms_falls_back_to_the_held_email(
    wa_to_live_server, settings, django_capture_on_commit_callbacks
):
    settings.SMS_ENABLED = False
    member = on_whatsapp(phone="254712345683")
    _invite(member, django_capture_on_commit_callbacks)
    assert wait_until(
        lambda: EmailNotification.objects.filter(user=member, status="sent").exists(), timeout=10
    )
    assert not SmsMessage.objects.exists()


def test_throughput_errors_are_retried_and_sent_once(
    wa, django_capture_on_commit_callbacks, settings
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    member = on_whatsapp(phone="254712345687")  # the first send answers 130429
    with django_capture_on_commit_callbacks(execute=False):
        crew_invite(assignment=EventCrewFactory(user=member))
    message = WhatsAppMessage.objects.get(user=member)
    first = whatsapp_deliver(message_id=message.pk)
    assert first.outcome == "retry" and "130429" in first.error
    message.refresh_from_db()
    assert (message.status, message.failed_attempts) == ("queued", 1)
    assert whatsapp_deliver(message_id=message.pk).outcome == "sent"
    message.refresh_from_db()
    assert message.status == "sent" and message.failed_attempts == 1
    assert len(_sent(wa, "254712345687")) == 1
    assert message.error_code == 130429


def test_a_template_meta_does_not_know_fails_and_the_member_still_hears(
    wa, settings, django_capture_on_commit_callbacks, monkeypatch
):
    """A template name that was never approved: 132001, never retried, SMS instead."""
    settings.SMS_ENABLED = True
    from attendance.whatsapp import simulator

    monkeypatch.setitem(simulator.BY_NAME, "sf_crew_invitation_v1", None)
    monkeypatch.delitem(simulator.BY_NAME, "sf_crew_invitation_v1")
    member = on_whatsapp(phone="254712345675")
    _invite(member, django_capture_on_commit_callbacks)
    message = WhatsAppMessage.objects.get(user=member)
    assert (message.status, message.error_code, message.failed_attempts) == ("failed", 132001, 1)
    assert SmsMessage.objects.get(user=member).notification_type == "crew_invitation"


def test_an_answer_that_never_came_is_settled_by_the_status_not_by_sending_again(
    wa, settings, django_capture_on_commit_callbacks
):
    """A read timeout hides an accepted message; its status names our row: no second send."""
    settings.SMS_ENABLED = True
    settings.WHATSAPP_READ_TIMEOUT = 0.2
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    wa.state.latency = 0.5
    member = on_whatsapp(phone="254712345676")
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assignment = EventCrewFactory(user=member)
        crew_invite(assignment=assignment)
    message = WhatsAppMessage.objects.get(user=member)
    assert whatsapp_deliver(message_id=message.pk).outcome == "retry"
    wa.state.latency = 0
    assert wait_until(lambda: len(_sent(wa, "254712345676")) == 1, timeout=5)
    [sent] = _sent(wa, "254712345676")
    data, _ = signed(
        status(sent["id"], "sent", to="254712345676", reference=sent["reference"]), "x"
    )
    whatsapp_webhook_process(
        webhook_id=whatsapp_webhook_receive(body=data, remote_addr=None).row_id
    )
    message.refresh_from_db()
    assert message.status == "sent" and message.provider_message_id == sent["id"]
    assert whatsapp_deliver(message_id=message.pk).outcome == "skipped"
    assert len(_sent(wa, "254712345676")) == 1
    assert queued  # the first delivery was queued after commit, as always


# --- Statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ending", "final"),
    [("81", "delivered"), ("84", "read"), ("85", "read"), ("70", "read")],
)
def test_statuses_end_in_the_furthest_state_whatever_their_order(
    wa_to_live_server, django_capture_on_commit_callbacks, ending, final
):
    member = on_whatsapp(phone=f"2547123456{ending}")
    _invite(member, django_capture_on_commit_callbacks)
    message = WhatsAppMessage.objects.get(user=member)
    expected = {"81": 2, "84": 3, "85": 6, "70": 3}[ending]
    assert wait_until(lambda: WhatsAppWebhook.objects.count() == expected, timeout=10)
    assert wait_until(
        lambda: not WhatsAppWebhook.objects.filter(status="received").exists(), timeout=10
    )
    message.refresh_from_db()
    assert message.delivery_status == final
    assert message.delivered_at is not None
    assert (message.read_at is not None) == (final == "read")
    assert message.pricing == "regular / utility"


def test_a_stale_sent_never_downgrades_delivered():
    member = on_whatsapp()
    message = WhatsAppMessage.objects.create(
        user=member,
        wa_number="254712345670",
        notification_type="crew_reminder",
        kind="template",
        text="t",
        status="sent",
        provider_message_id="wamid.A",
        delivery_status="delivered",
    )
    for state in ("sent", "delivered"):
        data, _ = signed(status("wamid.A", state), "x")
        row_id = whatsapp_webhook_receive(body=data, remote_addr=None).row_id
        assert whatsapp_webhook_process(webhook_id=row_id) in ("stale", "duplicate")
    message.refresh_from_db()
    assert message.delivery_status == "delivered"


# --- Answers ---------------------------------------------------------------------------------


def test_pressing_confirm_answers_the_invitation_once_and_thanks_in_the_window(
    wa_to_live_server, wa, django_capture_on_commit_callbacks
):
    member = on_whatsapp(phone="254712345677")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    for _ in range(2):  # a double tap
        answer = requests.post(
            f"{wa.url}/simulator/reply",
            json={"from": "254712345677", "button": "Confirm"},
            timeout=10,
        )
        assert answer.json()["status"] == 200
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED
    assert WhatsAppInbound.objects.filter(user=member, crew_assignment=assignment).count() == 2
    # One thank-you, in free text inside the window the tap opened; the second tap is quiet.
    [thanks] = WhatsAppMessage.objects.filter(user=member, notification_type="crew_reply")
    assert thanks.kind == "text" and "confirmed" in thanks.text
    assert wait_until(lambda: len(_sent(wa, "254712345677")) == 2, timeout=10)
    assert _sent(wa, "254712345677")[1]["type"] == "text"
    assert WhatsAppWebhook.objects.filter(kind="message", status="duplicate").count() == 1
    member.profile.refresh_from_db()
    assert member.profile.whatsapp_last_inbound_at is not None


def test_a_press_for_someone_elses_invitation_changes_nothing(wa):
    owner = on_whatsapp(phone="254712345678")
    intruder = on_whatsapp(phone="254712345679")
    assignment = EventCrewFactory(user=owner, invitation_sent=True)
    body = incoming(
        "254712345679", wamid="wamid.IN1", payload=f"crew:{assignment.pk}:no", label="Decline"
    )
    data, _ = signed(body, wa.state.app_secret)
    row_id = whatsapp_webhook_receive(body=data, remote_addr=None).row_id
    assert whatsapp_webhook_process(webhook_id=row_id) == "unmatched"
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.INVITED
    inbound = WhatsAppInbound.objects.get()
    assert inbound.user == intruder and "not this member's" in inbound.detail
    assert not WhatsAppMessage.objects.exists()  # nobody is told anything


def test_typed_yes_with_the_code_works_too(wa, django_capture_on_commit_callbacks, settings):
    settings.SMS_REPLIES_ENABLED = True
    member = on_whatsapp(phone="254712345680")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    body = incoming("254712345680", wamid="wamid.IN2", text=f"Ndiyo {assignment.reply_code}")
    data, _ = signed(body, wa.state.app_secret)
    with django_capture_on_commit_callbacks(execute=True):
        row_id = whatsapp_webhook_receive(body=data, remote_addr=None).row_id
    assert WhatsAppWebhook.objects.get(pk=row_id).status == "processed"
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED


def test_stop_opts_the_member_out_and_texts_take_over(
    wa, settings, django_capture_on_commit_callbacks
):
    settings.SMS_ENABLED = True
    member = on_whatsapp(phone="254712345681")
    data, _ = signed(
        incoming("254712345681", wamid="wamid.IN3", text=" Stop "), wa.state.app_secret
    )
    with django_capture_on_commit_callbacks(execute=True):
        whatsapp_webhook_receive(body=data, remote_addr=None)
    profile = Profile.objects.get(user=member)
    assert profile.whatsapp_opted_out_at is not None and profile.message_channel == ""
    [goodbye] = WhatsAppMessage.objects.filter(user=member)
    assert "no more WhatsApp" in goodbye.text
    _invite(member, django_capture_on_commit_callbacks)
    assert WhatsAppMessage.objects.filter(user=member).count() == 1
    assert SmsMessage.objects.filter(user=member, notification_type="crew_invitation").exists()


# --- Account page and templates ----------------------------------------------------------------


def test_choosing_whatsapp_on_the_account_page_records_the_opt_in(client, settings):
    settings.WHATSAPP_ENABLED = True
    member = UserFactory(profile__phone_number="254712345690")
    client.force_login(member)
    page = client.get(reverse("attendance:account"))
    assert b"WhatsApp number" in page.content and b"Reply STOP" in page.content
    answer = client.post(
        reverse("attendance:account"),
        {"message_channel": "whatsapp", "whatsapp_number": "0722 000 111"},
        follow=True,
    )
    assert b"We will contact you by WhatsApp on +254 722 000111" in answer.content
    profile = Profile.objects.get(user=member)
    assert profile.message_channel == "whatsapp" and profile.whatsapp_number == "254722000111"
    assert profile.whatsapp_opted_in_at is not None


def test_the_account_page_says_when_a_number_is_not_on_whatsapp(client, settings):
    settings.WHATSAPP_ENABLED = True
    member = on_whatsapp(whatsapp_blocked_at=timezone.now(), whatsapp_blocked_reason="(131026) x")
    client.force_login(member)
    assert b"is not on WhatsApp" in client.get(reverse("attendance:account")).content


def test_every_template_submission_is_well_formed(capsys):
    call_command("whatsapp_templates")
    submitted = json.loads(capsys.readouterr().out)
    assert len(submitted) == 2 * len(TEMPLATES)
    for body in submitted:
        [text] = [c["text"] for c in body["components"] if c["type"] == "BODY"]
        assert len(text) <= 1024 and body["category"] == "UTILITY"
        assert not text.startswith("{{") and not text.endswith("}}")
        buttons = [c for c in body["components"] if c["type"] == "BUTTONS"]
        for button in buttons[0]["buttons"] if buttons else []:
            assert len(button["text"]) <= 25
    assert {"sf_crew_invitation_v1", "sf_crew_reminder_v1"} <= {b["name"] for b in submitted}
    assert "crew_invitation" in BY_TYPE
