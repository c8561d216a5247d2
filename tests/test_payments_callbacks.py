from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from attendance.models import EmailNotification, LedgerEntry, MpesaCallback, MpesaPayment
from attendance.mpesa.callbacks import daraja_datetime
from attendance.services import payments as payment_services
from attendance.services.payments import callback_kick, callbacks_process_pending, inbox
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import failure_callback, success_callback

Status = MpesaPayment.Status
CB = MpesaCallback.Status


@pytest.fixture
def url(settings):
    return f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"


@pytest.fixture
def payment(db):
    user = UserFactory(email="payer@example.com", profile__phone_number="0712345678")
    return PaymentFactory(user=user, amount=100)


def _send(url, body):
    return Client().post(url, body, content_type="application/json")


def _credits(payment):
    return LedgerEntry.objects.filter(source_id=payment.pk, kind="payment").count()


def test_success_completes_and_credits_the_ledger_once(
    url, payment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(url, success_callback(payment.checkout_request_id))
    assert response.status_code == 200
    assert response.json() == {"ResultCode": 0, "ResultDesc": "Accepted"}
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert payment.receipt_number == "NLJ7RT61SV"
    assert timezone.localtime(payment.transaction_date).isoformat() == "2026-11-26T10:21:15+03:00"
    assert payment.paid_phone_number == "254712345678"
    assert payment.ledger_entry.amount == Decimal("-100.00")
    payment.user.profile.refresh_from_db()
    assert payment.user.profile.balance == Decimal("-100.00")
    confirmation = EmailNotification.objects.get(notification_type="payment_confirmation")
    assert confirmation.recipient == "payer@example.com"
    assert "NLJ7RT61SV" in confirmation.message
    assert "Your balance: KES 100.00 in credit" in confirmation.message
    assert MpesaCallback.objects.get().status == CB.PROCESSED


def test_a_duplicate_callback_credits_the_ledger_once(
    url, payment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert _send(url, success_callback(payment.checkout_request_id)).status_code == 200
    assert _credits(payment) == 1
    assert list(MpesaCallback.objects.order_by("id").values_list("status", flat=True)) == [
        CB.PROCESSED,
        CB.DUPLICATE,
        CB.DUPLICATE,
    ]
    assert EmailNotification.objects.filter(notification_type="payment_confirmation").count() == 1


def test_success_then_failure_stays_completed(url, payment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback(payment.checkout_request_id))
        _send(url, failure_callback(payment.checkout_request_id, 1037, "DS timeout"))
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert _credits(payment) == 1


def test_failure_then_success_ends_completed_because_the_money_moved(
    url, payment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, failure_callback(payment.checkout_request_id, 1037, "DS timeout"))
    payment.refresh_from_db()
    assert payment.status == Status.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback(payment.checkout_request_id))
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert _credits(payment) == 1


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        (1032, Status.CANCELLED, "cancelled on the phone"),
        (1037, Status.FAILED, "could not be reached"),
        (2001, Status.FAILED, "PIN was wrong"),
        (1, Status.FAILED, "Not enough money"),
        # Codes the issue found without a hint, and one that is not a number at all (Daraja
        # sends it when a till is misconfigured): stored as text, failed with its words.
        (26, Status.FAILED, "too busy"),
        (1001, Status.FAILED, "in progress on the phone"),
        (9999, Status.FAILED, "problem on its side"),
        ("SFC_IC0003", Status.FAILED, "does not know our till"),
    ],
)
def test_failure_codes_map_to_a_final_state_with_safaricoms_words(
    url, payment, code, status, hint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, failure_callback(payment.checkout_request_id, code, "Safaricom says so"))
    payment.refresh_from_db()
    assert payment.status == status
    assert payment.result_code == str(code)
    assert "Safaricom says so" in payment.result_description
    assert hint in payment.result_description
    assert _credits(payment) == 0


def test_a_later_failure_does_not_change_an_earlier_one(
    url, payment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, failure_callback(payment.checkout_request_id, 1032))
        _send(url, failure_callback(payment.checkout_request_id, 1037))
    payment.refresh_from_db()
    assert payment.status == Status.CANCELLED


