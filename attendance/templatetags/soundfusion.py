from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

from attendance.phones import format_phone, mask_phone

register = template.Library()


@register.filter
def kes(value) -> str:
    """`Decimal("1500")` as `KES 1,500.00`."""
    if value in (None, ""):
        return ""
    amount = Decimal(value).quantize(Decimal("0.01"))
    sign = "-" if amount < 0 else ""
    return f"{sign}KES {intcomma(f'{abs(amount):.2f}')}"


@register.filter
def unsigned(value):
    """The size of an amount, for a label that already says which way it goes ("Credit")."""
    return abs(Decimal(value)) if value not in (None, "") else value


@register.filter
def phone(value) -> str:
    return format_phone(value)


@register.filter
def masked_phone(value) -> str:
    return mask_phone(value)


@register.filter
def ledger_change(entry) -> str:
    """How a ledger entry moved the balance, in words a member reads without signs."""
    size = kes(abs(entry.amount))
    if entry.kind == "charge":
        return f"{size} charged"
    if entry.kind == "payment":
        return f"{size} paid"
    return f"{size} added" if entry.amount > 0 else f"{size} credited"


@register.filter
def balance_words(value) -> str:
    """A balance as owed or credit: `KES 200.00 owed`, `KES 200.00 credit`, `KES 0.00`."""
    if value in (None, ""):
        return ""
    amount = Decimal(value)
    if amount > 0:
        return f"{kes(amount)} owed"
    if amount < 0:
        return f"{kes(-amount)} credit"
    return kes(amount)
