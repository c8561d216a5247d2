"""How pay was worked out, kept as phrases and put into words when someone reads it.

A payslip line's "how" and a pay run's deductions working are stored as a list of parts, each
`[key, {name: value}]`. Read in the reader's language (a member who chose Kiswahili reads their
payslip in Kiswahili, though Finance made it in English), and in English for admin and exports.
A value is text or a number as it stands; a nested list is a phrase of its own; a dict gives
the text per language (a holiday's name). Lines saved before this held plain English text, which
is shown as it is.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _

Parts = list[list[Any]]

PHRASES = {
    # A payslip line: rules.pay_for
    "agreed_fee": gettext_noop("Agreed fee %(fee)s"),
    "day_rate": gettext_noop("Day rate %(rate)s"),
    "hourly": gettext_noop("%(hours)s at %(rate)s/h"),
    "hours": gettext_noop("%(hours)s h"),
    "times": gettext_noop(" x %(times)s"),
    "minimum_call": gettext_noop(" (minimum call %(hours)s)"),
    "overtime": gettext_noop(" + %(hours)s overtime at %(times)s"),
    "better_of": gettext_noop(" (the better of day rate and hourly)"),
    "day_kind": gettext_noop("%(day)s: %(times)s. "),
    "sunday": gettext_noop("Sunday"),
    "holiday": gettext_noop("Public holiday (%(name)s)"),
    "excused": gettext_noop("Excused: the call is paid. "),
    "absent": gettext_noop("Absent: no pay."),
    "not_checked_in": gettext_noop("Not checked in: no pay."),
    "not_worked_out": gettext_noop("Not worked out: %(error)s Then recalculate."),
    # A pay run's deductions: statutory.employee_month / contractor_month / month_true_up
    "gross": gettext_noop("Gross pay for the month: %(amount)s"),
    "nssf": gettext_noop(
        "NSSF: Tier I %(tier1)s + Tier II %(tier2)s = %(nssf)s (%(rate)s, limits %(lower)s "
        "and %(upper)s)"
    ),
    "shif_capped": gettext_noop(
        "SHIF: %(rate)s of gross, at least %(minimum)s, but no more than the pay left after "
        "NSSF and housing levy = %(shif)s"
    ),
    "shif": gettext_noop("SHIF: %(rate)s of gross, at least %(minimum)s = %(shif)s"),
    "no_nssf_shif": gettext_noop(
        "NSSF and SHIF: none on a secondary employment (the rate table's rule)"
    ),
    "housing_levy": gettext_noop("Housing levy: %(rate)s of gross = %(ahl)s"),
    "taxable": gettext_noop("Taxable pay: %(gross)s - %(reducing)s = %(taxable)s"),
    "secondary_tax": gettext_noop(
        "Tax: secondary employment, %(rate)s of all of it = %(tax)s, no personal relief"
    ),
    "tax_band": gettext_noop("Tax band: %(part)s at %(rate)s = %(tax)s"),
    "relief": gettext_noop("Tax %(tax)s - personal relief %(relief)s"),
    "paye": gettext_noop("PAYE: %(paye)s"),
    "employer_adds": gettext_noop("The company adds: NSSF %(nssf)s, housing levy %(ahl)s"),
    "fees": gettext_noop("Fees for the month: %(amount)s"),
    "no_wht": gettext_noop("Withholding tax: none, the month's fees are under %(threshold)s"),
    "wht": gettext_noop("Withholding tax: %(rate)s of the month's fees = %(wht)s"),
    "earlier_runs": gettext_noop(
        "Deducted by earlier pay runs this month: %(earlier)s; this run: %(now)s"
    ),
}


def phrase(key: str, **params: Any) -> Parts:
    """One phrase as parts; parts join with `+`."""
    if key not in PHRASES:
        raise KeyError(f"No pay phrase {key!r}")
    return [[key, params]]


def english(parts: Parts) -> str:
    return _said(parts, translate=False)


def in_reader_language(value: Parts | str) -> str:
    """`value` in the language active now (the reader's); old plain text as it stands."""
    if isinstance(value, str):
        return value
    return _said(value, translate=True)


def _said(parts: Parts, *, translate: bool) -> str:
    words = []
    for key, params in parts:
        text = PHRASES.get(key)
        if text is None:  # a phrase since removed: say what it was rather than fail a payslip
            words.append(key)
            continue
        if translate:
            text = _(text)
        values = {name: _value(value, translate) for name, value in params.items()}
        words.append(text % values if values else text)
    return "".join(words)


def _value(value: Any, translate: bool) -> Any:
    if isinstance(value, list):
        return _said(value, translate=translate)
    if isinstance(value, dict):
        language = (get_language() or "en") if translate else "en"
        return value.get(language.split("-")[0]) or value.get("en", "")
    return value
