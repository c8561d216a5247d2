"""SMS through Africa's Talking, over real HTTP to the local simulator: the outbox, the short
link and the reply, delivery reports, opt-outs and the email fallback."""

import re
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from attendance.models import EmailNotification, EventCrew, SmsCallback, SmsMessage
from attendance.services.crew.assignments import crew_invite
from attendance.services.messaging.channels import member_message
from attendance.services.messaging.sms import sms_create, sms_deliver, sms_requeue
from attendance.services.messaging.sms_inbox import sms_callback_process, sms_callback_receive
from attendance.sms.client import SmsClient, SmsError
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db
Status = SmsMessage.Status
E = EmailNotification.Status


def _member(ending: str, **profile):
    return UserFactory(profile__phone_number=f"2547123456{ending}", **profile)


def _messages(simulator):
    return requests.get(f"{simulator.url}/simulator/messages", timeout=5).json()


def _invite(member, django_capture_on_commit_callbacks, **event):
    start = timezone.now() + timedelta(days=2)
    assignment = EventCrewFactory(
        event=EventFactory(
            name="Safari Rally gala",
            starts_at=start,
            ends_at=start + timedelta(hours=5),
            call_time=start - timedelta(hours=2),
            **event,
        ),
        user=member,
    )
    with django_capture_on_commit_callbacks(execute=True):
        crew_invite(assignment=assignment)
    assignment.refresh_from_db()
    return assignment


# --- The client against the simulator ---------------------------------------------------------


def _client(simulator, **kwargs):
    return SmsClient(
        username="sandbox", api_key=simulator.state.api_key, base_url=simulator.url, **kwargs
    )


def test_the_sdk_reaches_the_simulator_and_reads_its_answer_and_cost(at_sms):
    accepted = _client(at_sms).send(to="+254712345601", message="Hello from the test")
    assert accepted.status_code == 101 and accepted.message_id.startswith("ATXid_")
    assert str(accepted.cost) == "0.8000" and accepted.currency == "KES"
    [sent] = _messages(at_sms)
    assert sent["to"] == "+254712345601" and sent["message"] == "Hello from the test"


def test_refusals_come_out_as_errors_that_say_whether_to_retry(at_sms):
    client = _client(at_sms)
    with pytest.raises(SmsError) as blacklisted:
        client.send(to="+254712345692", message="x")
    assert blacklisted.value.permanent and blacklisted.value.blocks_number
    assert blacklisted.value.status == "UserInBlacklist"
    with pytest.raises(SmsError) as invalid:
        client.send(to="+254712345693", message="x")
    assert invalid.value.permanent and invalid.value.blocks_number
    with pytest.raises(SmsError) as throttled:
        client.send(to="+254712345694", message="x")
    assert not throttled.value.permanent  # rate-limited: nothing was sent
    assert client.send(to="+254712345694", message="x").status_code == 101
    with pytest.raises(SmsError) as unauthorised:
        SmsClient(username="wrong", api_key="bad", base_url=at_sms.url).send(
            to="+254712345601", message="x"
        )
    assert unauthorised.value.permanent and "API key" in str(unauthorised.value)
    with pytest.raises(SmsError) as local:
        client.send(to="0712345601", message="x")  # the SDK refuses it before any HTTP
    assert local.value.permanent


def test_a_send_that_times_out_is_unknown_and_never_retried(at_sms):
    at_sms.state.latency = 1.0
    with pytest.raises(SmsError) as timed_out:
        _client(at_sms, timeout=(1.0, 0.3)).send(to="+254712345601", message="x")
    assert timed_out.value.unknown and timed_out.value.permanent


def test_a_closed_port_is_worth_retrying(settings):
    from tests.support.smtp import free_port

    client = SmsClient(username="sandbox", api_key="k", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SmsError) as refused:
        client.send(to="+254712345601", message="x")
    assert not refused.value.permanent and not refused.value.unknown


# --- Invitation by SMS, the short link, the reply ----------------------------------------------


