"""How hours become pay: the rules, as arithmetic with no database, so they can be proven.

One rounding rule everywhere: each part (base pay, overtime pay, each allowance) is worked out
exactly and rounded to the cent, half up; the total is the sum of the rounded parts, so the
payslip's lines always add up to its total.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from attendance.services.core.errors import ServiceError
from attendance.wording import kes

from .words import Parts, english, phrase

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# Above these a figure is a typing mistake, not a rate: refused with the field's name.
MAX_RATE = Decimal("1000000")
MAX_HOURS = Decimal("48")
MAX_MULTIPLIER = Decimal("5")

PAID_STATUSES = {"present", "late"}


class PayRuleError(ServiceError):
    """A rate, hours or allowance that cannot be paid; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message, field=field)


@dataclass(frozen=True)
class Rates:
    day_rate: Decimal | None = None
    hourly_rate: Decimal | None = None
    minimum_hours: Decimal = ZERO
    overtime_after_hours: Decimal | None = None
    overtime_multiplier: Decimal = Decimal("1.5")
    sunday_multiplier: Decimal = Decimal("1")
    holiday_multiplier: Decimal = Decimal("1")


@dataclass(frozen=True)
class Day:
    """The kind of day a show fell on: a Sunday, a public holiday (by name), or neither."""

    sunday: bool = False
    holiday: str = ""  # its name; empty when it is not one
    # Its Kiswahili name, where the calendar has one: words, not a different day for pay.
    holiday_sw: str = dataclasses.field(default="", compare=False)

    def multiplier(self, rates: Rates) -> tuple[Decimal, Parts]:
        """The day's multiplier under `rates`, and words for it ([] on an ordinary day).
        A public holiday on a Sunday pays the better of the two, never both."""
        options: list[tuple[Decimal, Parts]] = []
        if self.holiday:
            name = {"en": self.holiday, "sw": self.holiday_sw or self.holiday}
            options.append((rates.holiday_multiplier, phrase("holiday", name=name)))
        if self.sunday:
            options.append((rates.sunday_multiplier, phrase("sunday")))
        best = max(options, default=(Decimal(1), []), key=lambda option: option[0])
        return best if best[0] > 1 else (Decimal(1), [])


@dataclass(frozen=True)
class Allowances:
    transport: Decimal = ZERO
    meals: Decimal = ZERO
    per_diem: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.transport + self.meals + self.per_diem


@dataclass(frozen=True)
class Pay:
    base_pay: Decimal
    overtime_hours: Decimal
    overtime_pay: Decimal
    allowances: Decimal
    words: Parts  # how it was worked out (`words.py`)

    @property
    def rule(self) -> str:
        """How it was worked out, in English (admin, exports, audit)."""
        return english(self.words)

    @property
    def total(self) -> Decimal:
        return self.base_pay + self.overtime_pay + self.allowances


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _hours_text(value: Decimal) -> Parts:
    return phrase("hours", hours=f"{value.normalize():f}")


def check_amount(field: str, value: Decimal | None, *, maximum: Decimal = MAX_RATE) -> None:
    if value is None:
        return
    if not value.is_finite() or value < 0:
        raise PayRuleError(field, f"{field.capitalize()} cannot be negative.")
    if value > maximum:
        raise PayRuleError(field, f"{field.capitalize()} of {value:,} is more than {maximum:,}.")
    if value != value.quantize(CENT):
        raise PayRuleError(field, f"{field.capitalize()} is in shillings and cents.")


def check_rates(rates: Rates) -> None:
    """PayRuleError naming the first field that cannot be a rate."""
    if rates.day_rate is None and rates.hourly_rate is None:
        raise PayRuleError("day rate", "Give a day rate, an hourly rate or both.")
    check_amount("day rate", rates.day_rate)
    check_amount("hourly rate", rates.hourly_rate)
    for field, value in (
        ("minimum call", rates.minimum_hours),
        ("overtime after", rates.overtime_after_hours),
    ):
        if value is not None and not (0 <= value <= MAX_HOURS):
            raise PayRuleError(field, f"{field.capitalize()} must be 0 to {MAX_HOURS} hours.")
    for field, value in (
        ("overtime multiplier", rates.overtime_multiplier),
        ("Sunday multiplier", rates.sunday_multiplier),
        ("public holiday multiplier", rates.holiday_multiplier),
    ):
        if not (1 <= value <= MAX_MULTIPLIER):
            raise PayRuleError(field, f"The {field} must be 1 to {MAX_MULTIPLIER}.")
    if rates.overtime_after_hours is not None:
        if rates.overtime_after_hours == 0:
            raise PayRuleError("overtime after", "Overtime after 0 hours: leave it empty instead.")
        if rates.minimum_hours > rates.overtime_after_hours:
            raise PayRuleError(
                "minimum call", "The minimum call cannot be longer than the hours before overtime."
            )


def check_allowances(allowances: Allowances) -> None:
    check_amount("transport", allowances.transport)
    check_amount("meals", allowances.meals)
    check_amount("per diem", allowances.per_diem)


