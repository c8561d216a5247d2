"""Crew pay at a year of a busy company: admin and portal pages, and a month's pay run.

Builds (once, then reuses) `<db>_pay`: the demo plus 2,000 members and 3,000 past events of
eight crew each, so 24,000 timesheet lines over a year, approved and waiting for pay runs.
Then prints:

- p50 / p95 and the query count of the timesheet-line admin list (plain, filtered by status,
  by month, a name searched, one event) and of the pay run page, and of a member's My pay
  page, with production settings. Target: admin p95 < 300 ms, portal < 100 ms.
- a pay run of one month (about 2,000 lines): drawing it up, the Approve request (checks, then
  the run is frozen: target < 1 s), the background job that posts every earning, each
  member's statutory deductions and payslip (members a second; target: inside the 300 s task
  limit), and its payroll as XLSX and CSV with the memory they took (write-only mode: flat);
- that month's statutory returns (P10 CSV, SHIF, NSSF, housing levy and withholding XLSX), each
  file's time and peak memory, and 1,250 payslips as PDFs (`BENCH_PDFS`), in total and each.

`BENCH_SCALE=0.1` builds a tenth.
"""

import os
import secrets
import sys
import tracemalloc
from datetime import timedelta

os.environ.update(
    {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "ERROR",
        "CELERY_TASK_DEFAULT_QUEUE": "bench-pay",
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_PASS_KEY": "sim-pass-key",
    }
)
from common import Timer, log_in_staff, setup_django, time_pages

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
MEMBERS = max(int(2_000 * SCALE), 50)
PDFS = int(os.environ.get("BENCH_PDFS", "1250"))
EVENTS = max(int(3_000 * SCALE), 20)
RUNS = 12


def build():
    from django.core.management import call_command
    from django.db import connection

    from attendance.models import TimesheetLine

    have = TimesheetLine.objects.count()
    if have >= EVENTS * 8:
        print(f"data set: reused ({have:,} timesheet lines)")
        return
    with Timer() as t:
        call_command("seed_demo", crew=MEMBERS, events=EVENTS, quiet=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"data set: built in {t.seconds:.0f} s ({TimesheetLine.objects.count():,} timesheet "
        f"lines, {MEMBERS:,} members, {EVENTS:,} events)"
    )


