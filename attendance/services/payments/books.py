"""Our books against M-Pesa: the reconciliation page's figures for a period, and the daily check
that compares what the app knows with what Pull Transactions and payout results say.

For a period (Kenyan days, end exclusive):
- **matched**: statement rows whose receipt our books hold, amounts equal;
- **in the statement only**: money in or out that our books never recorded (a lost
  confirmation beyond Pull's reach, a payslip paid twice by M-Pesa while we show one payout);
- **in our books only**: money we think moved, whose receipt is on no imported statement;
- **amount mismatches**: the same receipt, another amount;
- **totals**: money in and payouts, as the statement and as our books say; they agree when the
  three lists above are empty. Charges and other movements (bank settlements) are shown apart:
  our books do not hold them.

Every figure is one aggregate query on indexed columns; lists are capped (LIST_LIMIT), with
their full counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Count, DecimalField, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from attendance.models import (
    MpesaPayment,
    PaybillPayment,
    Payout,
    Reversal,
    StatementImport,
    StatementRow,
)

from .statement import unmatched_in

K = StatementRow.Kind
LIST_LIMIT = 100
ZERO = Decimal("0.00")


@dataclass
class Figures:
    count: int = 0
    total: Decimal = ZERO


@dataclass
class BooksOnly:
    what: str  # "M-Pesa prompt", "Paybill payment", "Payout"
    pk: int
    receipt: str
    amount: Decimal
    when: datetime | None
    admin: str  # the admin page's model name


@dataclass
class Reconciliation:
    start: date
    end: date  # inclusive, as people say it
    statement_rows: int = 0
    statement_in: Figures = field(default_factory=Figures)
    statement_payouts: Figures = field(default_factory=Figures)
    statement_charges: Figures = field(default_factory=Figures)
    statement_reversals: Figures = field(default_factory=Figures)
    statement_other_in: Figures = field(default_factory=Figures)
    statement_other_out: Figures = field(default_factory=Figures)
    books_in: Figures = field(default_factory=Figures)
    books_payouts: Figures = field(default_factory=Figures)
    books_reversals: Figures = field(default_factory=Figures)
    matched: Figures = field(default_factory=Figures)
    statement_only: Figures = field(default_factory=Figures)
    statement_only_rows: list[StatementRow] = field(default_factory=list)
    books_only: Figures = field(default_factory=Figures)
    books_only_rows: list[BooksOnly] = field(default_factory=list)
    mismatched: Figures = field(default_factory=Figures)
    mismatched_rows: list[StatementRow] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return (
            self.statement_in.total == self.books_in.total
            and self.statement_payouts.total == self.books_payouts.total
            and self.statement_reversals.total == self.books_reversals.total
            and not (self.statement_only.count or self.books_only.count or self.mismatched.count)
        )

    @property
    def in_difference(self) -> Decimal:
        return self.statement_in.total - self.books_in.total

    @property
    def reversals_difference(self) -> Decimal:
        return self.statement_reversals.total - self.books_reversals.total

    @property
    def payouts_difference(self) -> Decimal:
        return self.statement_payouts.total - self.books_payouts.total


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in Kenyan time."""
    zone = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _figures(rows: QuerySet[Any], amount: str) -> Figures:
    money: DecimalField = DecimalField(max_digits=16, decimal_places=2)
    found = rows.aggregate(
        count=Count("pk"), total=Coalesce(Sum(amount, output_field=money), ZERO, output_field=money)
    )
    return Figures(found["count"], found["total"])


def reconciliation(start: date, end: date) -> Reconciliation:
    """The figures of the reconciliation page for the days start..end (inclusive)."""
    since, until = period_bounds(start, end)
    report = Reconciliation(start=start, end=end)
    statement = StatementRow.objects.filter(completed_at__gte=since, completed_at__lt=until)
    totals = statement.aggregate(
        rows=Count("pk"),
        **{
            f"{name}_{part}": (Count if part == "count" else Sum)(
                column if part == "total" else "pk", filter=condition
            )
            for name, column, condition in (
                ("in", "paid_in", Q(kind=K.PAID_IN)),
                ("payouts", "withdrawn", Q(kind=K.PAYOUT)),
                ("charges", "withdrawn", Q(kind=K.CHARGE)),
                ("reversals", "withdrawn", Q(kind=K.REVERSAL)),
                ("other_in", "paid_in", Q(kind=K.OTHER, paid_in__gt=0)),
                ("other_out", "withdrawn", Q(kind=K.OTHER, withdrawn__gt=0)),
            )
            for part in ("count", "total")
        },
    )
    report.statement_rows = totals["rows"]
    for name in ("in", "payouts", "charges", "reversals", "other_in", "other_out"):
        setattr(
            report,
            f"statement_{name}",
            Figures(totals[f"{name}_count"], totals[f"{name}_total"] or ZERO),
        )
    matched = statement.filter(~Q(matched=""), books_amount__isnull=True)
    report.matched = Figures(matched.count(), ZERO)
    only = StatementRow.objects.filter(unmatched_in(since, until))
    report.statement_only = _only_figures(only)
    report.statement_only_rows = list(only.order_by("completed_at", "pk")[:LIST_LIMIT])
    mismatched = statement.filter(books_amount__isnull=False)
    report.mismatched = Figures(mismatched.count(), ZERO)
    report.mismatched_rows = list(mismatched.order_by("completed_at", "pk")[:LIST_LIMIT])
    _books(report, since, until)
    return report


