"""Paybill payments (C2B) and the statement, on gunicorn + PostgreSQL.

1. The confirmation endpoint against a bare Django JSON view (`/api/health/`) on the same
   server in the same run, closed loop, alternating rounds. Target (the issue's): at least 0.5
   of the bare view's throughput, every confirmation stored, no errors. A confirmation costs
   the bare view plus one committed INSERT (half a millisecond of PostgreSQL's time, on the
   same two cores here), as an STK callback does (bench_mpesa_callbacks.py).
2. Importing a statement of 100,000 rows (CSV as the org portal exports it), then the same file
   again, each in a fresh process. Targets: under a minute; flat memory (twice the rows of the
   half file raises the peak resident memory by less than 32 MB); the second import adds
   nothing.
3. The reconciliation page for a month, at a year of data (200,000 prompts, 100,000 Paybill
   payments, 20,000 payouts, the 100,000 statement rows). Target: p95 under 300 ms.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench_mpesa_callbacks import load_python, load_wrk
from common import BASE_DB, Gunicorn, Timer, empty_tables, log_in_staff, setup_django, time_pages

ROUNDS, SECONDS = 5, 5
STATEMENT_ROWS = 100_000


def confirmation_bodies(n):
    from tests.support.mpesa_wire import paybill_body

    return [paybill_body(f"SBC{i:07d}", amount="500.00", account="SF0000000") for i in range(n)]


def throughput(db_url):
    from django.conf import settings

    from attendance.models import PaybillNotice, PaybillPayment

    empty_tables(PaybillNotice, PaybillPayment)
    bodies = confirmation_bodies(5000)
    path = f"/api/paybill/confirmation/{settings.MPESA_C2B_TOKEN}/"
    env = {
        "CELERY_TASK_DEFAULT_QUEUE": "bench-paybill",
        "MPESA_C2B_TOKEN": settings.MPESA_C2B_TOKEN,
    }
    with Gunicorn(db_url, **env) as server:
        port = server.port
        run = load_wrk if shutil.which("wrk") else load_python
        print(f"load generator: {'wrk' if run is load_wrk else 'python threads (install wrk)'}")
        run(port, "/api/health/", None, 1)
        run(port, path, bodies, 1)
        time.sleep(0.5)
        warm = PaybillNotice.objects.count()
        rounds = [
            (run(port, "/api/health/", None, SECONDS), run(port, path, bodies, SECONDS))
            for _ in range(ROUNDS)
        ]
        time.sleep(0.5)
    stored = PaybillNotice.objects.count() - warm
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).delete("bench-paybill")
    empty_tables(PaybillNotice, PaybillPayment)
    ratios = []
    for n, (bare, c2b) in enumerate(rounds, start=1):
        ratios.append(c2b["rate"] / bare["rate"])
        print(
            f"round {n}: bare {bare['rate']:6.0f} req/s, confirmation {c2b['rate']:6.0f} req/s "
            f"(p99 {c2b['p99']:.1f} ms, errors {c2b['errors']}), ratio {ratios[-1]:.2f}"
        )
    answered = sum(c2b["requests"] for _, c2b in rounds)
    errors = sum(c2b["errors"] for _, c2b in rounds)
    ratio = statistics.median(ratios)
    print(f"confirmations stored: {stored} of {answered} answered; errors {errors}")
    print(f"median ratio confirmation/bare: {ratio:.2f} (target >= 0.50)")
    return ratio >= 0.5 and not errors and stored >= answered


def statement_file(rows, start):
    """A statement in the portal's shape: prompts' and Paybill receipts in, payouts out with
    their charges, a few settlements; receipts follow the year of data below."""
    from attendance.mpesa.statement import write_statement

    def lines():
        for n in range(rows):
            at = (start + timedelta(seconds=n * 300)).strftime("%Y-%m-%d %H:%M:%S")
            kind = n % 10
            if kind < 6:
                yield {
                    "Receipt No.": f"SBS{n:07d}",
                    "Completion Time": at,
                    "Details": "Pay Bill Online",
                    "Transaction Status": "Completed",
                    "Paid In": "500.00",
                    "Reason Type": "Pay Bill Online",
                }
            elif kind < 9:
                yield {
                    "Receipt No.": f"SBP{n:07d}",
                    "Completion Time": at,
                    "Details": "Pay Bill from 2547***111 Acc. SF",
                    "Transaction Status": "Completed",
                    "Paid In": "1,200.00",
                    "A/C No.": "SF0000000",
                }
            else:
                yield {
                    "Receipt No.": f"SBO{n:07d}",
                    "Completion Time": at,
                    "Details": "Business Payment to 2547***111 - JANE",
                    "Transaction Status": "Completed",
                    "Withdrawn": "-3,000.00",
                    "Reason Type": "Business Payment",
                }

    return write_statement(lines(), short_code="174379", holder="SOUND FUSION LTD").encode()


def import_in_a_process(path, name):
    """Import one file in a fresh process: its time, and its peak resident memory (flat
    memory: the same peak for half the rows and for all of them)."""
    out = subprocess.run(
        [sys.executable, __file__, "--import", str(path), name],
        capture_output=True,
        text=True,
        check=True,
        # The child sets itself up from the base database's URL, as this process did.
        env={**os.environ, "DATABASE_URL": BASE_DB},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def import_here(path, name):
    """The child's side: set up, measure the baseline, import, report as JSON."""
    import resource

    setup_django()
    from django.contrib.auth.models import User

    from attendance.services.payments.statement import statement_import

    staff = User.objects.get(username="bench-reconciler")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(path, "rb") as file, Timer() as timer:
        done = statement_import(file=file, name=name, by=staff)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": timer.seconds,
                "rows_read": done.statement.rows_read,
                "rows_new": done.statement.rows_new,
                "baseline_mb": before,
                "peak_mb": peak,
            }
        )
    )