def test_a_forged_token_is_404_and_nothing_is_stored(payment):
    for bad in ("wrong-token", "x" * 40):
        response = _send(
            f"/api/payments/callback/{bad}/", success_callback(payment.checkout_request_id)
        )
        assert response.status_code == 404
    assert _send("/api/mpesa/callback//", "{}").status_code == 404
    assert not MpesaCallback.objects.exists()
    payment.refresh_from_db()
    assert payment.status == Status.PENDING


def test_the_documented_mpesa_path_works_too(settings, payment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(
            f"/api/mpesa/callback/{settings.MPESA_CALLBACK_TOKEN}/",
            success_callback(payment.checkout_request_id),
        )
    assert response.status_code == 200
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED


def test_an_unknown_checkout_is_accepted_and_kept(url, db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(url, success_callback("ws_CO_NOT_OURS"))
    assert response.status_code == 200
    callback = MpesaCallback.objects.get()
    assert callback.status == CB.WAITING  # another look soon, then unmatched
    assert callback.checkout_request_id == "ws_CO_NOT_OURS"
    assert not LedgerEntry.objects.exists()


def _timed_out_push(
    *, phone="254712345678", amount=100, started_minutes_ago=1, code="push_unanswered"
):
    """A payment whose push got no answer from Daraja: failed, no CheckoutRequestID."""
    payment = PaymentFactory(
        phone_number=phone,
        amount=amount,
        status=Status.FAILED,
        result_code=code,
        checkout_request_id=None,
    )
    MpesaPayment.objects.filter(pk=payment.pk).update(
        initiated_at=timezone.now() - timedelta(minutes=started_minutes_ago)
    )
    return payment


def _paid_now():
    return int(timezone.localtime().strftime("%Y%m%d%H%M%S"))


def test_money_no_request_explains_is_reported_to_staff_once_the_race_is_ruled_out(
    url, db, staff, django_capture_on_commit_callbacks
):
    unmatched = EmailNotification.objects.filter(notification_type="payment_unmatched")
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback("ws_CO_NOT_OURS", amount=750, receipt="SFX1234567"))
        _send(url, failure_callback("ws_CO_NOT_OURS_EITHER"))
    assert not unmatched.exists()  # the push's answer may be saved any moment now

    a_minute_ago = timezone.now() - timedelta(minutes=1)
    MpesaCallback.objects.update(received_at=a_minute_ago, processed_at=a_minute_ago)
    for _ in range(2):  # two sweeper runs: one alert
        with django_capture_on_commit_callbacks(execute=True):
            callbacks_process_pending()
    alert = unmatched.get()
    assert alert.recipient == staff.email
    assert alert.subject == "M-Pesa payment SFX1234567 of KES 750.00 matches no request"
    assert "NOT credited to anyone" in alert.message
    assert "254712345678" not in alert.message and "2547*****678" in alert.message
    assert "/admin/attendance/ledgerentry/add/" in alert.message
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("paid_from", [254712345678, "2547****5678"])
def test_a_success_for_a_push_that_timed_out_completes_it_for_review(
    url, db, staff, paid_from, django_capture_on_commit_callbacks
):
    payment = _timed_out_push()
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback("ws_CO_NEVER_SEEN", phone=paid_from, paid_at=_paid_now()))
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert payment.checkout_request_id == "ws_CO_NEVER_SEEN"
    assert payment.needs_review and "no answer (push_unanswered)" in payment.review_reason
    assert _credits(payment) == 0
    assert MpesaCallback.objects.get().payment == payment
    assert EmailNotification.objects.filter(notification_type="payment_review").exists()
    # The same callback again is a duplicate, not a second settlement.
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback("ws_CO_NEVER_SEEN", phone=paid_from, paid_at=_paid_now()))
    assert MpesaCallback.objects.filter(status=CB.DUPLICATE).count() == 1


