"""M-Pesa payouts of a 1,000-member pay run against the simulator answering each POST in 300 ms.

The app is served on loopback (a threaded WSGI server, as the test live server) so that the
simulator's results reach it over HTTP; the payouts go through the same background job as
the admin's "Pay out by M-Pesa", paced by MPESA_BULK_CONCURRENCY / MPESA_BULK_PER_SECOND.
Prints: the float check and preparation, the time from the button to every payout submitted
(and the rate the pacing allowed), results processed per second, and duplicates (POSTs per
OriginatorConversationID above one; payout ledger rows above one per payout). Targets: every
payout completed, 0 duplicates, Σ ledger = Σ balances.

`BENCH_PAYOUTS=200` runs a smaller run.
"""

import os
import secrets
import statistics
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal

os.environ.update(
    {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "ERROR",
        "CELERY_TASK_ALWAYS_EAGER": "True",
        "SINGLE_BOX": "True",  # tasks run in this process, on purpose
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_PASS_KEY": "sim-pass-key",
    }
)
from common import Timer, empty_tables, percentile, setup_django

MEMBERS = int(os.environ.get("BENCH_PAYOUTS", "1000"))


def serve_app():
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def approved_run():
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from attendance.models import (
        Attendance,
        CrewRole,
        Event,
        EventCrew,
        LedgerEntry,
        Payout,
        PayoutResult,
        PayRun,
        PayRunLine,
        PayRunMember,
        Profile,
        TimesheetChange,
        TimesheetLine,
    )
    from attendance.services.pay.rules import pay_for
    from attendance.services.pay.runs import pay_run_approve, pay_run_create
    from attendance.services.pay.timesheets import timesheet_approve

    empty_tables(
        PayoutResult,
        Payout,
        PayRunMember,
        PayRunLine,
        PayRun,
        TimesheetChange,
        TimesheetLine,
        EventCrew,
        Attendance,
        LedgerEntry,
        Event,
    )
    Profile.objects.update(balance=0)
    User = get_user_model()
    have = User.objects.filter(username__startswith="payee").count()
    User.objects.bulk_create(
        [
            User(username=f"payee{n:05d}", first_name="Payee", last_name=f"{n:05d}")
            for n in range(have, MEMBERS)
        ]
    )
    users = list(User.objects.filter(username__startswith="payee").order_by("pk")[:MEMBERS])
    for n, user in enumerate(users):
        # Every number ends in 5: none of the simulator's special endings.
        Profile.objects.update_or_create(
            user=user, defaults={"phone_number": f"2547{10_000_000 + n * 10 + 5}"}
        )
    role, _ = CrewRole.objects.get_or_create(name="Stagehand")
    starts = timezone.now() - timedelta(days=2)
    event = Event.objects.create(
        name="Bench payouts festival",
        venue="Nairobi",
        starts_at=starts,
        ends_at=starts + timedelta(hours=8),
        call_time=starts - timedelta(hours=1),
        status=Event.Status.COMPLETED,
    )
    crew = EventCrew.objects.bulk_create(
        [EventCrew(event=event, user=u, role=role, status="completed") for u in users]
    )
    pay = pay_for(
        rates=None, hours=Decimal(8), attendance_status="present", agreed_fee=Decimal(1500)
    )
    TimesheetLine.objects.bulk_create(
        [
            TimesheetLine(
                assignment=a,
                event=event,
                user_id=a.user_id,
                role_name=role.name,
                attendance_status="present",
                hours=Decimal(8),
                rule=pay.rule,
                base_pay=pay.base_pay,
                amount=pay.total,
            )
            for a in crew
        ]
    )
    manager = User.objects.get_or_create(username="bench-manager", defaults={"is_staff": True})[0]
    finance = User.objects.get_or_create(username="bench-finance", defaults={"is_staff": True})[0]
    checker = User.objects.get_or_create(username="bench-checker", defaults={"is_staff": True})[0]
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    day = timezone.localtime(starts).date()
    run = pay_run_create(period_start=day, period_end=day, by=finance)
    with Timer() as approving:
        pay_run_approve(pay_run=run, by=checker)
    print(f"pay run: {MEMBERS:,} members approved in {approving.seconds:.1f} s")
    return PayRun.objects.get(pk=run.pk), finance


