"""The app's notifications (web push, issue 33): subscribing per device, invitations pushed
encrypted through the push service stand-in and answered from the notification, dead devices
removed, and the member's next channel used once when no device takes a notification."""

import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from attendance.models import (
    EmailNotification,
    EventCrew,
    PushMessage,
    PushSubscription,
    SmsMessage,
    member_name,
)
from attendance.push.keys import b64u_decode
from attendance.push.simulator import decrypt
from attendance.services.crew.assignments import crew_invite
from attendance.services.messaging.push import PUSH_TYPES, push_deliver, push_subscribe
from attendance.services.people.profiles import profile_set_channel
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory


def test_the_stand_in_decrypts_rfc_8291s_own_example():
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.derive_private_key(
        int.from_bytes(b64u_decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
        ec.SECP256R1(),
    )
    body = b64u_decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6"
        "e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZ"
        "wbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
    )
    assert decrypt(body, private, b64u_decode("BTBZMqHH6r4Tts7J_aSIgg")) == (
        b"When I grow up, I want to be a watermelon"
    )


def _member(push_service, scenario="", phone="254712345678"):
    member = UserFactory(email=f"{phone}@example.com", profile__phone_number=phone)
    push_subscribe(user=member, subscription=push_service.new_device(scenario))
    profile_set_channel(user=member, channel="push")
    return member


def _invite(member, capture):
    start = timezone.now() + timedelta(days=2)
    assignment = EventCrewFactory(
        event=EventFactory(
            name="Koroga Festival", starts_at=start, ends_at=start + timedelta(hours=6)
        ),
        user=member,
    )
    with capture(execute=True):
        crew_invite(assignment=assignment)
    return assignment


def _path(url):
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


@pytest.mark.django_db
def test_an_invitation_is_pushed_encrypted_and_the_stand_in_reads_what_was_sent(
    push_service, at_sms, django_capture_on_commit_callbacks
):
    member = _member(push_service)
    assignment = _invite(member, django_capture_on_commit_callbacks)
    row = PushMessage.objects.get()
    assert row.status == "sent" and row.devices == 1
    [received] = push_service.state.received()
    assert received["payload"] == row.payload  # decrypted by the stand-in: what we sent
    assert received["payload"]["title"] == f"{assignment.role.name} at Koroga Festival?"
    assert [a["action"] for a in received["payload"]["actions"]] == ["confirm", "decline"]
    assert received["ttl"] > 0 and received["subject"].startswith("mailto:")
    # One channel: the email is written and held, no text goes.
    assert EmailNotification.objects.get(user=member).status == "held"
    assert not SmsMessage.objects.exists() and at_sms.state.messages == []


@pytest.mark.django_db
def test_confirm_on_the_notification_answers_once_for_that_member_only(
    push_service, at_sms, django_capture_on_commit_callbacks
):
    member = _member(push_service)
    assignment = _invite(member, django_capture_on_commit_callbacks)
    confirm, decline = PushMessage.objects.get().payload["actions"]
    client = Client(enforce_csrf_checks=True)  # the worker has no page and no CSRF token
    answer = client.post(_path(confirm["answer"]))
    assert answer.status_code == 200 and answer.json()["done"] is True
    assert "Koroga Festival" in answer.json()["message"]
    assignment.refresh_from_db()
    confirmed_at = assignment.confirmed_at
    assert assignment.status == EventCrew.Status.CONFIRMED
    again = client.post(_path(confirm["answer"]))  # a second press changes nothing
    assignment.refresh_from_db()
    assert again.status_code == 200 and assignment.confirmed_at == confirmed_at
    # Another member's invitation cannot be answered with this one's token.
    other = _invite(UserFactory(email="o@example.com"), django_capture_on_commit_callbacks)
    forged = _path(confirm["answer"]).replace(f"/crew/{assignment.pk}/", f"/crew/{other.pk}/")
    assert client.post(forged).status_code == 404
    other.refresh_from_db()
    assert other.status == EventCrew.Status.INVITED
    assert client.get(_path(decline["answer"])).status_code == 405


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", ["gone", "expired"])
def test_a_dead_device_is_removed_and_the_member_gets_a_text_once(
    push_service, at_sms, settings, django_capture_on_commit_callbacks, scenario
):
    member = _member(push_service, scenario)
    _invite(member, django_capture_on_commit_callbacks)
    row = PushMessage.objects.get()
    assert row.status == "failed" and row.fell_back_at is not None
    assert not PushSubscription.objects.filter(user=member).exists()
    sms = SmsMessage.objects.get(user=member)
    assert sms == row.fallback_sms and sms.notification_type == "crew_invitation"
    assert push_deliver(message_id=row.pk).outcome == "skipped"  # a retry sends nothing more
    assert SmsMessage.objects.filter(user=member).count() == 1
    # The next message finds no device: it goes by text from the start.
    profile_set_channel(user=member, channel="push")
    start = timezone.now() + timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        crew_invite(
            assignment=EventCrewFactory(
                event=EventFactory(starts_at=start, ends_at=start + timedelta(hours=2)),
                user=member,
            )
        )
    assert PushMessage.objects.count() == 1 and SmsMessage.objects.filter(user=member).count() == 2