def statement_import_bench(start):
    from attendance.models import StatementImport, StatementRow

    folder = Path(tempfile.mkdtemp())
    half, full = folder / "half.csv", folder / "year.csv"
    half.write_bytes(statement_file(STATEMENT_ROWS // 2, start))
    full.write_bytes(statement_file(STATEMENT_ROWS, start))
    print(
        f"statement files: {half.stat().st_size / 1e6:.1f} MB ({STATEMENT_ROWS // 2} rows), "
        f"{full.stat().st_size / 1e6:.1f} MB ({STATEMENT_ROWS} rows)"
    )
    empty_tables(StatementRow, StatementImport)
    small = import_in_a_process(half, "half.csv")
    empty_tables(StatementRow, StatementImport)
    big = import_in_a_process(full, "year.csv")
    again = import_in_a_process(full, "year (again).csv")
    shutil.rmtree(folder)
    for what, r in (("half", small), ("year", big), ("year again", again)):
        print(
            f"import {what}: {r['rows_read']} rows read, {r['rows_new']} new, "
            f"{r['seconds']:.1f} s, peak memory {r['peak_mb']:.0f} MB "
            f"({r['peak_mb'] - r['baseline_mb']:+.0f} MB over the process's start)"
        )
    growth = (big["peak_mb"] - big["baseline_mb"]) - (small["peak_mb"] - small["baseline_mb"])
    print(
        f"100,000 rows in {big['seconds']:.1f} s (target < 60 s); memory for twice the rows "
        f"{growth:+.0f} MB (target < 32 MB: flat); the same file again adds "
        f"{again['rows_new']} (target 0)"
    )
    return (
        big["seconds"] < 60
        and growth < 32
        and again["rows_new"] == 0
        and big["rows_new"] == STATEMENT_ROWS
    )


def year_of_books(start):
    """200,000 prompts, 100,000 Paybill payments, 20,000 payouts over the year, by SQL."""
    from django.db import connection

    from attendance.models import MpesaPayment, PaybillPayment, Payout, PayRun, PayRunMember
    from tests.support.factories import UserFactory

    empty_tables(Payout, PayRunMember, PayRun, PaybillPayment, MpesaPayment)
    members = [UserFactory(username=f"bench-rec-{n}") for n in range(400)]
    ids = [m.pk for m in members]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {MpesaPayment._meta.db_table}
            (user_id, requested_by_id, phone_number, amount, payment_purpose, account_reference,
             transaction_desc, checkout_request_id, merchant_request_id, status, receipt_number,
             paid_phone_number, result_code, result_description, settled_via, initiated_at,
             transaction_date, query_count, needs_review, review_reason, request_fingerprint,
             updated_at)
            SELECT (%s::int[])[1 + n %% 400], NULL,
             '2547' || lpad((n %% 100000000)::text, 8, '0'), 500,
             'Balance', 'SF', 'Balance', 'ws_CO_BR' || n, 'm' || n,
             CASE WHEN n %% 10 < 8 THEN 'completed' ELSE 'failed' END,
             CASE WHEN n %% 10 < 8 THEN 'SBS' || lpad(n::text, 7, '0') ELSE '' END, '',
             '0', 'ok', 'callback', %s + (n * interval '157 seconds'),
             %s + (n * interval '157 seconds'),
             0, false, '', '', now()
            FROM generate_series(0, 199999) AS n""",
            [ids, start, start],
        )
        cursor.execute(
            f"""INSERT INTO {PaybillPayment._meta.db_table}
            (receipt, transaction_type, paid_at, amount, short_code, bill_ref, msisdn, payer_name,
             source, status, detail, user_id, attributed_by, received_at)
            SELECT 'SBP' || lpad(n::text, 7, '0'), 'Pay Bill',
             %s + (n * interval '315 seconds'), 1200,
             '174379', 'SF0000000', '2547 ***** 111', 'PAYER', 'confirmation',
             CASE WHEN n %% 50 = 0 THEN 'unattributed' ELSE 'credited' END, '',
             CASE WHEN n %% 50 = 0 THEN NULL ELSE (%s::int[])[1 + n %% 400] END, 'code', now()
            FROM generate_series(0, 99999) AS n""",
            [start, ids],
        )
    runs = [
        PayRun.objects.create(
            period_start=start.date() + timedelta(days=7 * w),
            period_end=start.date() + timedelta(days=7 * w),
        )
        for w in range(50)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {PayRunMember._meta.db_table}
            (pay_run_id, user_id, earned, balance_before, balance_after, deducted, to_pay)
            SELECT r, u, 3000, 0, 0, 0, 3000 FROM unnest(%s::int[]) AS r,
             unnest(%s::int[]) AS u""",
            [[r.pk for r in runs], ids],
        )
        cursor.execute(
            f"""INSERT INTO {Payout._meta.db_table}
            (pay_run_id, payslip_id, user_id, phone_number, amount, status, receipt_number,
             paid_at, originator_conversation_id, conversation_id, result_code, result_description,
             receiver_name, needs_review, review_reason, status_checks, sends, created_at,
             updated_at)
            SELECT m.pay_run_id, m.id, m.user_id, '254700000000', 3000, 'completed',
             'SBO' || lpad(m.id::text, 7, '0'), %s + (m.id * interval '1570 seconds'),
             'sf-bench-' || m.id, '', '0', 'paid', '', false, '', 0, 1, now(), now()
            FROM {PayRunMember._meta.db_table} m""",
            [start],
        )
        cursor.execute("ANALYZE")
    print(
        f"a year of books: {MpesaPayment.objects.count()} prompts, "
        f"{PaybillPayment.objects.count()} Paybill payments, {Payout.objects.count()} payouts"
    )


def main():
    db_url = setup_django()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    ok = throughput(db_url)
    staff, _ = User.objects.get_or_create(
        username="bench-reconciler", defaults={"is_staff": True, "is_superuser": True}
    )
    start = datetime(2026, 1, 1, tzinfo=timezone.get_current_timezone())
    year_of_books(start)
    ok = statement_import_bench(start) and ok
    client = log_in_staff(Client(), staff)
    month = "/admin/attendance/statementimport/reconcile/?start=2026-03-01&end=2026-03-31"
    year = "/admin/attendance/statementimport/reconcile/?start=2026-01-01&end=2026-12-31"
    ok = (
        time_pages(
            client,
            [
                ("reconciliation, one month", month, 300),
                ("reconciliation, the whole year", year, 1500),
            ],
        )
        and ok
    )
    if not ok:
        sys.exit("FAILED")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--import"]:
        import_here(sys.argv[2], sys.argv[3])
    else:
        main()