def test_an_sms_invitation_carries_a_short_link_that_opens_the_answer_page(
    at_sms, client, django_capture_on_commit_callbacks
):
    member = _member("01")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    sms = SmsMessage.objects.get(crew_assignment=assignment)
    assert sms.status == Status.SENT and sms.provider_message_id and sms.cost is not None
    assert sms.parts == 1 and sms.encoding == "GSM-7"
    # The member chose SMS (the default once enabled): the email waits, held, as fallback.
    assert sms.fallback_email.status == E.HELD
    [text] = [m["message"] for m in _messages(at_sms)]
    assert text == sms.message and "Safari Rally gala" in text
    link = re.search(r"http://\S+/([2-9A-HJ-NP-Z]{10})/", text)
    assert link and link.group(1) == assignment.link_code
    page = client.get(f"/{assignment.link_code}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Yes, confirm" in body and "No, decline" in body
    confirm_url = re.search(r'action="([^"]*/answer/[^"]*)"', body).group(1)
    assert client.post(confirm_url).status_code == 200
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED


def test_a_wrong_expired_or_finished_short_link_is_a_404(
    at_sms, client, settings, django_capture_on_commit_callbacks
):
    assignment = _invite(_member("01"), django_capture_on_commit_callbacks)
    assert client.get("/ABCDEFGHJK/").status_code == 404
    assert client.get(f"/{assignment.link_code.lower()}/").status_code == 404
    EventCrew.objects.filter(pk=assignment.pk).update(
        invitation_sent_at=timezone.now() - timedelta(days=settings.CREW_ANSWER_LINK_MAX_AGE_DAYS)
    )
    assert client.get(f"/{assignment.link_code}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_yes_reply_confirms_and_is_answered_and_another_number_changes_nothing(
    sms_to_live_server, at_sms, settings
):
    settings.SMS_REPLIES_ENABLED = True
    member = _member("01")
    stranger = _member("07")
    start = timezone.now() + timedelta(days=2)
    assignment = EventCrewFactory(
        event=EventFactory(starts_at=start, ends_at=start + timedelta(hours=4)), user=member
    )
    crew_invite(assignment=assignment)
    assignment.refresh_from_db()
    invitation = SmsMessage.objects.get(
        crew_assignment=assignment, notification_type="crew_invitation"
    )
    assert f"YES {assignment.reply_code}" in invitation.message

    def reply(number, text):
        response = requests.post(
            f"{at_sms.url}/simulator/reply", json={"from": number, "text": text}, timeout=10
        )
        assert response.status_code == 200

    reply(f"+{stranger.profile.phone_number}", f"YES {assignment.reply_code}")
    assert wait_until(lambda: SmsCallback.objects.filter(kind="incoming").count() == 1, 10)
    from_stranger = SmsCallback.objects.get(kind="incoming")
    assert from_stranger.status == SmsCallback.Status.UNMATCHED
    assert from_stranger.raw_body and "from=" in from_stranger.raw_body
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.INVITED

    reply(f"+{member.profile.phone_number}", f"yes {assignment.reply_code}")
    assert wait_until(
        lambda: EventCrew.objects.get(pk=assignment.pk).status == EventCrew.Status.CONFIRMED, 10
    )
    answer = SmsMessage.objects.get(user=member, notification_type="crew_reply")
    assert "confirmed" in answer.message
    assert wait_until(lambda: any("confirmed" in m["message"] for m in _messages(at_sms)), 10)


def test_a_no_reply_declines_with_the_reason_and_a_duplicate_is_applied_once(
    at_sms, settings, django_capture_on_commit_callbacks
):
    settings.SMS_REPLIES_ENABLED = True
    member = _member("01")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    body = (
        f"id=ATInbound_1&from=%2B{member.profile.phone_number}&to=20880"
        f"&text=NO+{assignment.reply_code}+sick+with+flu&date=2026-12-01"
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = sms_callback_receive(kind="incoming", body=body, remote_addr="127.0.0.1")
        second, _ = sms_callback_receive(kind="incoming", body=body, remote_addr="127.0.0.1")
    assert SmsCallback.objects.get(pk=first).status == SmsCallback.Status.PROCESSED
    assert SmsCallback.objects.get(pk=second).status == SmsCallback.Status.DUPLICATE
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.DECLINED
    assert assignment.decline_reason == "sick with flu"
    assert SmsMessage.objects.filter(notification_type="crew_reply").count() == 1


def test_an_unreadable_reply_is_kept_for_staff(at_sms, django_capture_on_commit_callbacks):
    member = _member("01")
    body = f"id=ATInbound_2&from=%2B{member.profile.phone_number}&text=Hi+who+is+this".encode()
    with django_capture_on_commit_callbacks(execute=True):
        pk, status = sms_callback_receive(kind="incoming", body=body, remote_addr=None)
    row = SmsCallback.objects.get(pk=pk)
    assert status == 200 and row.status == SmsCallback.Status.UNMATCHED
    assert row.user == member and row.text == "Hi who is this"


# --- Opt-outs, invalid numbers and the email fallback ------------------------------------------


def test_a_blacklisted_number_marks_the_member_and_the_email_goes_out_once(
    at_sms, smtp_server, django_capture_on_commit_callbacks
):
    member = _member("92")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    sms = SmsMessage.objects.get(crew_assignment=assignment)
    assert sms.status == Status.FAILED and sms.failed_attempts == 1  # no retry loop
    assert "UserInBlacklist" in sms.provider_status
    member.profile.refresh_from_db()
    assert member.profile.sms_blocked_at and member.profile.sms_blocked_reason == "UserInBlacklist"
    fallback = EmailNotification.objects.get(pk=sms.fallback_email_id)
    assert fallback.status == E.SENT
    assert len(smtp_server.messages) == 1
    # Resending the text is refused (AT would refuse again); the email is not sent twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert sms_requeue(sms_ids=[sms.pk]) == 0
    assert len(smtp_server.messages) == 1
    # The next message goes by email only.
    with django_capture_on_commit_callbacks(execute=True):
        member_message(
            user=member,
            notification_type="crew_reminder",
            context={
                "event": assignment.event,
                "role": assignment.role,
                "call_time": timezone.now(),
            },
        )
    assert SmsMessage.objects.count() == 1
    assert len(smtp_server.messages) == 2
    assert len(_messages(at_sms)) == 0


def test_an_invalid_number_is_marked_too(at_sms, django_capture_on_commit_callbacks):
    member = _member("93")
    _invite(member, django_capture_on_commit_callbacks)
    member.profile.refresh_from_db()
    assert member.profile.sms_blocked_reason == "InvalidPhoneNumber"
    assert EmailNotification.objects.get(user=member).status in (
        E.QUEUED,
        E.SENDING,
        E.SENT,
        E.FAILED,
    )


def test_rate_limited_then_accepted_is_sent_on_retry(at_sms, settings):
    member = _member("94")
    sms = sms_create(
        user=member,
        phone_number=member.profile.phone_number,
        notification_type="crew_reply",
        context={"reply": "none_waiting"},
    )
    first = sms_deliver(sms_id=sms.pk)
    assert first.outcome == "retry" and first.retry_in > 0
    sms.refresh_from_db()
    assert sms.status == Status.QUEUED and sms.failed_attempts == 1
    assert sms_deliver(sms_id=sms.pk).outcome == "skipped"  # not due yet
    later = timezone.now() + timedelta(seconds=first.retry_in + 1)
    assert sms_deliver(sms_id=sms.pk, now=later).outcome == "sent"
    assert len(_messages(at_sms)) == 1


def test_choosing_email_on_the_account_page_stops_texts(
    at_sms, client, django_capture_on_commit_callbacks
):
    member = _member("01")
    client.force_login(member)
    page = client.get("/account/").content.decode()
    # The company default (SMS) is what the page shows as chosen.
    assert re.search(r'<input[^>]*value="sms"[^>]*checked', page)
    assert not re.search(r'<input[^>]*value="email"[^>]*checked', page)
    response = client.post("/account/", {"message_channel": "email"}, follow=True)
    assert "by email" in response.content.decode()
    member.profile.refresh_from_db()
    assert member.profile.message_channel == "email"
    _invite(member, django_capture_on_commit_callbacks)
    assert not SmsMessage.objects.exists()
    assert EmailNotification.objects.get(user=member).status != E.HELD


def test_both_sends_an_email_and_a_text(at_sms, django_capture_on_commit_callbacks):
    member = _member("01", profile__message_channel="both")
    _invite(member, django_capture_on_commit_callbacks)
    assert SmsMessage.objects.get(user=member).fallback_email is None
    assert EmailNotification.objects.get(user=member).status != E.HELD


def test_sms_off_means_email_only(settings, django_capture_on_commit_callbacks):
    settings.SMS_ENABLED = False
    _invite(_member("01"), django_capture_on_commit_callbacks)
    assert not SmsMessage.objects.exists()


# --- Delivery reports ------------------------------------------------------------------------


def _report(message_id, status, reason=""):
    body = f"id={message_id}&status={status}&phoneNumber=%2B254712345601&networkCode=99999"
    if reason:
        body += f"&failureReason={reason}"
    return body.encode()


def _apply(body):
    pk, _ = sms_callback_receive(kind="report", body=body, remote_addr="127.0.0.1")
    return sms_callback_process(callback_id=pk)


def test_reports_duplicated_and_reordered_never_move_a_message_backwards(at_sms):
    member = _member("95")  # the simulator sends no reports of its own for this number
    sms = sms_create(
        user=member,
        phone_number=member.profile.phone_number,
        notification_type="crew_reply",
        context={"reply": "none_waiting"},
    )
    assert sms_deliver(sms_id=sms.pk).outcome == "sent"
    sms.refresh_from_db()
    mid = sms.provider_message_id
    assert _apply(_report(mid, "Submitted")) == "processed"
    assert _apply(_report(mid, "Sent")) == "stale"  # an earlier step, arriving late
    assert _apply(_report(mid, "Success")) == "processed"
    assert _apply(_report(mid, "Success")) == "duplicate"
    assert _apply(_report(mid, "Buffered")) == "stale"
    assert _apply(_report(mid, "Failed", "DeliveryFailure")) == "stale"
    sms.refresh_from_db()
    assert sms.delivery_status == "Success" and sms.delivered_at and sms.delivered
    assert SmsCallback.objects.filter(kind="report").count() == 6  # every body kept


def test_an_undelivered_report_sends_the_held_email(at_sms, django_capture_on_commit_callbacks):
    member = _member("95")
    assignment = _invite(member, django_capture_on_commit_callbacks)
    sms = SmsMessage.objects.get(crew_assignment=assignment)
    with django_capture_on_commit_callbacks(execute=True):
        assert _apply(_report(sms.provider_message_id, "Failed", "UserInBlackList")) == "processed"
        assert _apply(_report(sms.provider_message_id, "Failed", "UserInBlackList")) == "duplicate"
    fallback = EmailNotification.objects.get(pk=sms.fallback_email_id)
    assert fallback.status != E.HELD
    member.profile.refresh_from_db()
    assert member.profile.sms_blocked_reason == "UserInBlackList"


@pytest.mark.django_db(transaction=True)
def test_the_simulators_reports_reach_the_app_over_http(sms_to_live_server, at_sms):
    delivered, undelivered = _member("01"), _member("91")
    rows = [
        sms_create(
            user=m,
            phone_number=m.profile.phone_number,
            notification_type="crew_reply",
            context={"reply": "none_waiting"},
        )
        for m in (delivered, undelivered)
    ]
    assert wait_until(
        lambda: (
            set(
                SmsMessage.objects.filter(pk__in=[r.pk for r in rows]).values_list(
                    "delivery_status", flat=True
                )
            )
            == {"Success", "Failed"}
        ),
        15,
    )
    assert SmsMessage.objects.get(user=undelivered).failure_reason == "DeliveryFailure"


def test_a_forged_report_url_is_a_404_and_stores_nothing(client, settings):
    body = _report("ATXid_x", "Success")
    response = client.post(
        "/api/sms/delivery/not-the-token/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 404
    response = client.post(
        f"/api/sms/elsewhere/{settings.SMS_CALLBACK_TOKEN}/",
        body,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 404
    assert not SmsCallback.objects.exists()


def test_a_malformed_report_is_kept_and_answered_400(client, settings):
    response = client.post(
        f"/api/sms/delivery/{settings.SMS_CALLBACK_TOKEN}/",
        b"id=None&status=",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert SmsCallback.objects.get().status == SmsCallback.Status.MALFORMED
    assert client.get(f"/api/sms/delivery/{settings.SMS_CALLBACK_TOKEN}/").status_code == 405


def test_a_report_for_an_unknown_message_is_looked_up_again_then_kept(db):
    pk, _ = sms_callback_receive(
        kind="report", body=_report("ATXid_nobody", "Success"), remote_addr=None
    )
    for _ in range(4):  # a report can overtake our saving of AT's answer
        assert sms_callback_process(callback_id=pk) == "waiting"
    assert sms_callback_process(callback_id=pk) == "unmatched"


def test_the_sms_admin_lists_texts_with_costs_per_month(staff_client, at_sms):
    member = _member("01")
    sms = sms_create(
        user=member,
        phone_number=member.profile.phone_number,
        notification_type="crew_reply",
        context={"reply": "none_waiting"},
    )
    sms_deliver(sms_id=sms.pk)
    listed = staff_client.get("/admin/attendance/smsmessage/?notification_type__exact=crew_reply")
    # The totals are a page of their own, for what the list shows with its filters.
    costs = "/admin/attendance/smsmessage/costs/?notification_type__exact=crew_reply"
    assert costs in listed.content.decode().replace("&amp;", "&")
    page = staff_client.get(costs).content.decode()
    # Money with two decimals: the text and the month ("KES 0.8000" and "44.0000000000000" before).
    assert "SMS cost per month" in page and "KES 0.80" in page and "0.8000" not in page
    assert "/admin/attendance/smsmessage/?notification_type__exact=crew_reply" in page  # back
    other = staff_client.get("/admin/attendance/smsmessage/costs/?notification_type__exact=alert")
    assert "KES 0.80" not in other.content.decode()  # the filter applies
    assert staff_client.get("/admin/attendance/smsmessage/?q=0712345601").status_code == 200
    assert staff_client.get(f"/admin/attendance/smsmessage/{sms.pk}/change/").status_code == 200
    assert staff_client.get("/admin/attendance/smscallback/").status_code == 200
    history = staff_client.get(f"/admin/attendance/profile/{member.profile.pk}/change/")
    assert (
        "SMS" in history.content.decode() and "Answer to an SMS reply" in history.content.decode()
    )


@pytest.mark.parametrize("rows", [1, 50])
def test_the_sms_list_costs_the_same_queries_for_1_and_50_texts(
    staff_client, django_assert_max_num_queries, rows
):
    members = [_member(f"{n:02d}") for n in range(min(rows, 10))]
    SmsMessage.objects.bulk_create(
        SmsMessage(
            user=members[n % len(members)],
            phone_number=members[n % len(members)].profile.phone_number,
            notification_type="crew_reminder",
            message=f"Reminder {n}",
            status=Status.SENT,
            cost="0.8000",
            cost_currency="KES",
            delivery_status="Success",
        )
        for n in range(rows)
    )
    staff_client.get("/admin/attendance/smsmessage/")  # warm the content type cache
    # The session, its user and second factor, the page, its count (on PostgreSQL also the
    # table's estimated size), the filter's months and the monthly totals: flat.
    with django_assert_max_num_queries(8):
        page = staff_client.get("/admin/attendance/smsmessage/")
    assert page.status_code == 200
    assert page.content.decode().count("Delivered") >= rows


def test_a_member_who_takes_texts_gets_the_payment_receipt_by_sms(
    at_sms, client, settings, django_capture_on_commit_callbacks
):
    from attendance.models import MpesaPayment
    from tests.support.factories import PaymentFactory
    from tests.support.mpesa_wire import success_callback

    member = _member("01", profile__message_channel="sms")
    payment = PaymentFactory(user=member, amount=100)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/",
            success_callback(payment.checkout_request_id),
            content_type="application/json",
        )
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == MpesaPayment.Status.COMPLETED
    text = SmsMessage.objects.get(notification_type="payment_confirmation")
    assert text.status == Status.SENT
    [received] = [m for m in _messages(at_sms) if "NLJ7RT61SV" in m["message"]]
    assert received["to"] == "+254712345601"
    # The email is written but held: it goes out only if the text cannot reach them.
    held = EmailNotification.objects.get(notification_type="payment_confirmation")
    assert held.status == E.HELD