@pytest.mark.django_db
def test_without_texts_the_held_email_goes_instead(
    push_service, settings, django_capture_on_commit_callbacks
):
    settings.SMS_ENABLED = False
    member = _member(push_service, "gone")
    _invite(member, django_capture_on_commit_callbacks)
    assert EmailNotification.objects.get(user=member).status in ("queued", "sent")
    assert not SmsMessage.objects.exists()


@pytest.mark.django_db
def test_a_busy_push_service_is_tried_again_and_the_notification_goes_once(
    push_service, at_sms, django_capture_on_commit_callbacks
):
    member = _member(push_service, "busy")
    _invite(member, django_capture_on_commit_callbacks)
    row = PushMessage.objects.get()
    # The first try met 429 (Retry-After: 1): the outbox waits, then pushes once.
    assert row.status == "queued" and row.failed_attempts == 1 and row.next_attempt_at
    later = timezone.now() + timedelta(hours=1)
    assert push_deliver(message_id=row.pk, now=later).outcome == "sent"
    row.refresh_from_db()
    assert row.status == "sent" and len(push_service.state.received()) == 1
    assert not SmsMessage.objects.exists()


@pytest.mark.django_db
def test_messages_a_phone_need_not_show_at_once_go_by_text(
    push_service, at_sms, django_capture_on_commit_callbacks
):
    from attendance.services.messaging.channels import member_message

    member = _member(push_service)
    with django_capture_on_commit_callbacks(execute=True):
        sent = member_message(
            user=member,
            notification_type="crew_reply",
            context={"reply": "none_waiting"},
        )
    assert isinstance(sent, SmsMessage) and not PushMessage.objects.exists()


