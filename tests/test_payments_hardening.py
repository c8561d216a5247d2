"""What an attack and fault audit found: hostile bodies, a wedged inbox, bad amounts, Redis down,
prompt floods, a starved sweeper."""

import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from attendance import mpesa
from attendance.models import LedgerEntry, MpesaCallback, MpesaPayment
from attendance.mpesa.callbacks import StkResult
from attendance.services.payments import (
    PaymentError,
    callback_process,
    callback_receive,
    callbacks_process_pending,
    callbacks_process_received,
    inbox,
    payment_credit_after_review,
    settlement,
)
from tests.support.auth import log_in_staff
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import failure_callback, success_callback
from tests.support.smtp import free_port

CB = MpesaCallback.Status


@pytest.fixture
def url(settings):
    return f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"


def _post(url, body: bytes | str):
    return Client().post(url, body, content_type="application/json")


def _store(body: str) -> int:
    """As the endpoint stores a well-formed callback under a worker: received, unprocessed."""
    return inbox._callback_store(raw=body, remote_addr="196.201.214.200", checkout_request_id="x")


# --- One body must never stop the others -----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_nul_in_a_callback_does_not_stop_a_genuine_success_behind_it_in_one_batch():
    payment = PaymentFactory(amount=100)
    settled = PaymentFactory(amount=100, user=UserFactory(), phone_number="254722000111")
    settled.status = MpesaPayment.Status.FAILED
    settled.save()
    bad = [
        failure_callback("ws_CO_UNKNOWN0001", 1032, "\u0000"),  # unknown checkout
        failure_callback(settled.checkout_request_id, 1032, "cancel\u0000led"),  # settled one
    ]
    ids = [_store(body) for body in bad] + [_store(success_callback(payment.checkout_request_id))]

    callbacks_process_received()

    payment.refresh_from_db()
    assert payment.status == MpesaPayment.Status.COMPLETED
    assert payment.ledger_entry is not None
    statuses = dict(MpesaCallback.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert statuses == {ids[0]: CB.WAITING, ids[1]: CB.DUPLICATE, ids[2]: CB.PROCESSED}
    assert "\x00" not in MpesaCallback.objects.get(pk=ids[0]).detail


@pytest.mark.django_db(transaction=True)
def test_a_callback_that_cannot_be_processed_is_retried_then_quarantined_and_the_rest_go_on(
    monkeypatch, settings
):
    settings.MPESA_CALLBACK_MAX_ATTEMPTS = 3
    doomed, fine = (
        PaymentFactory(amount=100),
        PaymentFactory(amount=100, phone_number="254722000111"),
    )
    real_apply = inbox.payment_apply_result

    def apply(*, result, via):
        if result.checkout_request_id == doomed.checkout_request_id:
            raise RuntimeError("a bug in settlement")
        return real_apply(result=result, via=via)

    monkeypatch.setattr(inbox, "payment_apply_result", apply)
    first = _store(success_callback(doomed.checkout_request_id))
    second = _store(success_callback(fine.checkout_request_id, receipt="OKRECEIPT1"))

    callbacks_process_received()
    assert MpesaCallback.objects.get(pk=second).status == CB.PROCESSED
    row = MpesaCallback.objects.get(pk=first)
    assert (row.status, row.attempts) == (CB.ERROR, 1)
    assert "a bug in settlement" in row.detail

    later = timezone.now() + timedelta(minutes=5)
    for _ in range(3):
        callbacks_process_pending(now=later)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (CB.QUARANTINED, 3)
    callbacks_process_pending(now=later)  # quarantined rows are left for a person
    row.refresh_from_db()
    assert row.attempts == 3
    doomed.refresh_from_db()
    assert doomed.status == MpesaPayment.Status.PENDING  # nothing half done

    monkeypatch.setattr(inbox, "payment_apply_result", real_apply)
    assert callback_process(callback_id=first, manual=True) == CB.PROCESSED  # staff retry


HOSTILE_BODIES = {
    "metadata as a list": {
        "Body": {
            "stkCallback": {
                "CheckoutRequestID": "ws_CO_1",
                "ResultCode": 0,
                "CallbackMetadata": [{"Name": "Amount", "Value": 1}],
            }
        }
    },
    "metadata as a string": {
        "Body": {
            "stkCallback": {
                "CheckoutRequestID": "ws_CO_1",
                "ResultCode": 0,
                "CallbackMetadata": "x",
            }
        }
    },
    "unhashable names": {
        "Body": {
            "stkCallback": {
                "CheckoutRequestID": "ws_CO_1",
                "ResultCode": 0,
                "CallbackMetadata": {"Item": [{"Name": ["Amount"], "Value": 1}]},
            }
        }
    },
    "body as a list": [1, 2, 3],
    "stkCallback as a list": {"Body": {"stkCallback": []}},
    "result code as a float": {
        "Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": 0.5}}
    },
    "result code as true": {
        "Body": {"stkCallback": {"CheckoutRequestID": "x", "ResultCode": True}}
    },
    "checkout id with a NUL": {
        "Body": {"stkCallback": {"CheckoutRequestID": "ws\u0000", "ResultCode": 1}}
    },
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_a_hostile_json_body_is_stored_raw_and_refused_as_malformed(url, name):
    body = json.dumps(HOSTILE_BODIES[name])
    response = _post(url, body)
    assert response.status_code == 400
    assert response.json()["ResultDesc"] == "Rejected: not an STK callback"
    row = MpesaCallback.objects.get()
    assert row.status == CB.MALFORMED
    assert row.body_bytes == body.encode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000 + b"]" * 30_000,  # deeper than Python's recursion limit
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": '
        + b"9" * 5000
        + b"}}}",  # longer than int() reads
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": NaN}}}',
        b'{"Body": \x00 {"stkCallback": 1}}',  # a NUL byte: PostgreSQL text cannot hold it
        b"\xff\xfe not utf-8 \x00",
    ],
    ids=["deep-nesting", "huge-number", "nan", "nul-byte", "not-utf8"],
)
def test_an_unreadable_body_is_kept_exactly_and_never_mistaken_for_a_database_failure(
    url, body, caplog
):
    response = Client().post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["ResultDesc"] == "Rejected: not an STK callback"
    row = MpesaCallback.objects.get()
    assert row.status == CB.MALFORMED
    assert row.body_bytes == body
    assert "database" not in caplog.text.lower()
    assert "Traceback" not in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "reason"),
    [(0, "cannot be right: 0"), (-300, "cannot be right: -300"), ("300.001", "300.001")],
)
def test_a_success_reporting_an_impossible_amount_is_flagged_and_never_credited(
    url, amount, reason, django_capture_on_commit_callbacks
):
    payment = PaymentFactory(amount=300)
    body = success_callback(payment.checkout_request_id, amount=amount)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(url, body).status_code == 200
    payment.refresh_from_db()
    assert payment.status == MpesaPayment.Status.COMPLETED
    assert payment.needs_review
    assert reason in payment.review_reason
    assert payment.paid_amount is None
    staff = UserFactory(is_staff=True, is_superuser=True)
    with pytest.raises(PaymentError) as refused:
        payment_credit_after_review(payment=payment, by=staff)
    assert refused.value.code == "no_paid_amount"
    assert not LedgerEntry.objects.filter(kind="payment").exists()


