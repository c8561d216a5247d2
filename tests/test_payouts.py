"""B2C payouts end to end on PostgreSQL: the simulator over HTTP, results POSTed to the app
served on loopback, exactly-once settlement, reconciliation by Transaction Status."""

import json
import random
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from attendance import mpesa
from attendance.models import LedgerEntry, Payout, PayoutResult
from attendance.services.payouts import (
    PayoutError,
    payout_submit,
    payouts_prepare,
    payouts_reconcile,
)
from tests.support.auth import log_in_staff
from tests.support.factories import UserFactory
from tests.support.pay import approved_run
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = Decimal
PASSWORD = "Sim#Initiator1"  # the b2c fixture's initiator password (conftest.py)


def test_a_pay_run_pays_out_and_each_member_is_back_to_zero(b2c):
    run, members, finance = approved_run(["0712000100", "0712000200"])
    payouts = payouts_prepare(pay_run=run, by=finance)
    assert [p.status for p in payouts] == ["queued", "queued"]
    for payout in payouts:
        assert payout_submit(payout_id=payout.pk) in ("submitted", "completed")
    assert wait_until(lambda: Payout.objects.filter(status="completed").count() == 2)
    for member in members:
        member.profile.refresh_from_db()
        assert member.profile.balance == 0  # earned 1,500 (credit), paid 1,500
        payout = Payout.objects.get(user=member)
        assert len(payout.receipt_number) == 10 and payout.utility_balance is not None
        # M-Pesa's registered name for the number is the member's: nothing to review.
        assert payout.receiver_name.endswith(member.get_full_name().upper())
        assert not payout.needs_review
    assert LedgerEntry.objects.filter(kind="payout").count() == 2
    receipts = [json.loads(r.raw_body) for r in PayoutResult.objects.filter(kind="result")]
    assert len(receipts) == 2  # stored raw
    assert wait_until(
        lambda: (
            b2c.state.b2c.snapshot()["b2c_requests_per_id"]
            and all(n == 1 for n in b2c.state.b2c.snapshot()["b2c_requests_per_id"].values())
        )
    )


def test_insufficient_float_refuses_the_run_before_any_post(b2c):
    run, _members, finance = approved_run(["0712000100", "0712000200"])
    b2c.state.b2c.utility_balance = D("2000.00")
    with pytest.raises(PayoutError) as refused:
        payouts_prepare(pay_run=run, by=finance)
    assert "KES 2,000.00" in str(refused.value) and "KES 3,000.00" in str(refused.value)
    assert not Payout.objects.exists()
    assert b2c.state.b2c.snapshot()["b2c"] == 0
    # An explicit choice pays what fits.
    payouts = payouts_prepare(pay_run=run, by=finance, partial=True)
    assert len(payouts) == 1


def test_a_post_that_times_out_is_unknown_and_transaction_status_completes_it_without_a_second_post(
    b2c,
):
    run, [member], finance = approved_run(["0712000003"])  # its result is lost
    b2c.state.b2c.answer_latency = 1.6  # longer than the client's 1 s read timeout
    [payout] = payouts_prepare(pay_run=run, by=finance)
    assert payout_submit(payout_id=payout.pk) == "unknown"
    payouts_reconcile(now=timezone.now() + timedelta(seconds=600))
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    assert b2c.state.b2c.snapshot()["b2c_requests_per_id"] == {payout.originator_conversation_id: 1}
    assert LedgerEntry.objects.filter(kind="payout", user=member).count() == 1


