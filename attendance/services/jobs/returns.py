"""A month's statutory returns, from what the month's payslips deducted: the PAYE schedule in
the column layout of KRA's P10 employee sheet (CSV), the SHIF, NSSF and housing levy schedules
and the contractors' withholding list (XLSX), and each employee's year on a P9 card.

Amounts are the sums of the month's statutory deduction rows (what the payslips took), never
worked out again; only taxable pay and relief, which no row keeps, are worked out from the
month's gross with the rate row the month's last payslip used, which is the computation those
rows add up to. The column layouts are those public payroll projects use; KRA's and the
portals' own templates were not read: compare with the current template before the first
filing (the docs say so too).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import IO, Any

from django.contrib.auth.models import User
from django.db.models import Sum
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from attendance.models import (
    PayRunMember,
    StatutoryDeduction,
    StatutoryProfile,
    member_name,
)
from attendance.services.pay.statutory import CONTRACTOR, StatutoryRates, month_deductions
from attendance.services.pay.statutory_table import statutory_rates_of

from .exports import csv_lines, safe_cell

ZERO = Decimal("0.00")
Kind = StatutoryDeduction.Kind


@dataclass
class MemberMonth:
    """One member's month as the returns read it."""

    user: User
    profile: StatutoryProfile
    classification: str
    secondary: bool
    gross: Decimal
    taken: dict[str, Decimal] = field(default_factory=dict)
    taxable: Decimal = ZERO
    relief: Decimal = ZERO

    def amount(self, kind: str) -> Decimal:
        return self.taken.get(kind, ZERO)

    @property
    def is_employee(self) -> bool:
        return self.classification != CONTRACTOR


def month_of_returns(month: date, user: User | None = None) -> list[MemberMonth]:
    """Every member paid in `month` (the pay month of its runs), by name, or only `user`.
    Four queries."""
    only = {"user": user} if user is not None else {}
    slips = list(
        PayRunMember.objects.filter(pay_run__pay_month=month, **only)
        .select_related("user__statutory", "user__profile", "statutory_rates")
        .prefetch_related("statutory_rates__bands")
        .order_by("user_id", "pk")
    )
    taken: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for user_id, kind, total in (
        StatutoryDeduction.objects.filter(month=month, **only)
        .values("user_id", "kind")
        .annotate(total=Sum("amount"))
        .values_list("user_id", "kind", "total")
    ):
        taken[user_id][kind] = total
    months: dict[int, MemberMonth] = {}
    last: dict[int, PayRunMember] = {}
    for slip in slips:
        last[slip.user_id] = slip
        if slip.user_id not in months:
            user = slip.user
            profile = getattr(user, "statutory", None) or StatutoryProfile(user=user)
            months[slip.user_id] = MemberMonth(user, profile, "", False, ZERO, taken[user.pk])
        months[slip.user_id].gross += slip.earned
    rates_by_row: dict[int, StatutoryRates] = {}
    for user_id, month_row in months.items():
        slip = last[user_id]
        month_row.classification = slip.classification or month_row.profile.classification
        month_row.secondary = slip.secondary
        row = slip.statutory_rates
        if row is not None and month_row.is_employee:
            if row.pk not in rates_by_row:
                rates_by_row[row.pk] = statutory_rates_of(row)
            whole = month_deductions(
                max(ZERO, month_row.gross),
                rates_by_row[row.pk],
                classification=month_row.classification,
                secondary=month_row.secondary,
            )
            month_row.taxable, month_row.relief = whole.taxable, whole.relief
    return sorted(months.values(), key=lambda m: (m.user.last_name, m.user.first_name, m.user.pk))


def _names(user: User) -> tuple[str, str]:
    return user.first_name or user.username, user.last_name


def _phone(user: User) -> str:
    profile = getattr(user, "profile", None)
    return profile.phone_number if profile else ""


# --- P10 (PAYE) ---------------------------------------------------------------------------


def p10_rows(month: date) -> Iterator[list[Any]]:
    """Columns A to Y of the P10's employee sheet, one row per employee (no header row: the
    template's own CSV has none). Benefits, pension, mortgage and insurance are not paid by
    this payroll: 0."""
    for m in month_of_returns(month):
        if not m.is_employee:
            continue
        relief = ZERO if m.secondary else m.relief
        yield [
            m.profile.kra_pin,
            member_name(m.user),
            "Resident",
            "Secondary Employee" if m.secondary else "Primary Employee",
            "No",
            "",
            m.gross,
            ZERO,
            ZERO,
            ZERO,
            "Benefit not given",
            ZERO,
            ZERO,
            m.gross,
            m.amount(Kind.SHIF),
            m.amount(Kind.NSSF),
            ZERO,
            ZERO,
            ZERO,
            m.amount(Kind.AHL),
            m.taxable,
            relief,
            ZERO,
            m.amount(Kind.PAYE),
            m.amount(Kind.PAYE),
        ]


def p10_csv(month: date) -> Iterator[str]:
    return csv_lines(p10_rows(month))


# --- Schedules (XLSX) -----------------------------------------------------------------------

