"""Kenyan statutory deductions on a member's month of pay, as arithmetic with no database.

The figures come from a dated rate table (models.StatutoryRates, seeded from the 2026 law and
updated by Finance); this module only applies whatever the table says, and says how. The order
is the law's (docs: MPESA_CRM_IMPLEMENTATION.md, "Statutory deductions"):

1. NSSF on pensionable pay: Tier I = rate x min(gross, lower limit), Tier II = rate x
   (min(gross, upper limit) - lower limit).
2. SHIF = rate x gross, at least the minimum, but never more than the pay left after NSSF
   and AHL (whether the minimum binds a casual with little pay is not settled; see the docs).
3. AHL = rate x gross (the employer adds the same again).
4. Taxable pay = gross - the deductions the table says reduce it (NSSF up to the pension cap,
   SHIF, AHL).
5. Tax by the bands; PAYE = tax - personal relief, never below 0. A secondary employment pays
   the secondary rate on all of it with no relief.

Contractors pay none of those: withholding tax at their fee type's rate once the month's fees
reach the threshold, on the whole month (the statute's reading; see the docs).

Everything is computed on the **month's** total: a pay run's deductions are the month so far
minus what earlier runs in the month took (`month_true_up`), so two runs in a month deduct
exactly what one run of the same total would. Each figure is worked out exactly and rounded
once, half up, to the table's unit (the cent unless Finance chose whole shillings).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from .words import Parts, phrase

ZERO = Decimal("0.00")

EMPLOYEE, CONTRACTOR = "employee", "contractor"
PROFESSIONAL, CONTRACTUAL = "professional", "contractual"


@dataclass(frozen=True)
class Band:
    """A PAYE band: `width` shillings of taxable pay (None: everything above) at `rate`."""

    width: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class StatutoryRates:
    """One dated row of the rate table, as the arithmetic needs it."""

    valid_from: date
    bands: tuple[Band, ...]
    personal_relief: Decimal
    secondary_rate: Decimal
    secondary_nssf_and_shif: bool  # False: a secondary job pays neither (Odoo's reading)
    shif_rate: Decimal
    shif_minimum: Decimal
    ahl_employee_rate: Decimal
    ahl_employer_rate: Decimal
    nssf_employee_rate: Decimal
    nssf_employer_rate: Decimal
    nssf_lower_limit: Decimal
    nssf_upper_limit: Decimal
    pension_cap: Decimal
    nssf_reduces_taxable: bool
    shif_reduces_taxable: bool
    ahl_reduces_taxable: bool
    wht_professional_rate: Decimal
    wht_contractual_rate: Decimal
    wht_threshold: Decimal
    unit: Decimal = Decimal("0.01")  # Decimal("1") rounds each figure to whole shillings


@dataclass(frozen=True)
class Deductions:
    """What a month's (or a run's share of a month's) pay owes, and how it was worked out."""

    gross: Decimal = ZERO
    nssf: Decimal = ZERO
    shif: Decimal = ZERO
    ahl: Decimal = ZERO
    taxable: Decimal = ZERO
    tax: Decimal = ZERO
    relief: Decimal = ZERO
    paye: Decimal = ZERO
    wht: Decimal = ZERO
    employer_nssf: Decimal = ZERO
    employer_ahl: Decimal = ZERO
    working: tuple[Parts, ...] = field(default=(), compare=False)  # a step each (words.py)

    @property
    def withheld(self) -> Decimal:
        """What comes off the member's pay."""
        return self.nssf + self.shif + self.ahl + self.paye + self.wht

    @property
    def net(self) -> Decimal:
        return self.gross - self.withheld

    @property
    def employer_cost(self) -> Decimal:
        return self.employer_nssf + self.employer_ahl

    def minus(self, earlier: Deductions) -> Deductions:
        """This month's figures less what earlier runs in the month already took."""
        amounts = {
            f.name: getattr(self, f.name) - getattr(earlier, f.name)
            for f in fields(self)
            if f.name != "working"
        }
        return replace(self, **amounts)


def _round(amount: Decimal, unit: Decimal) -> Decimal:
    return amount.quantize(unit, rounding=ROUND_HALF_UP).quantize(Decimal("0.01"))


def _kes(amount: Decimal) -> str:
    return f"KES {amount:,.2f}"


def _pct(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f} %"


def band_tax(taxable: Decimal, bands: tuple[Band, ...]) -> tuple[Decimal, list[Parts]]:
    """The tax on `taxable` by the bands, exact, with one line of working per band used."""
    tax, left, working = Decimal(0), taxable, []
    for band in bands:
        part = left if band.width is None else min(left, band.width)
        if part <= 0:
            break
        tax += part * band.rate
        working.append(
            phrase("tax_band", part=_kes(part), rate=_pct(band.rate), tax=_kes(part * band.rate))
        )
        left -= part
    return tax, working


