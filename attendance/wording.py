"""Words shared by templates (as filters), admin and services: money as people read it, and
texts' parts (a text is 160 characters, so what it says is cut with care)."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone


def sms_fit(value: object, length: int | str) -> str:
    """At most `length` characters for a text, cut at a word where it can be.

    Not Django's truncatechars: its "…" is outside GSM-7 and would make the whole SMS UCS-2.
    """
    text = " ".join(str(value or "").split())
    length = int(length)
    if len(text) <= length:
        return text
    cut = text[:length]
    if " " in cut[length // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.:;-(")


def sms_when(value: datetime | None) -> str:
    """`Sat 5 Dec 16:00` in Nairobi time: a date a phone screen shows whole."""
    if not value:
        return ""
    local = timezone.localtime(value)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def kes(value: Decimal | int | float | str, *, whole: bool = False) -> str:
    """Money, one way everywhere: `KES 1,500.00`, or `KES 1,500` for whole shillings (M-Pesa
    moves whole shillings); a negative amount as `-KES 200.00`. The portal's pay.js writes
    whole shillings the same way."""
    amount = Decimal(str(value))
    places = Decimal(1) if whole else Decimal("0.01")
    amount = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}KES {abs(amount):,}"
