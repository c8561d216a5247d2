"""Several nodes on one machine (issue 30): what a second web node and a second worker change.

1. STK callbacks a second through nginx, to one web node and to two (each node: gunicorn with 2
   workers, started by the entrypoint in production settings), wrk with 50 connections,
   alternating rounds. This machine has 2 cores that also run PostgreSQL, Redis, nginx and
   wrk: a second node here adds processes, not cores, so the figure shows the balancer
   spreading callbacks over both nodes with nothing lost, not what a second machine adds.
2. A 100-member bulk prompt job with 1 and with 2 background workers, the deployment's Daraja
   rate fixed at 10 calls a second (each job paced at 50 a second, 4 at a time): the rate, not
   the workers, must be the limit, so both take about 10 s, and the simulator's log never shows
   more than 10 pushes in a second.

Run: cd bench && ../.venv/bin/python bench_multi_node.py
"""

import os
import statistics
import sys
import time
from decimal import Decimal

from bench_mpesa_callbacks import load_wrk
from common import ROOT, empty_tables, setup_django

ROUNDS, SECONDS, RATE = 3, 5, 10


def busiest_second(times):
    times, most, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def main():
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "False"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = "default"
    db_url = setup_django()
    sys.path.insert(0, str(ROOT))
    import redis
    import requests
    from django.conf import settings
    from django.contrib.auth.models import Permission

    from attendance.models import BulkJob, MpesaCallback, MpesaPayment
    from attendance.mpesa.simulator import SANDBOX_PASSKEY, DarajaSimulator
    from attendance.services.jobs.runner import bulk_job_create
    from attendance.services.ledger import ledger_post
    from tests.support.cluster import Cluster
    from tests.support.factories import PaymentFactory, UserFactory
    from tests.support.mpesa_wire import success_callback
    from tests.support.servers import Nginx

    empty_tables(MpesaCallback, MpesaPayment, BulkJob)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    daraja = DarajaSimulator(callback_delay=0.2).start()
    cluster = Cluster(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": os.environ["REDIS_URL"],
            "SECRET_KEY": "bench-" + "k" * 60,
            "MPESA_CALLBACK_TOKEN": settings.MPESA_CALLBACK_TOKEN,
            "MPESA_BASE_URL": daraja.url,
            "MPESA_CONSUMER_KEY": daraja.state.consumer_key,
            "MPESA_CONSUMER_SECRET": daraja.state.consumer_secret,
            "MPESA_BUSINESS_SHORT_CODE": "174379",
            "MPESA_PASS_KEY": SANDBOX_PASSKEY,
            "DARAJA_RATE_PER_SECOND": str(RATE),
            "MPESA_BULK_PER_SECOND": "50",
        }
    )
    cluster.env["MPESA_CALLBACK_URL"] = f"{cluster.url}/api/payments/callback"
    one_node = None
    try:
        cluster.start_web(count=2, concurrency=2)
        cluster.start_worker("money", concurrency=2)
        one_node = Nginx(cluster.ports[0])  # the same nginx set-up, one node behind it

        # --- 1. callbacks through nginx to one node and to two ---------------------------
        payer = UserFactory(username="bench-multi-payer")
        payments = [
            PaymentFactory(user=payer, phone_number=f"2547450{n:05d}", amount=100)
            for n in range(3000)
        ]
        bodies = [
            success_callback(p.checkout_request_id, amount=100, receipt=f"MNB{n:07d}")
            for n, p in enumerate(payments)
        ]
        path = f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"
        two_nodes_port = cluster.nginx.port
        for port in (one_node.port, two_nodes_port):  # each gunicorn worker loads the app
            load_wrk(port, path, bodies, 2)
        time.sleep(1)  # what the warm-up left in flight is stored before the count
        before = MpesaCallback.objects.count()
        rounds, share = [], [0, 0]
        for _ in range(ROUNDS):
            one = load_wrk(one_node.port, path, bodies, SECONDS)
            served = [cluster.access_log(n).count(" 200 ") for n in (0, 1)]
            two = load_wrk(two_nodes_port, path, bodies, SECONDS)
            for n in (0, 1):
                share[n] += cluster.access_log(n).count(" 200 ") - served[n]
            rounds.append((one, two))
        time.sleep(1)
        answered = sum(a["requests"] + b["requests"] for a, b in rounds)
        stored = MpesaCallback.objects.count() - before
        for n, (one, two) in enumerate(rounds, start=1):
            print(
                f"round {n}: 1 node {one['rate']:6.0f} callbacks/s (p99 {one['p99']:.0f} ms, "
                f"errors {one['errors']}); 2 nodes {two['rate']:6.0f}/s "
                f"(p99 {two['p99']:.0f} ms, errors {two['errors']}); ratio "
                f"{two['rate'] / one['rate']:.2f}"
            )
        ratio = statistics.median(two["rate"] / one["rate"] for one, two in rounds)
        print(f"median ratio 2 nodes / 1 node: {ratio:.2f} (same 2 cores: see the docstring)")
        # wrk stops with requests in flight: those are stored but not counted as answered.
        print(
            f"callbacks stored {stored} >= {answered} answered (nothing lost: "
            f"{'yes' if stored >= answered else 'NO'}); in the two-node rounds node A served "
            f"{share[0]}, node B {share[1]}"
        )

        # --- 2. bulk prompts with 1 and 2 workers at a fixed Daraja rate -----------------
        finance = UserFactory(is_staff=True, username="bench-multi-finance")
        finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
        from soundfusion_attendance.celery import app

        app.conf.task_always_eager = False
        results = []
        for workers, block in ((1, 0), (2, 1)):
            started_workers = [
                cluster.start_worker("background", concurrency=1) for _ in range(workers)
            ]
            members = []
            for n in range(100):
                member = UserFactory(profile__phone_number=f"07146{block}{6000 + n:04d}")
                ledger_post(user=member, kind="charge", amount=Decimal("200"), description="x")
                members.append(member)
            requests.post(f"{daraja.url}/simulator/reset", timeout=5)
            begun = time.monotonic()
            job = bulk_job_create(
                kind=BulkJob.Kind.PROMPT_PAYMENTS,
                by=finance,
                targets=[(m.profile.pk, m.username) for m in members],
                params={"amount": None, "purpose": "Balance payment"},
            )
            while not BulkJob.objects.get(pk=job.pk).is_finished:
                time.sleep(0.1)
                if time.monotonic() - begun > 120:
                    raise SystemExit("the job did not finish:\n" + cluster.logs())
            took = time.monotonic() - begun
            calls = requests.get(f"{daraja.url}/simulator/log", timeout=5).json()["calls"]
            pushes = [at for at, p in calls if p == "/mpesa/stkpush/v1/processrequest"]
            job.refresh_from_db()
            results.append((workers, took, len(pushes), busiest_second(pushes), job.done))
            for process in started_workers:
                process.stop()
                cluster.processes.remove(process)
        for workers, took, pushes, busiest, done in results:
            print(
                f"bulk prompts, {workers} worker(s) at {RATE}/s: {done} done, {pushes} pushes "
                f"in {took:.1f} s ({pushes / took:.1f}/s), busiest second {busiest}"
            )
        print(f"target: both near {RATE}/s and no second above {RATE}")
    finally:
        if one_node is not None:
            one_node.stop()
        cluster.stop()
        daraja.stop()
        empty_tables(MpesaCallback, MpesaPayment, BulkJob)


if __name__ == "__main__":
    main()