def month_run(admin, finance):
    from django.db.models import Count
    from django.utils import timezone

    from attendance.models import EmailNotification, LedgerEntry, PayRun, TimesheetLine
    from attendance.services.jobs.exports import payroll_csv, payroll_xlsx
    from attendance.services.pay.runs import (
        pay_run_approve_member,
        pay_run_begin_approval,
        pay_run_create,
    )

    PayRun.objects.filter(status="draft").delete()
    # The busiest month of the year that is not paid yet.
    months = (
        TimesheetLine.objects.filter(status="approved")
        .values("event__starts_at__year", "event__starts_at__month")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    if not months:
        sys.exit("no approved lines left to pay: drop the _pay database to build it again")
    month = months[0]
    first = timezone.datetime(month["event__starts_at__year"], month["event__starts_at__month"], 1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    with Timer() as drawn:
        run = pay_run_create(period_start=first.date(), period_end=last.date(), by=finance)
    lines = run.lines.count()
    emails_before = EmailNotification.objects.count()
    entries_before = LedgerEntry.objects.count()
    earnings_before = LedgerEntry.objects.exclude(kind=LedgerEntry.Kind.DEDUCTION).count()
    # What the admin's Approve button does in its request, then what its background job does.
    with Timer() as begun:
        members = pay_run_begin_approval(pay_run=run, by=admin)
    with Timer() as approved:
        for user_id, _name in members:
            pay_run_approve_member(pay_run=run, user_id=user_id, by=admin)
    run.refresh_from_db()
    posted = LedgerEntry.objects.count() - entries_before
    # One entry per line (earning or correction); the statutory deductions besides.
    earned = LedgerEntry.objects.exclude(kind=LedgerEntry.Kind.DEDUCTION).count() - earnings_before
    emails = EmailNotification.objects.count() - emails_before
    print(
        f"pay run of {first:%b %Y}: {lines:,} lines, {len(members):,} members; drawn up in "
        f"{drawn.seconds * 1000:.0f} ms; Approve (the request) {begun.seconds * 1000:.0f} ms; "
        f"the job posted {posted:,} ledger entries ({earned:,} earnings, the rest statutory "
        f"deductions) and {emails:,} payslips in "
        f"{approved.seconds:.1f} s ({len(members) / approved.seconds:.0f} members/s), "
        f"run {run.status}"
    )
    tracemalloc.start()
    with Timer() as xlsx, open(os.devnull, "wb") as sink:
        payroll_xlsx(run, sink)
    _, xlsx_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with Timer() as csv:
        size = sum(len(line) for line in payroll_csv(run))
    _, csv_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"payroll XLSX: {xlsx.seconds * 1000:.0f} ms, peak {xlsx_peak / 2**20:.1f} MiB; "
        f"CSV: {csv.seconds * 1000:.0f} ms, {size / 1024:.0f} KiB, peak {csv_peak / 2**20:.1f} MiB"
    )
    ok = begun.seconds < 1 and run.status == "approved" and earned == lines
    ok &= emails == len(members) and approved.seconds < 300  # inside the task time limit
    return ok, run


def returns_and_pdfs(run):
    """The month's returns (each file's time and peak memory) and payslips as PDFs."""

    from attendance.services.jobs.returns import p10_csv, schedule_xlsx
    from attendance.services.pay.payslip_documents import payslip_pdf

    month = run.pay_month
    parts = []
    for name in ("p10", "shif", "nssf", "ahl", "wht"):
        tracemalloc.start()
        with Timer() as took:
            if name == "p10":
                rows = sum(1 for _ in p10_csv(month))
            else:
                with open(os.devnull, "wb") as sink:
                    rows = schedule_xlsx(name, month, sink)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        parts.append(f"{name} {rows:,} rows {took.seconds * 1000:.0f} ms, {peak / 2**20:.1f} MiB")
    print(f"returns of {month:%b %Y}: " + "; ".join(parts))
    slips = list(run.members.select_related("user", "pay_run")[:PDFS])
    times = []
    with Timer() as all_pdfs:
        for member in slips:
            with Timer() as one:
                pdf = payslip_pdf(member)
            assert pdf.startswith(b"%PDF")
            times.append(one.seconds)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1] if times else 0
    print(
        f"payslip PDFs: {len(slips):,} in {all_pdfs.seconds:.1f} s on one process "
        f"(p50 {times[len(times) // 2] * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms each)"
    )
    return all_pdfs.seconds < 600


def main():
    setup_django(db_suffix="_pay")
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from attendance.models import TimesheetLine

    call_command("collectstatic", interactive=False, verbosity=0)
    build()
    User = get_user_model()
    admin = User.objects.get(username="admin")
    finance = User.objects.get(username="finance")
    ok, run = month_run(admin, finance)
    ok &= returns_and_pdfs(run)
    client = Client()
    log_in_staff(client, admin)
    line = TimesheetLine.objects.select_related("user", "event").order_by("-pk").first()
    month = (timezone.localdate() - timedelta(days=150)).strftime("%Y-%m")
    t = "/admin/attendance/timesheetline/"
    print(f"\n{'page':44} (each loaded {RUNS} times after a first, counted, load)")
    ok &= time_pages(
        client,
        [
            ("timesheet lines", t, 300),
            ("timesheet lines: approved", t + "?status__exact=approved", 300),
            ("timesheet lines: one month", t + f"?month={month}", 300),
            ("timesheet lines: search a name", t + f"?q={line.user.last_name}", 300),
            ("timesheet lines: one event", t + f"?event={line.event_id}", 300),
            (
                f"pay run page ({run.lines.count():,} lines)",
                f"/admin/attendance/payrun/{run.pk}/change/",
                300,
            ),
        ],
    )
    portal = Client()
    portal.force_login(run.members.select_related("user").first().user)
    print()
    ok &= time_pages(
        portal,
        [("portal: my pay", "/pay/", 100), ("portal: payslip", f"/pay/runs/{run.pk}/", 100)],
    )
    if not ok:
        sys.exit("FAILED: a target above was missed")


if __name__ == "__main__":
    main()
