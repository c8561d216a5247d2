"""CSV exports: the rows, with spreadsheet formulas neutralised, for a download or a file."""

from __future__ import annotations

import csv
import io
import itertools
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from django.core.files import File
from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from attendance.models import (
    Attendance,
    BulkJob,
    MpesaPayment,
    PayRun,
    PayRunLine,
    PayRunMember,
    member_name,
)

ZERO = Decimal("0.00")

# A spreadsheet runs a cell that starts with one of these as a formula ("CSV injection"):
# names, notes and purposes are typed by people, result descriptions come from Safaricom.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(rows: Iterable[list[Any]]) -> Iterator[str]:
    """Each row as one line of CSV text, cells made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _stamp(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return timezone.localtime(value).strftime(fmt) if value else ""


PAYMENT_CSV_HEADER = [
    "initiated_at",
    "transaction_date",
    "username",
    "name",
    "phone_number",
    "amount",
    "paid_amount",
    "status",
    "receipt_number",
    "purpose",
    "needs_review",
    "review_reason",
    "result_code",
    "result_description",
    "checkout_request_id",
]


def payment_row(p: MpesaPayment) -> list[Any]:
    return [
        _stamp(p.initiated_at),
        _stamp(p.transaction_date),
        p.user.username,
        p.user.get_full_name(),
        p.phone_number,
        p.amount,
        "" if p.paid_amount is None else p.paid_amount,
        p.status,
        p.receipt_number,
        p.payment_purpose,
        "yes" if p.needs_review else "",
        p.review_reason,
        p.result_code,
        p.result_description,
        p.checkout_request_id,
    ]


ATTENDANCE_CSV_HEADER = [
    "event",
    "event_date",
    "client",
    "venue",
    "username",
    "name",
    "call_time",
    "check_in",
    "check_out",
    "status",
    "hours_worked",
    "check_in_method",
    "notes",
]


def attendance_row(a: Attendance) -> list[Any]:
    return [
        a.event.name,
        _stamp(a.event.starts_at, "%Y-%m-%d"),
        a.event.client,
        a.event.venue,
        a.user.username,
        a.user.get_full_name(),
        _stamp(a.expected_call_time, "%Y-%m-%d %H:%M"),
        _stamp(a.check_in_at, "%Y-%m-%d %H:%M"),
        _stamp(a.check_out_at, "%Y-%m-%d %H:%M"),
        a.status,
        a.hours_worked if a.hours_worked is not None else "",
        a.check_in_method,
        a.notes,
    ]


def rows_for_ids(
    queryset: QuerySet, ids: list[int], row: Callable[[Any], list[Any]], header: list[str]
) -> Iterator[list[Any]]:
    """The header, then `row(obj)` for every id, in id order, a few thousand ids a query (an
    IN list of 200,000 ids is slow to even parse)."""
    yield header
    ordered = sorted(ids)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        yield from (row(obj) for obj in queryset.filter(pk__in=chunk).order_by("pk"))


def export_to_job_file(
    job: BulkJob, rows: Iterable[list[Any]], filename: str, progress: Callable[[int], None]
) -> None:
    """Write `rows` (header first) to the job's file as CSV, reporting progress every 2,000
    rows."""

    def write(target: IO[bytes]) -> int:
        written = -1  # the header is not a row
        for line in csv_lines(rows):
            target.write(line.encode())
            written += 1
            if written and written % 2000 == 0:
                progress(written)
        return max(written, 0)

    write_job_file(job, filename, write)


def write_job_file(job: BulkJob, filename: str, write: Callable[[IO[bytes]], int]) -> None:
    """`write(target)` (it returns the rows written) into the job's file, in the configured
    storage: the local disk on one box, object storage shared by every node on several.

    Written to a temporary file first, so a job stopped halfway leaves no half file behind;
    running it again writes the whole file again.
    """
    with tempfile.TemporaryFile(mode="w+b") as temporary:
        written = write(temporary)
        temporary.seek(0)
        job.file.save(filename, File(temporary), save=False)
    # A whole-file job learns its row count only now: the page then reads "12 of 12".
    BulkJob.objects.filter(pk=job.pk).update(
        file=job.file.name, done=written, total=max(job.total, written)
    )


PAYROLL_HEADER = [
    "member",
    "phone",
    "role",
    "event",
    "date",
    "hours",
    "rate",
    "overtime_hours",
    "overtime_pay",
    "allowances",
    "gross",
    "statutory_deductions",
    "net",
    "set_against_owed",
    "to_pay",
    "employer_cost",
]


def payroll_rows(pay_run: PayRun) -> Iterator[list[Any]]:
    """The pay run's lines, one row each, so the columns add up: gross to the run's total,
    to-pay to what it pays out. Statutory deductions and employer costs are each line's share
    of the member's (split by pay at approval); what the member owed, set against their net
    at approval, is taken from their lines in order. A draft has none of these yet.
    """
    members = {m.user_id: m for m in PayRunMember.objects.filter(pay_run=pay_run)}
    left_to_deduct = {user_id: m.deducted for user_id, m in members.items()}
    lines = PayRunLine.objects.filter(pay_run=pay_run)
    order = ("user__first_name", "user__last_name", "user_id", "line__event__starts_at", "pk")
    # The ids in order first (numbers only), then the rows a chunk at a time: no server-side
    # cursor, so it streams behind PgBouncer's transaction pooling too, where
    # DISABLE_SERVER_SIDE_CURSORS would make .iterator() fetch everything at once.
    ids = list(lines.order_by(*order).values_list("pk", flat=True))
    for row in _in_order(lines.select_related("line__event", "user__profile"), ids):
        line = row.line
        net = row.amount - row.withheld
        deduction = min(left_to_deduct.get(row.user_id, ZERO), max(net, ZERO))
        left_to_deduct[row.user_id] = left_to_deduct.get(row.user_id, ZERO) - deduction
        profile = getattr(row.user, "profile", None)
        yield [
            member_name(row.user),
            profile.phone_number if profile else "",
            line.role_name,
            line.event.name,
            timezone.localtime(line.event.starts_at).date(),
            line.hours,
            ("Correction: " if row.is_correction else "") + line.rule,
            line.overtime_hours,
            line.overtime_pay if not row.is_correction else ZERO,
            line.allowances if not row.is_correction else ZERO,
            row.amount,
            row.withheld,
            net,
            deduction,
            net - deduction,
            row.employer_cost,
        ]


def _in_order(queryset: QuerySet, ids: list[int], size: int = 2000) -> Iterator[Any]:
    """The rows of `ids`, in that order, `size` a query."""
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        found = queryset.in_bulk(chunk)
        yield from (found[pk] for pk in chunk if pk in found)


def payroll_csv(pay_run: PayRun) -> Iterator[str]:
    return csv_lines(itertools.chain([PAYROLL_HEADER], payroll_rows(pay_run)))


def payroll_xlsx(pay_run: PayRun, target: IO[bytes]) -> int:
    """The payroll as a spreadsheet, written row by row (openpyxl's write-only mode), so a
    festival's thousands of lines never sit in memory together."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title="Payroll")
    header = []
    for name in PAYROLL_HEADER:
        cell = WriteOnlyCell(sheet, value=name.replace("_", " ").capitalize())
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    # Every column from overtime pay on is money.
    money_columns = set(range(PAYROLL_HEADER.index("overtime_pay"), len(PAYROLL_HEADER)))
    count = 0
    for values in payroll_rows(pay_run):
        cells = []
        for index, value in enumerate(values):
            cell = WriteOnlyCell(sheet, value=safe_cell(value))
            if index in money_columns:
                cell.number_format = "#,##0.00"
            cells.append(cell)
        sheet.append(cells)
        count += 1
    last = count + 1
    totals = ["Total"] + [""] * (len(PAYROLL_HEADER) - 1)
    for index in money_columns:
        column = chr(ord("A") + index)
        totals[index] = f"=SUM({column}2:{column}{last})"
    sheet.append(totals)
    book.save(target)
    return count