@pytest.mark.django_db
def test_the_credit_action_says_why_instead_of_failing_when_nothing_valid_was_paid(
    url, client, django_capture_on_commit_callbacks
):
    payment = PaymentFactory(amount=300)
    body = success_callback(payment.checkout_request_id, amount=-300)
    with django_capture_on_commit_callbacks(execute=True):
        _post(url, body)
    log_in_staff(client, UserFactory(is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/attendance/mpesapayment/",
        {"action": "credit_after_review", "_selected_action": [payment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "nothing to credit" in response.content.decode()
    assert not LedgerEntry.objects.filter(kind="payment").exists()


@pytest.mark.django_db
def test_a_query_credit_contradicted_by_the_later_callback_is_flagged_for_review(
    url, django_capture_on_commit_callbacks
):
    payment = PaymentFactory(amount=300)
    settlement.payment_apply_result(
        result=StkResult(
            merchant_request_id="m",
            checkout_request_id=payment.checkout_request_id,
            result_code="0",
            result_description="ok",
        ),
        via="query",
    )
    with django_capture_on_commit_callbacks(execute=True):
        _post(url, success_callback(payment.checkout_request_id, amount=200))
    payment.refresh_from_db()
    assert payment.needs_review
    assert "paid KES 200" in payment.review_reason
    assert LedgerEntry.objects.filter(kind="payment").count() == 1  # not twice


# --- Redis down, floods ----------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_down_when_a_member_taps_pay_is_a_json_503_and_they_can_try_again(
    daraja, crew_client, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    mpesa._clients.clear()
    response = crew_client.post(
        "/api/mpesa/request-payment/", {"amount": 100}, content_type="application/json"
    )
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "mpesa_unavailable"
    payment = MpesaPayment.objects.get()
    assert payment.status == MpesaPayment.Status.FAILED  # not left "initiated"
    assert daraja.state.stats["stk_push"] == 0

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    mpesa._clients.clear()
    again = crew_client.post(
        "/api/mpesa/request-payment/", {"amount": 100}, content_type="application/json"
    )
    assert again.status_code == 201  # not a 409 for the next fifteen minutes


def _pay(client, phone, amount=100):
    return client.post(
        "/api/mpesa/request-payment/",
        {"amount": amount, "phone": phone},
        content_type="application/json",
    )


@pytest.mark.django_db
def test_a_member_cannot_flood_strangers_with_prompts(daraja, crew_client, settings):
    settings.MPESA_PROMPT_LIMIT_PER_REQUESTER = 5
    answers = [_pay(crew_client, f"07110{n:05d}") for n in range(7)]
    assert [r.status_code for r in answers] == [201] * 5 + [429] * 2
    error = answers[-1].json()["error"]
    assert error["code"] == "rate_limited"
    assert "5 payment prompts in the last 10 minutes" in error["message"]
    assert daraja.state.stats["stk_push"] == 5


@pytest.mark.django_db
def test_no_phone_is_prompted_past_its_limit_whoever_asks(daraja, client, settings):
    settings.MPESA_PROMPT_LIMIT_PER_PHONE = 3
    daraja.state.callback_delay = 0  # each prompt is answered at once, the phone free again
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    member = UserFactory(profile__phone_number="0711000777")
    log_in_staff(client, finance)
    codes = []
    for _ in range(4):
        response = client.post(
            "/api/mpesa/request-payment/",
            {"amount": 100, "user_id": member.pk},
            content_type="application/json",
        )
        codes.append(response.status_code)
        MpesaPayment.objects.filter(status="pending").update(status="cancelled")
    assert codes == [201, 201, 201, 429]


@pytest.mark.django_db
def test_staff_collecting_are_not_limited_per_requester(daraja, client, settings):
    settings.MPESA_PROMPT_LIMIT_PER_REQUESTER = 2
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    log_in_staff(client, finance)
    members = [UserFactory(profile__phone_number=f"07110{n:05d}") for n in range(4)]
    codes = [
        client.post(
            "/api/mpesa/request-payment/",
            {"amount": 100, "user_id": m.pk},
            content_type="application/json",
        ).status_code
        for m in members
    ]
    assert codes == [201] * 4


# --- The sweeper ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_unmatched_callbacks_do_not_starve_a_genuine_leftover(django_assert_max_num_queries):
    long_ago = timezone.now() - timedelta(minutes=10)
    MpesaCallback.objects.bulk_create(
        [
            MpesaCallback(
                raw_body=failure_callback(f"ws_CO_STRANGER{n}"),
                checkout_request_id=f"ws_CO_STRANGER{n}",
                status=CB.UNMATCHED,
                attempts=3,  # looked at three times already: left for staff
            )
            for n in range(3600)
        ]
    )
    MpesaCallback.objects.update(received_at=long_ago)
    payment = PaymentFactory(amount=100)
    leftover = _store(success_callback(payment.checkout_request_id))
    MpesaCallback.objects.filter(pk=leftover).update(received_at=long_ago)

    with django_assert_max_num_queries(40):
        assert callbacks_process_pending() == 1
    assert MpesaCallback.objects.get(pk=leftover).status == CB.PROCESSED


@pytest.mark.django_db
def test_an_unmatched_callback_gets_a_second_and_a_last_look_then_is_left_for_staff():
    row = MpesaCallback.objects.get(pk=_store(failure_callback("ws_CO_NOBODY")))
    start = row.received_at
    looks = []
    for later in (31, 45, 70, 120, 400, 800):
        with time_machine.travel(start + timedelta(seconds=later), tick=False):
            looks.append(callbacks_process_pending())
    # First look (left by the batch task), a second 30 s later, the last 5 minutes on.
    assert looks == [1, 0, 1, 0, 1, 0]
    row.refresh_from_db()
    assert (row.status, row.attempts) == (CB.UNMATCHED, 3)


@pytest.mark.django_db
def test_a_chunked_body_read_through_the_wsgi_stream(url, rf):
    from io import BytesIO

    from attendance.views.webhooks import mpesa_callback

    payment = PaymentFactory(amount=100)
    body = success_callback(payment.checkout_request_id).encode()
    request = rf.post(url, data=b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["HTTP_TRANSFER_ENCODING"] = "chunked"
    request.META["wsgi.input"] = BytesIO(body)  # what gunicorn hands over: the decoded chunks
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert mpesa_callback(request, token).status_code == 200
    assert MpesaCallback.objects.get().raw_body == body.decode()


@pytest.mark.django_db
def test_callback_receive_never_raises_for_a_body(monkeypatch):
    def broken(body):
        raise KeyError("the parser's promise broken")

    monkeypatch.setattr(inbox, "parse_stk_callback", broken)
    row_id, status = callback_receive(body=b"{}", remote_addr=None)
    assert status == 400
    assert MpesaCallback.objects.get(pk=row_id).detail == "Unreadable: KeyError"


@pytest.mark.django_db
def test_a_whole_shilling_paid_amount_is_kept_to_the_cent(url, django_capture_on_commit_callbacks):
    payment = PaymentFactory(amount=100)
    with django_capture_on_commit_callbacks(execute=True):
        _post(url, success_callback(payment.checkout_request_id))
    payment.refresh_from_db()
    assert payment.paid_amount == Decimal("100.00")
    assert not payment.needs_review


# --- Logs -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_callback_token_never_reaches_a_log_line(url, settings, caplog):
    token = settings.MPESA_CALLBACK_TOKEN
    _post(url, "not json")  # Django logs "Bad Request: <path>" for a 400
    Client().get(url)  # and "Method Not Allowed" for a 405
    Client().post(url, "x" * (settings.MPESA_CALLBACK_MAX_BYTES + 10), content_type="text/plain")
    logging.getLogger("anything").warning("GET %s from 0712345678", url)  # any library's line
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "/api/payments/callback/" in text
    assert token not in text
    assert "/api/payments/callback/[redacted]/" in text
    assert "0712345678" not in text and "0712***678" in text


def test_the_redaction_filter_hides_tokens_secrets_and_phones(settings):
    from soundfusion_attendance.logs import RedactSecrets

    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "%s %s %s",
        (f"/crew/12/answer/{'a' * 30}:sig/", settings.SECRET_KEY, "+254712345678"),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "/crew/12/answer/[redacted]/ [redacted] +2547*****678"