@pytest.mark.parametrize(
    ("candidates", "paid_from"),
    [
        ([{"phone": "254799999999"}], 254712345678),  # another phone paid
        ([{}, {}], "2547****5678"),  # two fit: no guessing
        ([{"code": "500.003.1001"}], 254712345678),  # Daraja refused it: no prompt was sent
        ([{"started_minutes_ago": 20}], 254712345678),  # older than the pending timeout
        ([{"amount": 200}], 254712345678),  # another amount
    ],
    ids=["another-phone", "two-fit", "daraja-refused", "too-old", "another-amount"],
)
def test_a_success_for_an_unknown_checkout_is_matched_only_when_one_push_fits(
    url, db, candidates, paid_from, django_capture_on_commit_callbacks
):
    payments = [_timed_out_push(**fields) for fields in candidates]
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback("ws_CO_NEVER_SEEN", phone=paid_from, paid_at=_paid_now()))
    assert MpesaCallback.objects.get().status == CB.WAITING
    for payment in payments:
        payment.refresh_from_db()
        assert (payment.status, payment.checkout_request_id) == (Status.FAILED, None)


def test_amount_mismatch_is_flagged_not_credited_and_staff_alerted(
    url, payment, django_capture_on_commit_callbacks
):
    from tests.support.auth import staff_in

    staff_in("Finance", email="boss@example.com")
    # An event manager cannot open the payment page the alert links to: not emailed.
    staff_in("Event managers", email="manager@example.com")
    UserFactory(is_staff=True, email="nobody@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            _send(url, success_callback(payment.checkout_request_id, amount=99)).status_code == 200
        )
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert payment.needs_review
    assert "paid KES 99" in payment.review_reason
    assert payment.ledger_entry is None
    assert _credits(payment) == 0
    alert = EmailNotification.objects.get(notification_type="payment_review")
    assert alert.recipient == "boss@example.com"
    assert "254712345678" not in alert.message  # masked


def test_a_different_paying_phone_is_flagged(url, payment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback(payment.checkout_request_id, phone=254799999999))
    payment.refresh_from_db()
    assert payment.needs_review
    assert _credits(payment) == 0


def test_staff_credit_a_reviewed_payment_once(
    url, payment, staff, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _send(url, success_callback(payment.checkout_request_id, amount=99))
    payment.refresh_from_db()
    payment_services.payment_credit_after_review(payment=payment, by=staff)
    with pytest.raises(payment_services.PaymentError):
        payment_services.payment_credit_after_review(payment=payment, by=staff)
    assert LedgerEntry.objects.get(kind="payment").amount == Decimal("-99.00")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"Body": {}}',
        b'{"Body": {"stkCallback": {"ResultCode": 0}}}',
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": "x"}}}',
        b'{"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1", "ResultCode": 0}}}',
    ],
)
def test_malformed_bodies_are_400_and_still_kept_raw(url, db, body):
    response = Client().post(url, body, content_type="application/json")
    assert response.status_code == 400
    callback = MpesaCallback.objects.get()
    assert callback.status == CB.MALFORMED
    assert callback.raw_body == body.decode()
    assert callback.detail


def test_an_oversized_body_is_refused_and_kept_truncated(url, db, settings):
    settings.MPESA_CALLBACK_MAX_BYTES = 1000
    response = Client().post(url, b"x" * 5000, content_type="application/json")
    assert response.status_code == 413
    callback = MpesaCallback.objects.get()
    assert callback.status == CB.MALFORMED
    assert len(callback.raw_body) == 1000


