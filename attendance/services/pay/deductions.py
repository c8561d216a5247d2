"""A member's statutory deductions in a pay run: the month's figures from the rate table,
less what earlier runs that month took, kept on the ledger one entry per deduction.

Called by pay-run approval inside the member's transaction, after their earnings are posted
(the ledger holds the profile's row lock from then on, so a second run approving the same
member waits, then sees this run's deductions as "earlier").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Sum

from attendance.models import (
    LedgerEntry,
    PayRun,
    PayRunLine,
    PayRunMember,
    StatutoryDeduction,
    StatutoryProfile,
)
from attendance.models import StatutoryRates as RatesRow
from attendance.services.ledger import Posting, ledger_post_many
from attendance.services.pay.rules import ZERO
from attendance.services.pay.statutory import (
    EMPLOYEE,
    PROFESSIONAL,
    Deductions,
    month_true_up,
)
from attendance.services.pay.statutory_table import statutory_rates_of

Kind = StatutoryDeduction.Kind
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Engagement:
    """How the member is engaged this month (their statutory profile, or the default)."""

    classification: str = EMPLOYEE
    secondary: bool = False
    fee_type: str = PROFESSIONAL


def engagement_of(user: User) -> Engagement:
    """From the member's statutory profile (read with the user where it was selected)."""
    profile = getattr(user, "statutory", None)
    if profile is None:
        return Engagement()  # a casual employee whose main job is with us
    return Engagement(profile.classification, profile.secondary_employment, profile.fee_type)


@dataclass(frozen=True)
class MissingNumbers:
    user: User
    missing: list[str]


def statutory_numbers_missing(pay_run: PayRun) -> list[MissingNumbers]:
    """The run's members whose statutory numbers Finance has yet to add (the returns need
    them; deductions are worked out without), by name. One query."""
    users = (
        User.objects.filter(pk__in=pay_run.lines.values("user_id"))
        .select_related("statutory")
        .order_by("first_name", "last_name", "pk")
    )
    found = []
    for user in users:
        profile = getattr(user, "statutory", None) or StatutoryProfile(user=user)
        if missing := profile.missing():
            found.append(MissingNumbers(user, missing))
    return found


def month_so_far(user_id: int, month: date) -> Deductions:
    """What earlier pay runs of `month` paid the member and took from it."""
    gross = PayRunMember.objects.filter(user_id=user_id, pay_run__pay_month=month).aggregate(
        gross=Sum("earned")
    )["gross"]
    if gross is None:
        return Deductions()  # the month's first payslip: nothing taken yet
    taken = dict(
        StatutoryDeduction.objects.filter(user_id=user_id, month=month)
        .values("kind")
        .annotate(total=Sum("amount"))
        .values_list("kind", "total")
    )
    return Deductions(gross=gross, **{kind: taken.get(kind, ZERO) for kind in Kind.values})


def deductions_for_run(
    *, user: User, month: date, earned: Decimal, row: RatesRow
) -> tuple[Engagement, Deductions]:
    """This run's share of the member's month (`earned`: what this run pays them, gross)."""
    how = engagement_of(user)
    earlier = month_so_far(user.pk, month)
    share = month_true_up(
        max(ZERO, earlier.gross + earned),
        earlier,
        statutory_rates_of(row),
        classification=how.classification,
        secondary=how.secondary,
        fee_type=how.fee_type,
    )
    return how, share


def deductions_record(
    *, member: PayRunMember, share: Deductions, month: date, by: User | None
) -> tuple[list[StatutoryDeduction], list[LedgerEntry]]:
    """Store the run's deductions for the member and post each one kept from pay to their
    ledger (a refund, when the month's figure fell, as an adjustment back), all under one
    lock of their balance. Returns the rows and the ledger entries posted, in order."""
    rows = StatutoryDeduction.objects.bulk_create(
        [
            StatutoryDeduction(
                member=member, user_id=member.user_id, month=month, kind=kind, amount=amount
            )
            for kind in (*StatutoryDeduction.WITHHELD, *StatutoryDeduction.EMPLOYER)
            if (amount := getattr(share, kind))
        ]
    )
    label = f"{month:%B %Y}"
    postings = []
    for row in rows:
        if row.kind in StatutoryDeduction.EMPLOYER:
            continue  # the company's cost, not the member's: not on their ledger
        name = Kind(row.kind).label
        refund = row.amount < 0
        postings.append(
            Posting(
                kind=LedgerEntry.Kind.ADJUSTMENT if refund else LedgerEntry.Kind.DEDUCTION,
                amount=row.amount,
                description=f"{name} for {label}"
                + (": less than earlier pay runs took, given back" if refund else ""),
                source=row,
            )
        )
    return rows, ledger_post_many(user=member.user, postings=postings, created_by=by)


def shares_by_line(rows: list[PayRunLine], share: Deductions) -> None:
    """Split the member's deductions and employer costs in this run over their lines by pay,
    to the cent, so the payroll's columns add up line by line and summing lines by event
    gives each event's labour cost."""
    withheld = split_by_pay([row.amount for row in rows], share.withheld)
    employer = split_by_pay([row.amount for row in rows], share.employer_cost)
    for row, kept, cost in zip(rows, withheld, employer, strict=True):
        row.withheld, row.employer_cost = kept, cost
    PayRunLine.objects.bulk_update(rows, ["withheld", "employer_cost"])


def split_by_pay(amounts: list[Decimal], total: Decimal) -> list[Decimal]:
    """`total` in shares proportional to the positive `amounts`, to the cent (largest
    remainder); all on the first when none is positive."""
    sign = -1 if total < 0 else 1  # a true-up down: split the same way, then negated
    weights = [max(amount, ZERO) for amount in amounts]
    whole = sum(weights, ZERO)
    if not whole:
        weights, whole = [Decimal(1)] + [ZERO] * (len(amounts) - 1), Decimal(1)
    exact = [abs(total) * weight / whole for weight in weights]
    shares = [value.quantize(CENT, rounding="ROUND_DOWN") for value in exact]
    left = int((abs(total) - sum(shares, ZERO)) / CENT)
    by_remainder = sorted(range(len(amounts)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[:left]:
        shares[i] += CENT
    return [share * sign for share in shares]


@dataclass(frozen=True)
class LabourCost:
    paid: Decimal  # gross pay in approved pay runs
    employer: Decimal  # the employer's NSSF and housing levy on it

    @property
    def total(self) -> Decimal:
        return self.paid + self.employer


def event_labour_cost(event_id: int) -> LabourCost:
    """What an event's crew cost the company so far: the pay of approved runs and each line's
    share of the employer's contributions. One query."""
    totals = PayRunLine.objects.filter(
        line__event_id=event_id, pay_run__status=PayRun.Status.APPROVED
    ).aggregate(paid=Sum("amount"), employer=Sum("employer_cost"))
    return LabourCost(totals["paid"] or ZERO, totals["employer"] or ZERO)