@pytest.mark.django_db
def test_the_account_page_keeps_a_phones_subscription(push_service):
    member = UserFactory(profile__phone_number="254712345678")
    client = Client()
    url = reverse("attendance:push_subscription")
    device = push_service.new_device()
    assert client.post(url, {}, content_type="application/json").status_code == 401
    client.force_login(member)
    page = client.get(reverse("attendance:account")).text
    assert 'id="push-on"' in page and "Turn on notifications" in page
    answer = client.post(url, json.dumps({"subscription": device}), content_type="application/json")
    assert answer.status_code == 200 and answer.json()["on"] is True
    member.profile.refresh_from_db()
    assert member.profile.message_channel == "push"
    assert PushSubscription.objects.get().endpoint == device["endpoint"]
    # The page sends it again on each visit: kept once, and not a new choice of channel.
    profile_set_channel(user=member, channel="sms")
    again = {"subscription": device, "refresh": True}
    assert client.post(url, json.dumps(again), content_type="application/json").status_code == 200
    member.profile.refresh_from_db()
    assert PushSubscription.objects.count() == 1 and member.profile.message_channel == "sms"
    assert "Notifications on my phone" in client.get(reverse("attendance:account")).text
    bad = {
        "subscription": {"endpoint": "https://x.example/1", "keys": {"p256dh": "x", "auth": "y"}}
    }
    assert client.post(url, json.dumps(bad), content_type="application/json").status_code == 400
    off = {"off": True, "endpoint": device["endpoint"]}
    assert client.post(url, json.dumps(off), content_type="application/json").json()["on"] is False
    assert not PushSubscription.objects.exists()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(member)
    assert (
        strict.post(
            url, json.dumps({"subscription": device}), content_type="application/json"
        ).status_code
        == 403
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_member_turns_notifications_on_and_confirms_from_the_notification(
    browser, live_server, world, push_service, settings
):
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.support.browser import (
        log_in,
        open_page,
        wait_for_text,
        wait_until_the_worker_controls,
    )
    from tests.support.devtools import deliver_push, in_service_worker
    from tests.support.portal_world import PASSWORD

    settings.SITE_URL = live_server.url  # the answer links in the notification
    member = world["member"]
    device = push_service.new_device()
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["notifications"], "origin": live_server.url},
    )
    # No vendor push service is reachable here: the browser's subscribe() gives the stand-in's
    # device, as Chrome gives FCM's.
    browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "const d = "
            + json.dumps(device)
            + "; const s = {endpoint: d.endpoint, toJSON: () => d,"
            " unsubscribe: () => Promise.resolve(true)};"
            " PushManager.prototype.subscribe = function () {"
            " localStorage.setItem('test-subscribed', '1'); return Promise.resolve(s); };"
            " PushManager.prototype.getSubscription = function () {"
            " return Promise.resolve(localStorage.getItem('test-subscribed') ? s : null); };"
        },
    )
    log_in(browser, live_server, "wanjiku", PASSWORD, "/account/")
    wait_until_the_worker_controls(browser)
    open_page(browser, f"{live_server.url}/account/")
    browser.find_element("id", "push-on").click()
    wait_for_text(browser, "#push-status", "Notifications are on")
    assert browser.find_element("id", "push-off").is_displayed()
    assert not browser.find_element("id", "push-on").is_displayed()
    # Any page tells us the phone's subscription again, once a day (it may change).
    PushSubscription.objects.update(p256dh="B" + "x" * 86)
    open_page(browser, f"{live_server.url}/")
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return localStorage.getItem('sf-push-told')")
    )
    assert PushSubscription.objects.get().p256dh == device["keys"]["p256dh"]
    assert PushSubscription.objects.get(user=member).endpoint == device["endpoint"]
    member.profile.refresh_from_db()
    assert member.profile.message_channel == "push"

    start = timezone.now() + timedelta(days=2)
    event = EventFactory(
        name="Koroga Festival", starts_at=start, ends_at=start + timedelta(hours=6)
    )
    assignment = EventCrewFactory(event=event, user=member)
    crew_invite(assignment=assignment)
    [received] = push_service.state.received()
    assert received["payload"]["title"].endswith("at Koroga Festival?")
    # The browser hands a push to a worker it may first have to start: if the notification is
    # not there within 3 s, the push service would deliver again (same tag: one notification).
    for _attempt in range(3):
        deliver_push(browser, live_server.url, json.dumps(received["payload"]))
        shown = in_service_worker(
            browser,
            "(async () => { for (let i = 0; i < 30; i++) {"
            " const list = await self.registration.getNotifications();"
            " if (list.length) return list.map(n => ({title: n.title,"
            " actions: n.actions.map(a => a.title)}));"
            " await new Promise(r => setTimeout(r, 100)); } return []; })()",
        )
        if shown:
            break
    assert shown == [{"title": received["payload"]["title"], "actions": ["Confirm", "Decline"]}]
    # Confirm pressed: the worker's click handler posts the answer (a click made here is not
    # the browser's own, so its waitUntil refuses; the post has gone by then).
    in_service_worker(
        browser,
        "self.registration.getNotifications().then(([n]) => { try { self.dispatchEvent("
        "new NotificationEvent('notificationclick', {notification: n, action: 'confirm'}));"
        " } catch (e) {} return true; })",
    )
    for _ in range(50):
        assignment.refresh_from_db()
        if assignment.status == EventCrew.Status.CONFIRMED:
            break
        time.sleep(0.1)
    assert assignment.status == EventCrew.Status.CONFIRMED


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "sw"])
@pytest.mark.parametrize("notification_type", sorted(PUSH_TYPES))
def test_every_notification_reads_in_both_languages_and_fits_a_push(notification_type, language):
    from django.utils import translation

    from attendance.services.messaging.push import push_render
    from tests.support.sms_samples import sms_sample_context

    with translation.override("sw" if language == "sw" else "en-gb"):
        title, body = push_render(notification_type, sms_sample_context(notification_type))
    assert title and body and "{" not in title + body
    payload = json.dumps({"title": title, "body": body, "url": "https://x" * 20})
    assert len(payload.encode()) < 3993 - 500  # one aes128gcm record, with room for actions
    english = ("Call time", "Can you work it", "Reminder", "Time to leave", "Are you coming")
    if language == "sw":
        assert not [words for words in english if words in title + body]


@pytest.mark.django_db
def test_staff_see_notifications_and_devices_in_admin(
    push_service, at_sms, staff_client, django_capture_on_commit_callbacks
):
    member = _member(push_service, "gone")
    _invite(member, django_capture_on_commit_callbacks)
    page = staff_client.get("/admin/attendance/pushmessage/").content.decode()
    assert "SMS instead" in page and "Crew invitation" in page
    other = _member(push_service, phone="254712345679")
    devices = staff_client.get("/admin/attendance/pushsubscription/").content.decode()
    assert member_name(other) in devices
    assert member_name(member) not in devices  # its dead device was removed
    row = PushMessage.objects.get()
    assert staff_client.get(f"/admin/attendance/pushmessage/{row.pk}/change/").status_code == 200
