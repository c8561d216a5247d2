"""Reconciliation and the full flow through the simulator: push, callback over HTTP, query."""

from datetime import timedelta

import pytest
from django.utils import timezone

from attendance.models import EmailNotification, LedgerEntry, MpesaCallback, MpesaPayment
from attendance.services.payments import payment_request_stk_push, payments_reconcile
from tests.support.factories import UserFactory
from tests.support.waiting import wait_until

Status = MpesaPayment.Status


@pytest.fixture
def member(db):
    return UserFactory(email="member@example.com")


def _request(member, phone, amount=100):
    payment, _ = payment_request_stk_push(
        payer=member, amount=amount, purpose="Balance payment", requested_by=member, phone=phone
    )
    return payment


def _settled(payment):
    payment.refresh_from_db()
    return payment.is_final


@pytest.mark.django_db(transaction=True)
def test_full_flow_success_through_the_simulator_and_a_real_callback(
    callbacks_to_live_server, member
):
    payment = _request(member, "0708374149", amount=250)
    assert payment.status == Status.PENDING
    assert wait_until(lambda: _settled(payment), timeout=10)
    assert payment.status == Status.COMPLETED
    assert len(payment.receipt_number) == 10
    assert payment.ledger_entry.amount == -250
    assert MpesaCallback.objects.get().remote_addr == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("phone", "status", "code"),
    [
        ("0711111032", Status.CANCELLED, "1032"),
        ("0711110001", Status.FAILED, "1"),
        ("0711112001", Status.FAILED, "2001"),
    ],
)
def test_full_flow_failures_through_the_simulator(
    callbacks_to_live_server, member, phone, status, code
):
    payment = _request(member, phone)
    assert wait_until(lambda: _settled(payment), timeout=10)
    assert payment.status == status
    assert payment.result_code == code
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_callback_sent_twice_credits_once(callbacks_to_live_server, member):
    payment = _request(member, "0711110002")
    assert wait_until(lambda: MpesaCallback.objects.count() == 2, timeout=10)
    assert wait_until(lambda: not MpesaCallback.objects.filter(status="received").exists(), 5)
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_underpayment_is_flagged_for_review(callbacks_to_live_server, member):
    payment = _request(member, "0711110009", amount=500)
    assert wait_until(lambda: _settled(payment), timeout=10)
    assert payment.needs_review
    assert "paid KES 499" in payment.review_reason
    assert not LedgerEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_push_that_timed_out_but_reached_the_phone_is_matched_for_review(
    callbacks_to_live_server, daraja, member, settings
):
    """Our read timeout fired, yet the prompt reached the phone and the customer paid."""
    from attendance.services.payments import PaymentError, payment_credit_after_review

    UserFactory(is_staff=True, is_superuser=True, email="boss@example.com")
    settings.MPESA_READ_TIMEOUT = 0.5
    daraja.state.callback_delay = 1.5  # the customer answers after we have given up
    with pytest.raises(PaymentError) as failure:
        _request(member, "0711115041", amount=300)
    payment = failure.value.payment
    assert (payment.status, payment.result_code) == (Status.FAILED, "push_unanswered")
    assert "timeout: Daraja did not answer in time" in payment.result_description
    assert payment.checkout_request_id is None

    # The simulator's callback (after its delay) reaches the live server, which matches it.
    assert wait_until(lambda: MpesaCallback.objects.filter(status="processed").exists(), 10)
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert payment.needs_review
    assert "our push got no answer (push_unanswered)" in payment.review_reason
    assert payment.checkout_request_id == MpesaCallback.objects.get().checkout_request_id
    assert len(payment.receipt_number) == 10
    assert not LedgerEntry.objects.exists()
    alert = EmailNotification.objects.get(notification_type="payment_review")
    assert alert.recipient == "boss@example.com"
    assert "needs review" in alert.message

    payment_credit_after_review(payment=payment, by=member)
    assert LedgerEntry.objects.get(kind="payment").amount == -300


def test_a_lost_callback_is_settled_by_the_query(daraja, member, settings):
    settings.MPESA_QUERY_AFTER_SECONDS = 0
    payment = _request(member, "0711110003")
    # The simulated customer answers after a moment; no callback comes.
    assert wait_until(lambda: daraja.state.answered(payment.checkout_request_id))
    counts = payments_reconcile(now=timezone.now() + timedelta(seconds=1))
    assert counts["processed"] == 1
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert payment.settled_via == "query"
    assert payment.receipt_number == ""  # the query carries none
    assert payment.ledger_entry.amount == -100
    # Asking again changes nothing.
    assert "processed" not in payments_reconcile(now=timezone.now() + timedelta(minutes=5))
    assert LedgerEntry.objects.count() == 1


def test_still_processing_means_ask_again_later(daraja, member, settings):
    settings.MPESA_QUERY_AFTER_SECONDS = 0
    daraja.state.callback_delay = 30
    payment = _request(member, "0711110003")
    assert payments_reconcile(now=timezone.now() + timedelta(seconds=1)) == {
        "pending": 1,
        "expired": 0,
    }
    payment.refresh_from_db()
    assert payment.status == Status.PENDING
    assert payment.query_count == 1


def test_unreachable_phone_fails_by_query(daraja, member, settings):
    settings.MPESA_QUERY_AFTER_SECONDS = 0
    payment = _request(member, "0711111037")
    assert wait_until(lambda: daraja.state.answered(payment.checkout_request_id))
    payments_reconcile(now=timezone.now() + timedelta(seconds=1))
    payment.refresh_from_db()
    assert payment.status == Status.FAILED
    assert payment.result_code == "1037"


def test_no_answer_past_the_timeout_fails_and_a_late_callback_still_completes(
    daraja, member, settings, django_capture_on_commit_callbacks
):
    from django.test import Client

    from tests.support.mpesa_wire import success_callback

    settings.MPESA_QUERY_AFTER_SECONDS = 0
    settings.MPESA_PENDING_TIMEOUT_SECONDS = 600
    daraja.state.callback_delay = 3600
    payment = _request(member, "0711110003")
    counts = payments_reconcile(now=timezone.now() + timedelta(minutes=11))
    assert counts["expired"] == 1
    payment.refresh_from_db()
    assert payment.status == Status.FAILED
    assert payment.result_code == "expired"
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(
            f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/",
            success_callback(payment.checkout_request_id, amount=100, phone=254711110003),
            content_type="application/json",
        )
    payment.refresh_from_db()
    assert payment.status == Status.COMPLETED
    assert LedgerEntry.objects.filter(kind="payment").count() == 1