def pay_for(
    *,
    rates: Rates | None,
    hours: Decimal | None,
    attendance_status: str,
    agreed_fee: Decimal | None = None,
    allowances: Allowances = Allowances(),
    day: Day = Day(),
) -> Pay:
    """What one assignment earns.

    - Absent or never checked in: nothing, allowances included. Excused: the call is paid as
      if worked for the minimum (the day rate, or the minimum call at the hourly rate).
    - An agreed fee replaces the rates (no overtime on top); allowances are added.
    - A day rate pays the show; hours past "overtime after" are paid at the hourly rate (or
      the day rate spread over those hours) times the multiplier.
    - An hourly rate pays the hours worked, at least the minimum call; past "overtime after"
      at the multiplier.
    - Both: whichever of the two pays the member more.
    - On a Sunday or a public holiday (`day`) the pay for the show is multiplied by the role's
      multiplier for that day, and overtime is paid at the better of the overtime multiplier
      and the day's (Kenya's wage orders pay overtime on those days at twice the rate).
      Allowances are not multiplied (they repay costs), nor is an agreed fee (agreed for
      that day).
    Late members are paid for the hours they worked, by the same rules.
    """
    check_allowances(allowances)
    if hours is not None and not (0 <= hours <= MAX_HOURS):
        raise PayRuleError("hours", f"Hours worked must be 0 to {MAX_HOURS}.")
    worked = hours or ZERO
    if attendance_status not in PAID_STATUSES and attendance_status != "excused":
        unpaid = "absent" if attendance_status == "absent" else "not_checked_in"
        return Pay(ZERO, ZERO, ZERO, ZERO, phrase(unpaid))
    allowance_total = cents(allowances.total)
    if agreed_fee is not None:
        check_amount("agreed fee", agreed_fee)
        return Pay(
            cents(agreed_fee),
            ZERO,
            ZERO,
            allowance_total,
            phrase("agreed_fee", fee=kes(agreed_fee)),
        )
    if rates is None:
        raise PayRuleError("rate", "This role has no rate: set one on the crew role.")
    check_rates(rates)
    if attendance_status == "excused":
        worked = rates.minimum_hours
    multiplier, day_words = day.multiplier(rates)
    options = []
    if rates.day_rate is not None:
        options.append(_day_pay(rates, worked, multiplier))
    if rates.hourly_rate is not None:
        options.append(_hourly_pay(rates, worked, multiplier))
    best = max(options, key=lambda p: (p.base_pay + p.overtime_pay, p.base_pay))
    words = best.words
    if len(options) == 2:
        words = words + phrase("better_of")
    if day_words:
        words = phrase("day_kind", day=day_words, times=_times(multiplier)) + words
    if attendance_status == "excused":
        words = phrase("excused") + words
    return Pay(best.base_pay, best.overtime_hours, best.overtime_pay, allowance_total, words)


def _overtime_hours(rates: Rates, worked: Decimal) -> Decimal:
    if rates.overtime_after_hours is None:
        return ZERO
    return max(ZERO, worked - rates.overtime_after_hours)


def _times(multiplier: Decimal) -> str:
    return f"{multiplier.normalize():f}x"


def _day_pay(rates: Rates, worked: Decimal, multiplier: Decimal) -> Pay:
    assert rates.day_rate is not None
    overtime = _overtime_hours(rates, worked)
    words = phrase("day_rate", rate=kes(rates.day_rate))
    if multiplier > 1:
        words += phrase("times", times=_times(multiplier))
    overtime_pay = ZERO
    if overtime:
        assert rates.overtime_after_hours is not None
        per_hour = rates.hourly_rate or rates.day_rate / rates.overtime_after_hours
        at = max(rates.overtime_multiplier, multiplier)
        overtime_pay = cents(per_hour * at * overtime)
        words += phrase("overtime", hours=_hours_text(overtime), times=_times(at))
    return Pay(cents(rates.day_rate * multiplier), overtime, overtime_pay, ZERO, words)


def _hourly_pay(rates: Rates, worked: Decimal, multiplier: Decimal) -> Pay:
    assert rates.hourly_rate is not None
    overtime = _overtime_hours(rates, worked)
    regular = max(worked - overtime, rates.minimum_hours)
    words = phrase("hourly", hours=_hours_text(regular), rate=kes(rates.hourly_rate))
    if multiplier > 1:
        words += phrase("times", times=_times(multiplier))
    if rates.minimum_hours and worked < rates.minimum_hours:
        words += phrase("minimum_call", hours=_hours_text(rates.minimum_hours))
    at = max(rates.overtime_multiplier, multiplier)
    overtime_pay = cents(rates.hourly_rate * at * overtime)
    if overtime:
        words += phrase("overtime", hours=_hours_text(overtime), times=_times(at))
    return Pay(cents(rates.hourly_rate * regular * multiplier), overtime, overtime_pay, ZERO, words)
