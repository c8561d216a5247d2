"""Payouts where they meet the rest of the product (issue 25, money out), on PostgreSQL with
the simulator over HTTP: an answer that does not prove a refusal never makes a payout due
again, the amount is what the member is owed when it is sent, a hostile status answer never
wedges reconciliation, a payout whose POST never left is sent again with the same id, and a
person can close a payout M-Pesa never told us about."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.contrib.auth.models import Permission
from django.utils import timezone

from attendance.models import (
    BulkJob,
    BulkJobItem,
    EmailNotification,
    LedgerEntry,
    Payout,
    PayoutResult,
    Profile,
)
from attendance.services.ledger import ledger_post
from attendance.services.payouts import (
    PayoutError,
    payout_result_process,
    payout_retry,
    payout_submit,
    payouts_due,
    payouts_prepare,
    payouts_reconcile,
    payouts_release,
)
from tests.support.auth import log_in_staff
from tests.support.factories import UserFactory
from tests.support.pay import approved_run
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = Decimal


@pytest.fixture
def sim(b2c):
    return b2c


LATER = timedelta(seconds=600)


def disbursements(sim) -> dict[str, int]:
    return sim.state.b2c.snapshot()["b2c_requests_per_id"]


def test_http_500_after_money_moved_is_unknown_a_second_press_pays_nothing_status_completes(sim):
    run, [member], finance = approved_run(["0712005001"])  # answered 500 "System internal error."
    [payout] = payouts_prepare(pay_run=run, by=finance)
    assert payout_submit(payout_id=payout.pk) == "unknown"  # before the fix: failed
    # Finance presses Pay out again: nothing is due, nothing is sent.
    assert payouts_due(run) == []
    with pytest.raises(PayoutError):
        payouts_prepare(pay_run=run, by=finance)
    with pytest.raises(PayoutError):
        payout_retry(payout=payout, by=finance)
    payouts_reconcile(now=timezone.now() + LATER)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    assert disbursements(sim) == {payout.originator_conversation_id: 1}
    assert LedgerEntry.objects.filter(kind="payout", user=member).count() == 1


def test_a_success_reported_after_a_failure_is_flagged_and_the_payslip_is_never_due_again(sim):
    run, _, finance = approved_run(["0712002040"])  # refused: not an M-Pesa customer
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "failed")
    assert len(payouts_due(run)) == 1  # proven unpaid: due again
    from attendance.services.payouts import payout_mark_paid

    # Settled as far as it can be (it stays failed): flagged for a person, never due again.
    payout_mark_paid(payout=payout, receipt="SGX1234567", amount=None, how="late")
    payout.refresh_from_db()
    assert payout.status == "failed" and payout.needs_review
    assert "after it was recorded as not paid" in payout.review_reason
    assert payouts_due(run) == []
    with pytest.raises(PayoutError, match="flagged"):
        payout_retry(payout=payout, by=finance)


def test_a_charge_after_approval_caps_the_payout_and_the_member_is_told_why(sim, client):
    run, [member], finance = approved_run(["0712000100"])  # payslip: KES 1,500
    ledger_post(user=member, kind="charge", amount=D("600"), description="Lost cable")
    [due] = payouts_due(run)
    assert (due.payslip_amount, due.amount) == (1500, 900)
    admin = UserFactory(is_staff=True, is_superuser=True)
    page = log_in_staff(client, admin).get(f"/admin/attendance/payrun/{run.pk}/change/")
    assert b"payslip KES 1500, owed now KES 900" in page.content
    [payout] = payouts_prepare(pay_run=run, by=finance)
    # Another charge after the payout was drawn up, before it is sent: capped at the claim.
    ledger_post(user=member, kind="charge", amount=D("100"), description="Damaged case")
    payout_submit(payout_id=payout.pk)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    payout.refresh_from_db()
    assert (payout.amount, payout.capped_from) == (800, 1500)
    assert sim.state.b2c.payouts[payout.originator_conversation_id].amount == 800
    member.profile.refresh_from_db()
    assert member.profile.balance == 0
    receipt = EmailNotification.objects.get(user=member, notification_type="payout_receipt")
    assert "Your payslip said KES 1500; we paid KES 800" in receipt.message


def test_a_member_who_owes_by_the_time_of_sending_is_paid_nothing(sim):
    run, [member], finance = approved_run(["0712000100"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    ledger_post(user=member, kind="charge", amount=D("6000"), description="Speaker repair")
    ledger_post(user=member, kind="payment", amount=D("4500"), description="M-Pesa ABC")
    assert payout_submit(payout_id=payout.pk) == "failed"
    payout.refresh_from_db()
    assert payout.result_code == "not_owed" and sim.state.b2c.snapshot()["b2c"] == 0
    member.profile.refresh_from_db()
    assert member.profile.balance == 0  # not "owes KES 1,500" as before the fix
    assert payouts_due(run) == []


def _status_body(ocid: str, **extra) -> dict:
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": "q-1",
            "ConversationID": "AG_TS_1",
            "TransactionID": "TS1",
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "OriginatorConversationID", "Value": ocid},
                    {"Key": "TransactionStatus", "Value": "Completed"},
                    {"Key": "Amount", "Value": "1500"},
                    {"Key": "ReceiptNo", "Value": "SG\u0000632NMUAB"},
                    {"Key": "DebitPartyName", "Value": "254712000003 - \u0000JOHN"},
                ]
            },
            **extra,
        }
    }


def test_a_nul_in_a_status_answer_never_wedges_reconciliation_and_hostile_bodies_are_stored(
    sim, live_server, settings
):
    run, _, finance = approved_run(["0712000100", "0712000003"])  # the second: lost
    payouts = payouts_prepare(pay_run=run, by=finance)
    [paid] = [p for p in payouts if p.phone_number.endswith("100")]
    [lost] = [p for p in payouts if p.phone_number.endswith("003")]
    payout_submit(payout_id=paid.pk)
    payout_submit(payout_id=lost.pk)
    assert wait_until(lambda: Payout.objects.get(pk=paid.pk).status == "completed")
    url = f"{live_server.url}/api/payouts/status/{settings.MPESA_B2C_RESULT_TOKEN}/"
    hostile = [
        _status_body(paid.originator_conversation_id, ConversationID="AG\u0000X"),
        {"Result": {"ResultCode": 0, "ResultParameters": "not a list"}},
        {"Result": {"ResultCode": 0, "OriginatorConversationID": "SF-\u0000"}},
    ]
    for body in hostile:
        assert requests.post(url, data=json.dumps(body).encode(), timeout=10).status_code == 200
    assert PayoutResult.objects.filter(kind="status").count() == 3  # all stored
    assert wait_until(
        lambda: not PayoutResult.objects.filter(kind="status", status="received").exists()
    )
    stored = PayoutResult.objects.filter(kind="status").order_by("pk").first()
    assert "\u0000" not in stored.conversation_id and stored.status == "duplicate"
    # The lost result is settled at the next check, with the hostile rows around.
    payouts_reconcile(now=timezone.now() + LATER)
    assert wait_until(lambda: Payout.objects.get(pk=lost.pk).status == "completed")


def test_a_result_whose_processing_keeps_failing_is_quarantined_then_reprocessed(
    sim, monkeypatch, settings
):
    run, [_member], finance = approved_run(["0712000003"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    row = PayoutResult.objects.create(
        kind="status",
        raw_body=json.dumps(_status_body(payout.originator_conversation_id)),
    )
    from attendance.services.payouts import inbox

    def broken(row):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(inbox, "_apply", broken)
    for _ in range(settings.PAYOUT_RESULT_MAX_ATTEMPTS):
        payout_result_process(result_id=row.pk)
    row.refresh_from_db()
    assert row.status == "quarantined" and row.attempts == settings.PAYOUT_RESULT_MAX_ATTEMPTS
    assert payouts_reconcile(now=timezone.now())["results"] == 0  # not retried for ever
    monkeypatch.undo()
    from attendance.services.payouts import payout_result_reprocess

    assert payout_result_reprocess(result=row) == "processed"
    assert Payout.objects.get(pk=payout.pk).status == "completed"


def test_pay_again_works_on_postgresql_for_a_payout_proven_unpaid(sim):
    run, [_member], finance = approved_run(["0712002040"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "failed")
    again = payout_retry(payout=payout, by=finance)  # before the fix: FOR UPDATE on an outer join
    assert again.retry_of_id == payout.pk and again.amount == 1500
    with pytest.raises(PayoutError):
        payout_retry(payout=payout, by=finance)


def test_a_worker_that_died_before_its_post_ends_in_exactly_one_disbursement(sim):
    run, [member], finance = approved_run(["0712000100"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    # Claimed, then the worker died before the POST left: Daraja never saw it.
    Payout.objects.filter(pk=payout.pk).update(
        status="sending", submitted_at=timezone.now(), sends=1
    )
    payouts_reconcile(now=timezone.now() + LATER)  # status: "not found" -> the same id again
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    payouts_reconcile(now=timezone.now() + 2 * LATER)
    assert disbursements(sim) == {payout.originator_conversation_id: 1}
    assert LedgerEntry.objects.filter(kind="payout", user=member).count() == 1


def test_a_refused_payout_reads_not_paid_on_its_job_and_the_member_is_told(sim, client):
    run, [member], _finance = approved_run(["0712002040"])
    payer = UserFactory(is_staff=True)
    payer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payrun", "submit_payout"])
    )
    response = log_in_staff(client, payer).post(f"/admin/attendance/payrun/{run.pk}/payout/")
    assert response.status_code == 302
    assert wait_until(lambda: Payout.objects.filter(status="failed").exists())
    item = BulkJobItem.objects.get(job__kind=BulkJob.Kind.SUBMIT_PAYOUTS)
    assert item.status == "failed" and "not a registered M-Pesa line" in item.outcome
    job = BulkJob.objects.get(pk=item.job_id)
    assert (job.done, job.failed) == (0, 1)
    told = EmailNotification.objects.get(user=member, notification_type="payout_not_paid")
    assert "Check the M-Pesa number on your Account page" in told.message


def test_a_person_closes_an_unknown_payout_with_its_permission_and_a_reason(sim, client):
    run, [member], finance = approved_run(["0712000003"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    Payout.objects.filter(pk=payout.pk).update(status="unknown")
    url = f"/admin/attendance/payout/{payout.pk}/close/"
    payer = UserFactory(is_staff=True)
    payer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payout", "submit_payout"])
    )
    assert log_in_staff(client, payer).get(url).status_code == 403
    closer = UserFactory(is_staff=True)
    closer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payout", "close_payout"])
    )
    client.force_login(closer)  # no second factor: the admin asks for it first
    assert client.post(url, {"outcome": "paid"}).status_code == 302
    log_in_staff(client, closer)
    page = client.post(url, {"outcome": "paid", "receipt": "", "reason": "checked"})
    assert b"Give the M-Pesa receipt" in page.content
    done = client.post(
        url, {"outcome": "paid", "receipt": "sgx1234567", "reason": "Utility statement, 14:02"}
    )
    assert done.status_code == 302
    payout.refresh_from_db()
    assert payout.status == "completed" and payout.receipt_number == "SGX1234567"
    assert LedgerEntry.objects.filter(kind="payout", user=member).count() == 1
    from auditlog.models import LogEntry

    entry = LogEntry.objects.get(additional_data__event="payout_closed")
    assert "Utility statement" in json.dumps(entry.additional_data)


def test_a_payout_to_a_new_number_waits_for_a_second_finance_approval(sim, client):
    run, [member], finance = approved_run(["0712000100"])
    Profile.objects.filter(user=member).update(phone_changed_at=timezone.now())
    [payout] = payouts_prepare(pay_run=run, by=finance)
    assert payout.status == "held"
    assert payout_submit(payout_id=payout.pk) == "held"  # a worker never sends it
    assert sim.state.b2c.snapshot()["b2c"] == 0
    with pytest.raises(PayoutError, match="second person"):
        payouts_release(pay_run=run, by=finance)
    second = UserFactory(is_staff=True)
    second.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payrun", "submit_payout"])
    )
    page = log_in_staff(client, second).get(f"/admin/attendance/payrun/{run.pk}/change/")
    assert b'id="payouts-held"' in page.content
    response = client.post(f"/admin/attendance/payrun/{run.pk}/release/")
    assert response.status_code == 302 and "/bulkjob/" in response["Location"]
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    assert Payout.objects.get(pk=payout.pk).released_by == second


def test_a_number_changed_after_the_payout_was_drawn_up_is_never_paid_unchecked(sim):
    run, [member], finance = approved_run(["0712000100"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    Profile.objects.filter(user=member).update(
        phone_number="254799000111", phone_changed_at=timezone.now()
    )
    assert payout_submit(payout_id=payout.pk) == "held"
    assert sim.state.b2c.snapshot()["b2c"] == 0
    payout.refresh_from_db()
    assert payout.phone_number == "254799000111"  # released, it pays the proven number


def test_a_payout_whose_result_names_someone_else_is_flagged(sim):
    run, [member], finance = approved_run(["0712000100"])
    member.first_name, member.last_name = "Wanjiku", "Kamau"
    member.save()
    sim.state.b2c.names["254712000100"] = "PETER OTIENO"  # the SIM is someone else's
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    payout.refresh_from_db()
    assert payout.needs_review
    assert "registered to PETER OTIENO, not Wanjiku Kamau" in payout.review_reason


def _payer():
    payer = UserFactory(is_staff=True)
    payer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payrun", "submit_payout", "view_bulkjob"])
    )
    return payer


def test_pay_out_answers_at_once_and_the_float_check_runs_in_the_job(sim, client):
    run, _members, _finance = approved_run(["0712000100", "0712000200"])
    sim.state.b2c.utility_balance = D("2000.00")  # short of the run's KES 3,000
    log_in_staff(client, _payer())
    first = client.post(f"/admin/attendance/payrun/{run.pk}/payout/")
    second = client.post(f"/admin/attendance/payrun/{run.pk}/payout/")  # a double click
    assert first["Location"] == second["Location"] and "/bulkjob/" in first["Location"]
    assert BulkJob.objects.count() == 1
    job = BulkJob.objects.get()
    assert wait_until(lambda: BulkJob.objects.get(pk=job.pk).status == "failed")
    page = client.get(first["Location"]).content.decode()
    assert "KES 2,000.00" in page and "KES 3,000.00" in page  # the figures, on the job page
    assert f'href="/admin/attendance/payrun/{run.pk}/change/"' in page  # a way back
    assert not Payout.objects.exists() and sim.state.b2c.snapshot()["b2c"] == 0


def test_the_payout_job_shows_what_it_found_and_then_each_payout(sim, client):
    run, _members, _finance = approved_run(["0712000100", "0712000200"])
    log_in_staff(client, _payer())
    response = client.post(f"/admin/attendance/payrun/{run.pk}/payout/")
    job_url = response["Location"]
    assert wait_until(lambda: Payout.objects.filter(status="completed").count() == 2)
    job = BulkJob.objects.get()
    assert job.stage == "2 payout(s), KES 3,000, going to M-Pesa."
    assert (job.total, job.done, job.status) == (2, 2, "done")
    progress = client.get(f"{job_url.rstrip('/').rsplit('/', 1)[0]}/progress/").json()
    assert progress["stage"] == job.stage and len(progress["items"]) == 2


def test_the_job_row_of_a_paid_payout_says_paid_with_its_code(sim, client):
    run, _members, _finance = approved_run(["0712000100"])
    log_in_staff(client, _payer())
    client.post(f"/admin/attendance/payrun/{run.pk}/payout/")
    assert wait_until(lambda: Payout.objects.filter(status="completed").exists())
    payout = Payout.objects.get()
    item = BulkJobItem.objects.get(target_id=payout.pk)
    assert item.outcome.endswith(f"paid, M-Pesa code {payout.receipt_number}.")