SHIF_HEADER = [
    "Payroll Number",
    "First Name",
    "Last Name",
    "Identity Type",
    "ID Number",
    "KRA PIN",
    "SHIF Number",
    "Contribution Amount",
    "Phone",
]
NSSF_HEADER = [
    "Payroll No",
    "Surname",
    "Other Names",
    "ID No",
    "KRA PIN",
    "NSSF No",
    "Gross Pay",
    "Voluntary",
    "Employee Contribution",
    "Employer Contribution",
]
AHL_HEADER = [
    "Member Number",
    "Member Name",
    "KRA PIN",
    "Gross Salary",
    "Employee Levy",
    "Employer Levy",
]
WHT_HEADER = [
    "Payroll Number",
    "Name",
    "KRA PIN",
    "Fee Type",
    "Fees in the Month",
    "Withholding Tax",
]


def shif_rows(month: date) -> Iterator[list[Any]]:
    for m in month_of_returns(month):
        if not m.amount(Kind.SHIF):
            continue
        first, last = _names(m.user)
        yield [
            m.user.pk,
            first,
            last,
            "National ID",
            m.profile.id_number,
            m.profile.kra_pin,
            m.profile.shif_number,
            m.amount(Kind.SHIF),
            _phone(m.user),
        ]


def nssf_rows(month: date) -> Iterator[list[Any]]:
    for m in month_of_returns(month):
        if not (m.amount(Kind.NSSF) or m.amount(Kind.EMPLOYER_NSSF)):
            continue
        first, last = _names(m.user)
        yield [
            m.user.pk,
            last,
            first,
            m.profile.id_number,
            m.profile.kra_pin,
            m.profile.nssf_number,
            m.gross,
            ZERO,
            m.amount(Kind.NSSF),
            m.amount(Kind.EMPLOYER_NSSF),
        ]


def ahl_rows(month: date) -> Iterator[list[Any]]:
    for m in month_of_returns(month):
        if not (m.amount(Kind.AHL) or m.amount(Kind.EMPLOYER_AHL)):
            continue
        yield [
            m.profile.id_number,
            member_name(m.user),
            m.profile.kra_pin,
            m.gross,
            m.amount(Kind.AHL),
            m.amount(Kind.EMPLOYER_AHL),
        ]


def wht_rows(month: date) -> Iterator[list[Any]]:
    """Contractors paid in the month, withheld or not (the certificates' data)."""
    for m in month_of_returns(month):
        if m.is_employee:
            continue
        yield [
            m.user.pk,
            member_name(m.user),
            m.profile.kra_pin,
            m.profile.get_fee_type_display(),
            m.gross,
            m.amount(Kind.WHT),
        ]


SCHEDULES = {
    "shif": ("SHIF", SHIF_HEADER, shif_rows),
    "nssf": ("NSSF", NSSF_HEADER, nssf_rows),
    "ahl": ("Housing levy", AHL_HEADER, ahl_rows),
    "wht": ("Withholding tax", WHT_HEADER, wht_rows),
}


def schedule_xlsx(name: str, month: date, target: IO[bytes]) -> int:
    """One schedule as a spreadsheet (write-only, row by row); returns the rows written."""
    title, header, rows = SCHEDULES[name]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title)
    cells = []
    for text in header:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = Font(bold=True)
        cells.append(cell)
    sheet.append(cells)
    count = 0
    for values in rows(month):
        row = []
        for value in values:
            cell = WriteOnlyCell(sheet, value=safe_cell(value))
            if isinstance(value, Decimal):
                cell.number_format = "#,##0.00"
            row.append(cell)
        sheet.append(row)
        count += 1
    book.save(target)
    return count


# --- P9 (the employee's year) ---------------------------------------------------------------


@dataclass
class P9Month:
    month: date
    gross: Decimal = ZERO
    nssf: Decimal = ZERO
    shif: Decimal = ZERO
    ahl: Decimal = ZERO
    taxable: Decimal = ZERO
    relief: Decimal = ZERO
    paye: Decimal = ZERO


@dataclass
class P9Card:
    user: User
    profile: StatutoryProfile
    year: int
    months: list[P9Month]

    def total(self, name: str) -> Decimal:
        return sum((getattr(m, name) for m in self.months), ZERO)

    @property
    def totals(self) -> P9Month:
        names = ("gross", "nssf", "shif", "ahl", "taxable", "relief", "paye")
        return P9Month(date(self.year, 12, 1), **{n: self.total(n) for n in names})


def p9_card(user: User, year: int) -> P9Card:
    """A member's year, month by month, as their payslips made it (months they were not paid
    in are left out)."""
    months = []
    for number in range(1, 13):
        month = date(year, number, 1)
        row = next(iter(month_of_returns(month, user)), None)
        if row is None or not row.is_employee:
            continue
        months.append(
            P9Month(
                month,
                row.gross,
                row.amount(Kind.NSSF),
                row.amount(Kind.SHIF),
                row.amount(Kind.AHL),
                row.taxable,
                ZERO if row.secondary else row.relief,
                row.amount(Kind.PAYE),
            )
        )
    profile = getattr(user, "statutory", None) or StatutoryProfile(user=user)
    return P9Card(user, profile, year, months)
