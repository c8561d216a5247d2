from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone

from attendance.phones import format_phone, mask_phone
from attendance.wording import sms_fit, sms_when

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


# The texts' own wording (attendance/wording.py), as filters for the SMS templates.
register.filter("sms_fit", sms_fit)
register.filter("sms_when", sms_when)


@register.filter
def when_words(value) -> str:
    """`today at 16:00`, `tomorrow at 16:00`, `on Sat 5 Dec at 16:00`: by the real date in
    Nairobi, so a reminder sent on the day never says "tomorrow"."""
    if not value:
        return ""
    local = timezone.localtime(value)
    days = (local.date() - timezone.localdate()).days
    if days == 0:
        return f"today at {local:%H:%M}"
    if days == 1:
        return f"tomorrow at {local:%H:%M}"
    return f"on {local:%a} {local.day} {local:%b} at {local:%H:%M}"


@register.filter
def timeuntil_words(value) -> str:
    """A timedelta as people say it: `4 h 10 min`, `25 min`."""
    minutes = max(int(value.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
