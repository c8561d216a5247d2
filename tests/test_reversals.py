"""Reversing Paybill payments through the simulator over HTTP: never twice per receipt, the
result through the inbox, one adjustment when the payment had been credited."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from attendance.models import LedgerEntry, PaybillPayment, Reversal, ReversalResult
from attendance.services.payments.paybill import paybill_not_ours
from attendance.services.payments.paybill_registration import paybill_register_urls
from attendance.services.payments.reversals import ReversalError, reversal_request
from tests.support.auth import log_in_staff
from tests.support.mpesa_wire import post_body
from tests.support.waiting import wait_until

# The simulator posts results to the live server while the test writes: real concurrency.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
P = PaybillPayment.Status
R = Reversal.Status


@pytest.fixture
def sim(b2c, live_server, settings):
    """The simulator's Paybill confirmed to the live server; reversal results back to it."""
    settings.MPESA_C2B_SHORT_CODE = settings.MPESA_BUSINESS_SHORT_CODE
    settings.MPESA_C2B_URL = f"{live_server.url}/api/paybill"
    settings.MPESA_REVERSAL_RESULT_URL = f"{live_server.url}/api/reversals"
    paybill_register_urls()
    return b2c


def _settled(reversal):
    return wait_until(
        lambda: Reversal.objects.filter(
            pk=reversal.pk, status__in=[R.COMPLETED, R.FAILED]
        ).exists(),
        10,
    )


def test_a_payment_not_ours_goes_back_to_the_payer_once(sim, staff):
    shown = sim.state.paybill.pay(phone="254799000001", amount=1500, account="INV-77")
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    assert payment.status == P.UNATTRIBUTED
    with pytest.raises(ReversalError, match="only a payment marked not ours"):
        reversal_request(payment=payment, by=staff, reason="wrong account")
    paybill_not_ours(payment=payment, by=staff, reason="Paid to our Paybill by mistake")

    reversal = reversal_request(payment=payment, by=staff, reason="Paid to us by mistake")
    assert reversal.status == R.SENT and reversal.conversation_id.startswith("AG_")
    with pytest.raises(ReversalError, match="never twice"):
        reversal_request(payment=payment, by=staff, reason="again")
    assert _settled(reversal)

    reversal.refresh_from_db()
    payment.refresh_from_db()
    assert reversal.status == R.COMPLETED and reversal.reversal_receipt.startswith("S")
    assert payment.status == P.REVERSED
    assert reversal.ledger_entry is None and not LedgerEntry.objects.exists()
    assert ReversalResult.objects.get().status == "processed"


def test_a_credited_payment_reversed_takes_the_credit_back_in_one_adjustment(sim, crew, staff):
    shown = sim.state.paybill.pay(
        phone="254712345678", amount=800, account=crew.profile.account_code
    )
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    assert payment.status == P.CREDITED
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("-800.00")

    reversal = reversal_request(payment=payment, by=staff, reason="Paid the same charge twice")
    assert _settled(reversal)
    # M-Pesa's result delivered again (stored raw, a duplicate): no second adjustment.
    result = ReversalResult.objects.get()
    url = f"{settings.MPESA_REVERSAL_RESULT_URL}/result/{settings.MPESA_REVERSAL_RESULT_TOKEN}/"
    assert post_body(url, result.raw_body) == 200
    reversal.refresh_from_db()
    crew.profile.refresh_from_db()
    assert reversal.status == R.COMPLETED and reversal.ledger_entry.amount == Decimal("800.00")
    assert crew.profile.balance == Decimal("0.00")
    assert LedgerEntry.objects.filter(kind="adjustment").count() == 1
    assert sorted(ReversalResult.objects.values_list("status", flat=True)) == [
        "duplicate",
        "processed",
    ]


def test_a_receipt_mpesa_does_not_know_fails_in_words_and_may_be_asked_again(sim, staff):
    from attendance.services.payments.paybill import paybill_seen

    payment = paybill_seen(
        receipt="SNOTKNOWN1", amount=Decimal(300), paid_at=None, bill_ref="x", source="statement"
    )
    paybill_not_ours(payment=payment, by=staff, reason="a stranger's")
    first = reversal_request(payment=payment, by=staff, reason="Not ours")
    assert _settled(first)
    first.refresh_from_db()
    assert first.status == R.FAILED and first.result_code == "R000002"
    assert "M-Pesa does not know this receipt" in first.result_description
    assert first.reversal_receipt == ""  # the failure's placeholder is not a receipt
    second = reversal_request(payment=payment, by=staff, reason="Not ours, again")
    assert second.pk != first.pk