def main():
    setup_django(db_suffix="_bench")
    from django.conf import settings
    from django.db.models import Count, Sum

    from attendance import mpesa
    from attendance.models import BulkJob, LedgerEntry, Payout, PayoutResult, Profile
    from attendance.mpesa.simulator import DarajaSimulator
    from attendance.services.jobs.runner import bulk_job_create, bulk_job_run
    from attendance.services.payouts import payouts_prepare

    simulator = DarajaSimulator(callback_delay=0.2).start()
    simulator.state.b2c.answer_latency = 0.3
    simulator.state.b2c.utility_balance = Decimal("5000000.00")  # 1,000 x KES 1,500 fits
    server, url = serve_app()
    settings.MPESA_BASE_URL = simulator.url
    settings.MPESA_B2C_CONSUMER_KEY = "sim-consumer-key"
    settings.MPESA_B2C_CONSUMER_SECRET = "sim-consumer-secret"
    settings.MPESA_B2C_INITIATOR_NAME = simulator.state.b2c.initiator_name
    settings.MPESA_B2C_INITIATOR_PASSWORD = simulator.state.b2c.initiator_password
    settings.MPESA_B2C_CERTIFICATE = simulator.state.b2c.certificate.decode()
    settings.MPESA_B2C_RESULT_URL = f"{url}/api/payouts"
    mpesa._clients.clear()
    mpesa._initiators.clear()
    run, finance = approved_run()
    with Timer() as preparing:
        payouts = payouts_prepare(pay_run=run, by=finance)
    print(
        f"float check and {len(payouts):,} payouts committed: {preparing.seconds:.1f} s "
        f"(pacing: {settings.MPESA_BULK_CONCURRENCY} at once, {settings.MPESA_BULK_PER_SECOND}/s)"
    )
    with Timer() as submitting:
        # Without a broker the job runs as soon as it is created (as in the demo); with one,
        # here.
        job = bulk_job_create(
            kind=BulkJob.Kind.SUBMIT_PAYOUTS,
            by=finance,
            targets=[(p.pk, p.user.username) for p in payouts],
        )
        bulk_job_run(job_id=job.pk)
    submitted = Payout.objects.exclude(status__in=["queued", "sending"]).count()
    print(
        f"all submitted: {submitted:,} in {submitting.seconds:.1f} s "
        f"({submitted / submitting.seconds:.1f} payouts/s, each POST answered in 300 ms)"
    )
    start = time.monotonic()
    deadline = start + 120
    while time.monotonic() < deadline:
        if not Payout.objects.filter(status__in=["queued", "sending", "submitted"]).exists():
            break
        time.sleep(0.2)
    states = dict(Payout.objects.values_list("status").annotate(n=Count("pk")))
    results = PayoutResult.objects.filter(kind="result")
    settle_ms = [
        (done - came).total_seconds() * 1000
        for came, done in results.values_list("received_at", "processed_at")
        if done
    ]
    posts = simulator.state.b2c.snapshot()["b2c_requests_per_id"]
    duplicate_posts = sum(n - 1 for n in posts.values() if n > 1)
    double_entries = (
        LedgerEntry.objects.filter(kind="payout")
        .values("source_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    ledger = LedgerEntry.objects.aggregate(t=Sum("amount"))["t"] or 0
    balances = Profile.objects.aggregate(t=Sum("balance"))["t"] or 0
    print(
        f"results: {len(settle_ms):,} stored and settled, each within p50 "
        f"{statistics.median(settle_ms):.0f} ms / p95 {percentile(settle_ms, 95):.0f} ms of "
        f"arriving (~{1000 / statistics.median(settle_ms):.0f}/s per server thread); "
        f"payouts {states}; "
        f"duplicate POSTs {duplicate_posts}, payouts posted twice {double_entries}; "
        f"Σ ledger {ledger} = Σ balances {balances}"
    )
    server.shutdown()
    simulator.stop()
    ok = states.get("completed") == len(payouts) and duplicate_posts == 0 and not double_entries
    if not ok or ledger != balances:
        sys.exit("FAILED: a target above was missed")


if __name__ == "__main__":
    main()
