"""The statutory rate table as the arithmetic reads it: the row in force on a day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from attendance.models import StatutoryRates as RatesRow
from attendance.services.core.errors import ServiceError

from .statutory import Band, StatutoryRates

HUNDRED = Decimal(100)


class NoStatutoryRates(ServiceError):
    """No row of the rate table is in force on that day: Finance adds one first."""


def statutory_rates_on(day: date) -> StatutoryRates:
    """The rates in force on `day`: the row with the latest date on or before it. A row dated
    next month changes nothing worked out for this one."""
    return statutory_rates_of(statutory_row_on(day))


def statutory_row_on(day: date) -> RatesRow:
    """The rate table's row in force on `day` (NoStatutoryRates when there is none)."""
    row = (
        RatesRow.objects.filter(valid_from__lte=day)
        .prefetch_related("bands")
        .order_by("-valid_from")
        .first()
    )
    if row is None:
        raise NoStatutoryRates(_none_on(day))
    return row


def statutory_rates_missing_on(day: date) -> str | None:
    """Why deductions cannot be worked out on `day` (None: a row is in force)."""
    if RatesRow.objects.filter(valid_from__lte=day).exists():
        return None
    return _none_on(day)


def _none_on(day: date) -> str:
    return f"No statutory rates are in force on {day:%d %b %Y}: add them under Statutory rates."


def statutory_rates_of(row: RatesRow) -> StatutoryRates:
    """A table row as the arithmetic's figures (per cent as fractions)."""

    def pct(value: Decimal) -> Decimal:
        return value / HUNDRED

    bands = tuple(
        Band(width=band.width, rate=pct(band.rate))
        for band in sorted(row.bands.all(), key=lambda band: band.position)
    )
    return StatutoryRates(
        valid_from=row.valid_from,
        bands=bands,
        personal_relief=row.personal_relief,
        secondary_rate=pct(row.secondary_rate),
        secondary_nssf_and_shif=row.secondary_nssf_and_shif,
        shif_rate=pct(row.shif_rate),
        shif_minimum=row.shif_minimum,
        ahl_employee_rate=pct(row.ahl_employee_rate),
        ahl_employer_rate=pct(row.ahl_employer_rate),
        nssf_employee_rate=pct(row.nssf_employee_rate),
        nssf_employer_rate=pct(row.nssf_employer_rate),
        nssf_lower_limit=row.nssf_lower_limit,
        nssf_upper_limit=row.nssf_upper_limit,
        pension_cap=row.pension_cap,
        nssf_reduces_taxable=row.nssf_reduces_taxable,
        shif_reduces_taxable=row.shif_reduces_taxable,
        ahl_reduces_taxable=row.ahl_reduces_taxable,
        wht_professional_rate=pct(row.wht_professional_rate),
        wht_contractual_rate=pct(row.wht_contractual_rate),
        wht_threshold=row.wht_threshold,
        unit=Decimal(row.unit),
    )