def test_a_wrong_operator_password_fails_without_a_result_and_nothing_moves(sim, staff, settings):
    settings.MPESA_REVERSAL_INITIATOR_PASSWORD = "not-the-password"
    shown = sim.state.paybill.pay(phone="254799000002", amount=900, account="HELLO")
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    paybill_not_ours(payment=payment, by=staff, reason="stranger")
    reversal = reversal_request(payment=payment, by=staff, reason="Not ours")
    assert _settled(reversal)
    reversal.refresh_from_db()
    assert reversal.status == R.FAILED and reversal.result_code == "2001"
    assert PaybillPayment.objects.get(pk=payment.pk).status == P.NOT_OURS


def test_forged_reversal_urls_are_404_with_nothing_stored(client):
    for kind, token in (("result", "wrong"), ("other", settings.MPESA_REVERSAL_RESULT_TOKEN)):
        response = client.post(
            f"/api/reversals/{kind}/{token}/", data="{}", content_type="application/json"
        )
        assert response.status_code == 404
    response = client.post(
        f"/api/reversals/result/{settings.MPESA_REVERSAL_RESULT_TOKEN}/",
        data="not json",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert ReversalResult.objects.get().status == "malformed"


def test_reversing_from_admin_needs_its_own_permission(sim, client, staff, crew):
    from django.contrib.auth.models import Permission

    from tests.support.factories import UserFactory

    shown = sim.state.paybill.pay(phone="254799000003", amount=700, account="WRONG")
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    paybill_not_ours(payment=payment, by=staff, reason="stranger")
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_paybillpayment", "assign_paybillpayment"])
    )
    log_in_staff(client, finance)
    url = f"/admin/attendance/paybillpayment/{payment.pk}/reverse/"
    page = client.get(f"/admin/attendance/paybillpayment/{payment.pk}/change/").content.decode()
    assert "paybill-reverse-link" not in page
    assert client.post(url, {"reason": "stranger"}).status_code == 403

    log_in_staff(client, staff)
    page = client.get(f"/admin/attendance/paybillpayment/{payment.pk}/change/").content.decode()
    assert "paybill-reverse-link" in page
    done = client.post(url, {"reason": "Paid to us by mistake"}, follow=True)
    assert "Reversal of" in done.content.decode()
    assert Reversal.objects.filter(payment=payment).count() == 1
    again = client.post(url, {"reason": "twice"})
    assert "never twice" in again.content.decode()


def test_a_reversal_on_the_statement_matches_and_the_books_agree(sim, staff):
    import requests
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from attendance.models import StatementRow
    from attendance.services.payments.books import reconciliation
    from attendance.services.payments.statement import statement_import

    shown = sim.state.paybill.pay(phone="254799000004", amount=2500, account="NOT-US")
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    paybill_not_ours(payment=payment, by=staff, reason="stranger")
    reversal = reversal_request(payment=payment, by=staff, reason="Paid to us by mistake")
    assert _settled(reversal)
    reversal.refresh_from_db()

    export = requests.get(f"{sim.url}/simulator/statement", timeout=10).content
    statement_import(file=SimpleUploadedFile("s.csv", export), name="s.csv", by=staff)
    row = StatementRow.objects.get(kind="reversal")
    assert (row.receipt, row.linked_receipt) == (reversal.reversal_receipt, payment.receipt)
    assert (row.matched, row.matched_id) == ("reversal", reversal.pk)
    today = timezone.localdate()
    report = reconciliation(today - timedelta(days=1), today)
    assert report.statement_reversals.total == report.books_reversals.total == Decimal(2500)
    assert report.agrees, (report.statement_only_rows, report.books_only_rows)


def test_two_people_reversing_the_same_payment_at_once_send_one_request(sim, staff):
    import threading

    from django.db import connection

    from tests.support.factories import UserFactory

    shown = sim.state.paybill.pay(phone="254799000005", amount=1100, account="WRONG-1")
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    paybill_not_ours(payment=payment, by=staff, reason="stranger")
    other = UserFactory(is_staff=True)
    start, outcomes = threading.Barrier(2), []

    def reverse(person):
        try:
            start.wait(5)
            reversal_request(payment=payment, by=person, reason="Not ours")
            outcomes.append("asked")
        except ReversalError as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=reverse, args=(p,)) for p in (staff, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("asked") == 1
    assert next(o for o in outcomes if o != "asked").endswith("never twice.")
    assert Reversal.objects.filter(payment=payment).count() == 1
    assert wait_until(lambda: len(sim.state.reversals) == 1, 10)
    assert _settled(Reversal.objects.get(payment=payment))
