from datetime import timedelta
from decimal import Decimal

from django import template
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.utils.translation import gettext

from attendance.models import LedgerEntry, member_name
from attendance.phones import format_phone, mask_phone
from attendance.services.pay.words import in_reader_language
from attendance.wording import kes, sms_fit, sms_when, when_words

register = template.Library()


@register.filter(name="kes")
def kes_filter(value: Decimal | int | float | str | None) -> str:
    """`Decimal("1500")` as `KES 1,500.00` (wording.kes); nothing for no value."""
    if value is None or value == "":
        return ""
    return kes(value)


@register.filter
def unsigned(value):
    """The size of an amount, for a label that already says which way it goes ("Credit")."""
    return abs(Decimal(value)) if value not in (None, "") else value


@register.filter
def phone(value: str) -> str:
    return format_phone(value)


@register.filter
def masked_phone(value: str) -> str:
    return mask_phone(value)


@register.filter
def ledger_change(entry: LedgerEntry) -> str:
    """How a ledger entry moved the balance, in words a member reads without signs."""
    size = kes(abs(entry.amount))
    if entry.kind == "charge":
        return f"{size} charged"
    if entry.kind == "payment":
        return f"{size} paid"
    return f"{size} added" if entry.amount > 0 else f"{size} credited"


@register.filter
def balance_words(value: Decimal | int | str | None) -> str:
    """A balance as owed or credit: `KES 200.00 owed`, `KES 200.00 credit`, `KES 0.00`."""
    if value is None or value == "":
        return ""
    amount = Decimal(value)
    if amount > 0:
        return f"{kes(amount)} owed"
    if amount < 0:
        return f"{kes(-amount)} credit"
    return kes(amount)


# The texts' own wording (attendance/wording.py), as filters for the SMS templates.
register.filter("sms_fit", sms_fit)
register.filter("sms_when", sms_when)


register.filter("when_words", when_words)


@register.filter
def timeuntil_words(value: timedelta) -> str:
    """A timedelta as people say it: `4 h 10 min`, `25 min`."""
    minutes = max(int(value.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return gettext("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
    return gettext("%(minutes)s min") % {"minutes": minutes}


@register.filter
def said(words: list | str | None, fallback: str = "") -> str:
    """Pay's phrases (a payslip line's how, a deductions step) in the reader's language;
    `fallback` (the English text kept beside them) when a line has none."""
    return in_reader_language(words) if words else fallback


@register.filter(name="member_name")
def member_name_filter(user: AbstractUser | None) -> str:
    """A person's name as everywhere else: their full name, or their username."""
    return member_name(user) if user is not None else ""


@register.filter
def first_name(user: AbstractUser | None) -> str:
    """What a greeting calls someone: their first name, or their username."""
    if user is None:
        return ""
    return user.first_name or user.get_username()


@register.simple_tag
def paybill_words(user: AbstractUser | None) -> str:
    """ "Pay by Paybill <number>, account <code>" for a member, or "" where it is not offered."""
    profile = getattr(user, "profile", None)
    code = getattr(profile, "account_code", "")
    if not (settings.MPESA_C2B_SHORT_CODE and code):
        return ""
    return f"Pay by Paybill {settings.MPESA_C2B_SHORT_CODE}, account {code}"


@register.inclusion_tag("attendance/_paybill_line.html")
def paybill_line(profile: object) -> dict:
    """ "Pay by Paybill <number>, account <code>": how to pay from the SIM menu, where the
    company takes Paybill payments (MPESA_C2B_SHORT_CODE set)."""
    return {"paybill": settings.MPESA_C2B_SHORT_CODE, "code": getattr(profile, "account_code", "")}