def test_a_lost_result_is_settled_by_reconciliation(b2c):
    run, _members, finance = approved_run(["0712000003"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    assert payout_submit(payout_id=payout.pk) == "submitted"
    # Proving that no result comes takes waiting past when it would have come (the
    # simulator answers 0.1 s after the POST): five times that.
    time.sleep(0.5)
    assert Payout.objects.get(pk=payout.pk).status == "submitted"
    payouts_reconcile(now=timezone.now())  # not due yet: nothing asked
    assert b2c.state.b2c.snapshot()["status"] == 0
    payouts_reconcile(now=timezone.now() + timedelta(seconds=600))
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")


def test_a_worker_that_died_around_its_post_leaves_a_payout_reconciliation_settles(b2c):
    run, _members, finance = approved_run(["0712000100"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    # The worker claimed the payout and POSTed, then died before saving the answer.
    Payout.objects.filter(pk=payout.pk).update(status="sending", submitted_at=timezone.now())
    mpesa.b2c_client().b2c_payment(
        initiator=mpesa.b2c_initiator(),
        originator_conversation_id=payout.originator_conversation_id,
        phone=payout.phone_number,
        amount=payout.amount,
        remarks="Sound Fusion pay",
        result_url="http://127.0.0.1:9/lost",  # the result goes nowhere
        queue_timeout_url="http://127.0.0.1:9/lost",
    )
    assert payout_submit(payout_id=payout.pk) == "sending"  # not claimed again, not resent
    payouts_reconcile(now=timezone.now() + timedelta(seconds=600))
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed")
    assert b2c.state.b2c.snapshot()["b2c_requests_per_id"][payout.originator_conversation_id] == 1


@pytest.mark.parametrize(("phone", "code"), [("0712000001", "1"), ("0712002040", "2040")])
def test_a_refused_payout_fails_with_daraja_s_reason_and_moves_nothing(b2c, phone, code):
    run, [member], finance = approved_run([phone])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "failed")
    payout.refresh_from_db()
    assert payout.result_code == code and payout.receipt_number == ""
    member.profile.refresh_from_db()
    assert member.profile.balance == D("-1500.00")  # still owed to them
    assert not LedgerEntry.objects.filter(kind="payout").exists()


def test_a_result_storm_with_queue_timeouts_pays_each_payout_once(b2c, live_server, settings):
    """100 payouts, each result delivered 10 times from concurrent threads, shuffled with
    queue-timeout bodies: exactly 100 completed, 100 payout ledger rows, no 5xx."""
    phones = [f"07120{n:05d}" for n in range(100, 200)]
    run, members, finance = approved_run(phones)
    payouts = payouts_prepare(pay_run=run, by=finance)
    b2c.state.b2c.callback_delay = 3600  # the simulator's own results never come in this test
    for payout in payouts:
        payout_submit(payout_id=payout.pk)
    from attendance.mpesa.simulator_b2c import b2c_result_body

    bodies = []
    for payout in Payout.objects.all():
        simulated = b2c.state.b2c.payouts[payout.originator_conversation_id]
        bodies += [("result", b2c_result_body(b2c.state.b2c, simulated))] * 10
        bodies.append(
            (
                "timeout",
                {
                    "Result": {
                        "ResultType": 0,
                        "ResultCode": "SVC0001",
                        "ResultDesc": "Queue timeout",
                        "OriginatorConversationID": payout.originator_conversation_id,
                    }
                },
            )
        )
    random.Random(7).shuffle(bodies)
    token = settings.MPESA_B2C_RESULT_TOKEN
    statuses = []
    lock = threading.Lock()

    def post(chunk):
        session = requests.Session()
        for kind, body in chunk:
            response = session.post(f"{live_server.url}/api/payouts/{kind}/{token}/", json=body)
            with lock:
                statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(bodies[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == len(bodies) == 1100
    assert wait_until(lambda: Payout.objects.filter(status="completed").count() == 100, 30)
    assert LedgerEntry.objects.filter(kind="payout").count() == 100
    assert PayoutResult.objects.filter(kind__in=["result", "timeout"]).count() == 1100
    for member in members[:5]:
        member.profile.refresh_from_db()
        assert member.profile.balance == 0


def test_forged_malformed_and_oversized_result_bodies(b2c, live_server, settings):
    token = settings.MPESA_B2C_RESULT_TOKEN
    forged = requests.post(f"{live_server.url}/api/payouts/result/not-the-token/", json={})
    assert forged.status_code == 404 and not PayoutResult.objects.exists()
    assert (
        requests.post(f"{live_server.url}/api/payouts/other/{token}/", json={}).status_code == 404
    )
    malformed = requests.post(f"{live_server.url}/api/payouts/result/{token}/", data=b"{not json")
    assert malformed.status_code == 400
    big = requests.post(
        f"{live_server.url}/api/payouts/result/{token}/",
        data=b"x" * (settings.PAYOUT_MAX_BYTES + 10),
    )
    assert big.status_code == 413
    kept = list(PayoutResult.objects.order_by("pk").values_list("status", "raw_body"))
    assert [status for status, _ in kept] == ["malformed", "malformed"]
    assert kept[0][1] == "{not json" and len(kept[1][1]) == settings.PAYOUT_MAX_BYTES
    unknown = {"Result": {"ResultCode": 0, "OriginatorConversationID": "SF-not-ours"}}
    assert requests.post(f"{live_server.url}/api/payouts/result/{token}/", json=unknown).ok
    assert wait_until(lambda: PayoutResult.objects.filter(status="unmatched").count() == 1)


def test_paying_out_needs_its_permission_and_a_second_factor(b2c, client):
    from django.contrib.auth.models import Permission

    run, _members, _finance = approved_run(["0712000100"])
    url = f"/admin/attendance/payrun/{run.pk}/payout/"
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_payrun"))
    assert log_in_staff(client, viewer).post(url).status_code == 403
    payer = UserFactory(is_staff=True)
    payer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_payrun", "submit_payout"])
    )
    client.force_login(payer)  # a password only: no second factor yet
    assert client.post(url).status_code == 302
    assert not Payout.objects.exists()
    response = log_in_staff(client, payer).post(url)
    assert response.status_code == 302 and "/bulkjob/" in response["Location"]
    assert wait_until(lambda: Payout.objects.filter(status="completed").count() == 1)


def test_a_worker_killed_mid_post_leaves_a_payout_reconciliation_settles_never_paying_twice(
    b2c, settings
):
    """A real process POSTs the payout and is killed (SIGKILL) before Daraja answers: the
    payout stays *sending*; the reconciler asks Transaction Status and completes it."""
    import os
    import signal
    import subprocess
    import sys

    from tests.support.workers import ROOT, database_url_of_this_process

    run, [member], finance = approved_run(["0712000100"])
    [payout] = payouts_prepare(pay_run=run, by=finance)
    b2c.state.b2c.answer_latency = 30  # Daraja takes its time to answer; the money moves
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_this_process(),
        "MPESA_BASE_URL": b2c.url,
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_B2C_INITIATOR_NAME": "sim-initiator",
        "MPESA_B2C_INITIATOR_PASSWORD": PASSWORD,
        "MPESA_B2C_CERTIFICATE": b2c.state.b2c.certificate.decode(),
        "MPESA_B2C_RESULT_URL": "http://127.0.0.1:9/gone",  # its result is lost too
        "MPESA_READ_TIMEOUT": "60",
    }
    code = (
        "import django; django.setup(); "
        "from attendance.services.payouts import payout_submit; "
        f"payout_submit(payout_id={payout.pk})"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "soundfusion_attendance.settings"},
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: b2c.state.b2c.snapshot()["b2c"] == 1, 30)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert Payout.objects.get(pk=payout.pk).status == "sending"
    payouts_reconcile(now=timezone.now() + timedelta(seconds=600))
    assert wait_until(lambda: Payout.objects.get(pk=payout.pk).status == "completed", 15)
    assert b2c.state.b2c.snapshot()["b2c_requests_per_id"] == {payout.originator_conversation_id: 1}
    assert LedgerEntry.objects.filter(kind="payout", user=member).count() == 1


def test_the_pay_run_page_follows_payouts_on_their_way(b2c, client):
    run, _members, finance = approved_run(["0712000003"])  # its result is lost: stays open
    [payout] = payouts_prepare(pay_run=run, by=finance)
    payout_submit(payout_id=payout.pk)
    admin = UserFactory(is_staff=True, is_superuser=True)
    page = log_in_staff(client, admin).get(f"/admin/attendance/payrun/{run.pk}/change/")
    assert b'http-equiv="refresh"' in page.content
    assert b"Submitted, waiting for the result: 1" in page.content
    Payout.objects.filter(pk=payout.pk).update(status="completed")
    page = client.get(f"/admin/attendance/payrun/{run.pk}/change/")
    assert b'http-equiv="refresh"' not in page.content and b"Paid: 1" in page.content