def test_the_raw_body_is_kept_when_processing_fails_and_retried_later(
    url, payment, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(inbox, "payment_apply_result", broken)
    with django_capture_on_commit_callbacks(execute=True):
        response = _send(url, success_callback(payment.checkout_request_id))
    assert response.status_code == 200
    callback = MpesaCallback.objects.get()
    assert callback.status == CB.ERROR
    assert "database hiccup" in callback.detail
    monkeypatch.undo()
    MpesaCallback.objects.update(
        received_at=callback.received_at.replace(year=2025),
        processed_at=callback.processed_at.replace(year=2025),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert callbacks_process_pending() == 1
    callback.refresh_from_db()
    assert callback.status == CB.PROCESSED
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED


def test_a_callback_that_beats_the_push_answer_is_settled_when_the_answer_is_saved(
    daraja, crew, django_capture_on_commit_callbacks, monkeypatch, settings
):
    """Daraja's callback can arrive before our push request has stored the CheckoutRequestID."""
    from attendance.mpesa import daraja_client

    client = daraja_client()
    original = client.stk_push

    def push_then_callback_first(**kwargs):
        accepted = original(**kwargs)
        _send(
            f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/",
            success_callback(accepted.checkout_request_id, amount=kwargs["amount"]),
        )
        early = MpesaCallback.objects.get()
        assert payment_services.callback_process(callback_id=early.pk) == CB.WAITING
        return accepted

    monkeypatch.setattr(client, "stk_push", push_then_callback_first)
    payment, _ = payment_services.payment_request_stk_push(
        payer=crew, amount=50, purpose="Fine", requested_by=crew
    )
    assert payment.status == Status.COMPLETED
    assert MpesaCallback.objects.get().status == CB.PROCESSED
    assert _credits(payment) == 1


def test_without_a_worker_each_request_settles_its_own_callback(
    url, payment, django_capture_on_commit_callbacks
):
    """Tasks in-process (the demo): a batch another request is running cannot wait for this
    row to commit, so its flag must not leave the callback to the sweeper."""
    assert callback_kick.set()  # another request's batch is running
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _send(url, success_callback(payment.checkout_request_id))
    finally:
        callback_kick.clear()
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert MpesaCallback.objects.get().status == CB.PROCESSED


@pytest.fixture
def on_a_worker():
    """Tasks go to a broker (none is reached here: nothing is queued in these tests)."""
    from tests.conftest import set_celery_eager

    set_celery_eager(False)
    yield
    set_celery_eager(True)


def test_the_endpoint_asks_redis_again_once_its_window_has_passed(
    url, payment, monkeypatch, on_a_worker, django_capture_on_commit_callbacks
):
    checks = []
    # The flag is always found set: a batch task is queued, so nothing is queued here.
    monkeypatch.setattr(callback_kick, "set", lambda: checks.append(1) and False)
    callback_kick.forget()
    body = success_callback(payment.checkout_request_id)
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(url, body).status_code == 200
        assert _send(url, body).status_code == 200  # within the window: Redis not asked
    assert len(checks) == 1
    monkeypatch.setattr(
        callback_kick, "seen_at", callback_kick.seen_at - callback_kick.LOCAL_SECONDS
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert _send(url, body).status_code == 200
    assert len(checks) == 2
    assert MpesaCallback.objects.filter(status=CB.RECEIVED).count() == 3


def test_a_callback_stored_just_as_the_batch_task_stops_is_still_processed(
    payment, monkeypatch, on_a_worker
):
    monkeypatch.setattr(inbox.stk_burst, "linger_seconds", 0.05)
    monkeypatch.setattr(inbox.stk_burst, "poll_seconds", 0.01)
    monkeypatch.setattr(callback_kick, "LOCAL_SECONDS", 0.05)
    clear = callback_kick.clear

    def clear_as_a_callback_arrives():
        clear()
        # A request that saw the flag set a moment ago stores its callback and skips Redis.
        inbox._callback_store(
            raw=success_callback(payment.checkout_request_id),
            remote_addr="196.201.214.200",
            checkout_request_id=payment.checkout_request_id,
        )

    monkeypatch.setattr(callback_kick, "clear", clear_as_a_callback_arrives)
    assert payment_services.callbacks_process_received() == 1
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert _credits(payment) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_callback_is_stored_even_if_the_database_dropped_the_connection(settings):
    import psycopg2
    from django.db import connection

    payment = PaymentFactory(user=UserFactory(), amount=100)
    connection.ensure_connection()
    pid = connection.connection.get_backend_pid()
    db = connection.settings_dict
    admin = psycopg2.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])  # a database restart, say
    admin.close()
    response = _send(
        f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/",
        success_callback(payment.checkout_request_id),
    )
    assert response.status_code == 200
    assert MpesaCallback.objects.filter(checkout_request_id=payment.checkout_request_id).exists()


@pytest.mark.parametrize(
    "value, expected",
    [
        (20261126102115, "2026-11-26T10:21:15+03:00"),
        ("20261126102115", "2026-11-26T10:21:15+03:00"),
        (20261126102115.0, "2026-11-26T10:21:15+03:00"),
        (2026112610211, None),  # 13 digits
        (20261326102115, None),  # month 13
        (20261126246015, None),  # hour 24
        ("soon", None),
        (None, None),
    ],
)
def test_the_transaction_date_is_read_in_kenyan_time_or_not_at_all(value, expected):
    parsed = daraja_datetime(value)
    assert (parsed.isoformat() if parsed else None) == expected