def employee_month(gross: Decimal, rates: StatutoryRates, *, secondary: bool) -> Deductions:
    """An employee's deductions and the employer's costs on `gross`, their month's pay."""
    unit = rates.unit
    working = [phrase("gross", amount=_kes(gross))]
    if gross <= 0:
        return Deductions(gross=gross, working=tuple(working))
    pays_nssf_and_shif = not secondary or rates.secondary_nssf_and_shif
    nssf = shif = ZERO
    if pays_nssf_and_shif:
        tier1 = rates.nssf_employee_rate * min(gross, rates.nssf_lower_limit)
        tier2 = rates.nssf_employee_rate * max(
            Decimal(0), min(gross, rates.nssf_upper_limit) - rates.nssf_lower_limit
        )
        nssf = _round(tier1 + tier2, unit)
        working.append(
            phrase(
                "nssf",
                tier1=_kes(tier1),
                tier2=_kes(tier2),
                nssf=_kes(nssf),
                rate=_pct(rates.nssf_employee_rate),
                lower=_kes(rates.nssf_lower_limit),
                upper=_kes(rates.nssf_upper_limit),
            )
        )
    ahl = _round(rates.ahl_employee_rate * gross, unit)
    if pays_nssf_and_shif:
        shif = _round(max(rates.shif_rate * gross, rates.shif_minimum), unit)
        # Whether the minimum applies to a casual who earned very little in the month is not
        # settled law: it is taken only as far as the month's pay bears it, so a member is
        # never left owing for having worked. A later run the same month tops it up.
        bearable = max(ZERO, gross - nssf - ahl)
        capped = shif > bearable
        if capped:
            shif = bearable
        working.append(
            phrase(
                "shif_capped" if capped else "shif",
                rate=_pct(rates.shif_rate),
                minimum=_kes(rates.shif_minimum),
                shif=_kes(shif),
            )
        )
    else:
        working.append(phrase("no_nssf_shif"))
    working.append(phrase("housing_levy", rate=_pct(rates.ahl_employee_rate), ahl=_kes(ahl)))
    reducing = ZERO
    if rates.nssf_reduces_taxable:
        reducing += min(nssf, rates.pension_cap)
    if rates.shif_reduces_taxable:
        reducing += shif
    if rates.ahl_reduces_taxable:
        reducing += ahl
    taxable = max(ZERO, gross - reducing)
    working.append(
        phrase("taxable", gross=_kes(gross), reducing=_kes(reducing), taxable=_kes(taxable))
    )
    if secondary:
        tax = taxable * rates.secondary_rate
        relief = ZERO
        working.append(phrase("secondary_tax", rate=_pct(rates.secondary_rate), tax=_kes(tax)))
    else:
        tax, steps = band_tax(taxable, rates.bands)
        relief = rates.personal_relief
        working.extend(steps)
        working.append(phrase("relief", tax=_kes(tax), relief=_kes(rates.personal_relief)))
    paye = _round(max(Decimal(0), tax - relief), unit)
    working.append(phrase("paye", paye=_kes(paye)))
    employer_nssf = ZERO
    if pays_nssf_and_shif:
        employer_nssf = _round(rates.nssf_employer_rate * min(gross, rates.nssf_upper_limit), unit)
    employer_ahl = _round(rates.ahl_employer_rate * gross, unit)
    working.append(phrase("employer_adds", nssf=_kes(employer_nssf), ahl=_kes(employer_ahl)))
    return Deductions(
        gross=gross,
        nssf=nssf,
        shif=shif,
        ahl=ahl,
        taxable=taxable,
        tax=_round(tax, Decimal("0.01")),
        relief=_round(relief, Decimal("0.01")),
        paye=paye,
        employer_nssf=employer_nssf,
        employer_ahl=employer_ahl,
        working=tuple(working),
    )


def contractor_month(gross: Decimal, rates: StatutoryRates, *, fee_type: str) -> Deductions:
    """Withholding tax on a contractor's fees for the month: none below the threshold; at or
    above it, the fee type's rate on the whole month's fees."""
    rate = rates.wht_contractual_rate if fee_type == CONTRACTUAL else rates.wht_professional_rate
    working = [phrase("fees", amount=_kes(gross))]
    if gross < rates.wht_threshold:
        working.append(phrase("no_wht", threshold=_kes(rates.wht_threshold)))
        return Deductions(gross=gross, working=tuple(working))
    wht = _round(rate * gross, rates.unit)
    working.append(phrase("wht", rate=_pct(rate), wht=_kes(wht)))
    return Deductions(gross=gross, wht=wht, working=tuple(working))


def month_deductions(
    gross: Decimal,
    rates: StatutoryRates,
    *,
    classification: str,
    secondary: bool = False,
    fee_type: str = PROFESSIONAL,
) -> Deductions:
    if classification == CONTRACTOR:
        return contractor_month(gross, rates, fee_type=fee_type)
    return employee_month(gross, rates, secondary=secondary)


def month_true_up(
    month_gross: Decimal,
    earlier: Deductions,
    rates: StatutoryRates,
    *,
    classification: str,
    secondary: bool = False,
    fee_type: str = PROFESSIONAL,
) -> Deductions:
    """A run's share: what the month so far (`month_gross`, this run included) requires,
    less what earlier runs in the month already deducted (`earlier`, their sum)."""
    whole = month_deductions(
        month_gross, rates, classification=classification, secondary=secondary, fee_type=fee_type
    )
    share = whole.minus(earlier)
    if earlier.gross:
        working = (
            *whole.working,
            phrase("earlier_runs", earlier=_kes(earlier.withheld), now=_kes(share.withheld)),
        )
        share = replace(share, working=working)
    return share