def _only_figures(rows: QuerySet[StatementRow]) -> Figures:
    found = rows.aggregate(
        count=Count("pk"),
        paid_in=Coalesce(Sum("paid_in"), ZERO),
        out=Coalesce(Sum("withdrawn"), ZERO),
    )
    return Figures(found["count"], found["paid_in"] - found["out"])


def books_money_in(since: datetime, until: datetime) -> tuple[QuerySet[Any], QuerySet[Any]]:
    """What our books say came in during the period: prompts M-Pesa paid (with a receipt),
    and Paybill payments that are not the same money as a prompt."""
    prompts = MpesaPayment.objects.filter(
        status=MpesaPayment.Status.COMPLETED,
        transaction_date__gte=since,
        transaction_date__lt=until,
    ).exclude(receipt_number="")
    paybill = PaybillPayment.objects.filter(paid_at__gte=since, paid_at__lt=until).exclude(
        status=PaybillPayment.Status.STK
    )
    return prompts, paybill


def _books(report: Reconciliation, since: datetime, until: datetime) -> None:
    prompts, paybill = books_money_in(since, until)
    payouts = Payout.objects.filter(
        status=Payout.Status.COMPLETED, paid_at__gte=since, paid_at__lt=until
    )
    in_prompts = _figures(prompts, "amount")
    in_paybill = _figures(paybill, "amount")
    report.books_in = Figures(
        in_prompts.count + in_paybill.count, in_prompts.total + in_paybill.total
    )
    report.books_payouts = _figures(payouts, "amount")
    reversals = Reversal.objects.filter(
        status=Reversal.Status.COMPLETED, completed_at__gte=since, completed_at__lt=until
    )
    report.books_reversals = _figures(reversals, "amount")
    missing = [
        ("M-Pesa prompt", "mpesapayment", prompts, "receipt_number", "transaction_date"),
        ("Paybill payment", "paybillpayment", paybill, "receipt", "paid_at"),
        ("Payout", "payout", payouts, "receipt_number", "paid_at"),
    ]
    for what, admin, books, receipt, when in missing:
        on_statement = StatementRow.objects.filter(receipt=OuterRef(receipt))
        rows = books.annotate(listed=Exists(on_statement)).filter(listed=False)
        figures = _figures(rows, "amount")
        report.books_only.count += figures.count
        report.books_only.total += figures.total
        room = LIST_LIMIT - len(report.books_only_rows)
        for pk, code, value, at in rows.order_by(when, "pk").values_list(
            "pk", receipt, "amount", when
        )[: max(room, 0)]:
            report.books_only_rows.append(BooksOnly(what, pk, code, Decimal(value), at, admin))


def default_period(today: date | None = None) -> tuple[date, date]:
    """The last imported statement's days, or else the month so far."""
    last = StatementImport.objects.exclude(first_at=None).order_by("-uploaded_at").first()
    if last is not None and last.first_at and last.last_at:
        return (
            timezone.localtime(last.first_at).date(),
            timezone.localtime(last.last_at).date(),
        )
    today = today or timezone.localdate()
    return today.replace(day=1), today


def books_check(now: datetime | None = None) -> dict[str, int]:
    """The daily three-way view from what the app knows, for the alert: money M-Pesa reports
    (Pull Transactions) that no member's balance holds yet, and prompts paid with a receipt
    that Pull never listed (only once Pull has had a day to list them)."""
    now = now or timezone.now()
    since = now - timedelta(days=2)
    waiting = PaybillPayment.objects.filter(
        received_at__gte=since,
        received_at__lt=now - timedelta(hours=1),
        status__in=[PaybillPayment.Status.UNATTRIBUTED, PaybillPayment.Status.WAITING_STK],
    ).count()
    unlisted = 0
    if settings.MPESA_PULL_ENABLED:
        listed = PaybillPayment.objects.filter(receipt=OuterRef("receipt_number"))
        unlisted = (
            MpesaPayment.objects.filter(
                status=MpesaPayment.Status.COMPLETED,
                transaction_date__gte=since,
                transaction_date__lt=now - timedelta(hours=settings.MPESA_PULL_HOURS + 1),
            )
            .exclude(receipt_number="")
            .annotate(listed=Exists(listed))
            .filter(listed=False)
            .count()
        )
    return {"unattributed": waiting, "not_listed_by_pull": unlisted}
