"""Words shared by templates (as filters), admin and services: money as people read it, and
texts' parts (a text is 160 characters, so what it says is cut with care)."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import dateformat, timezone
from django.utils.functional import lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

# Django's own words for dates, named here so that our catalogue (locale/sw) carries them:
# its Kiswahili abbreviations are not the ones Kenyan calendars and phones use.
DATE_WORDS = (
    gettext_noop("Mon"),
    gettext_noop("Tue"),
    gettext_noop("Wed"),
    gettext_noop("Thu"),
    gettext_noop("Fri"),
    gettext_noop("Sat"),
    gettext_noop("Sun"),
    gettext_noop("Monday"),
    gettext_noop("Tuesday"),
    gettext_noop("Wednesday"),
    gettext_noop("Thursday"),
    gettext_noop("Friday"),
    gettext_noop("Saturday"),
    gettext_noop("Sunday"),
    gettext_noop("jan"),
    gettext_noop("feb"),
    gettext_noop("mar"),
    gettext_noop("apr"),
    gettext_noop("may"),
    gettext_noop("jun"),
    gettext_noop("jul"),
    gettext_noop("aug"),
    gettext_noop("sep"),
    gettext_noop("oct"),
    gettext_noop("nov"),
    gettext_noop("dec"),
    gettext_noop("January"),
    gettext_noop("February"),
    gettext_noop("March"),
    gettext_noop("April"),
    gettext_noop("May"),
    gettext_noop("June"),
    gettext_noop("July"),
    gettext_noop("August"),
    gettext_noop("September"),
    gettext_noop("October"),
    gettext_noop("November"),
    gettext_noop("December"),
)


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
    """`Sat 5 Dec 16:00` (`Jmos 5 Des 16:00`) in Nairobi time: a date a phone screen shows
    whole, in the language being rendered."""
    if not value:
        return ""
    return dateformat.format(timezone.localtime(value), "D j M H:i")


def when_words(value: datetime | None) -> str:
    """`today at 16:00`, `tomorrow at 16:00`, `on Sat 5 Dec at 16:00` (`leo saa 16:00` ...):
    by the real date in Nairobi, so a reminder sent on the day never says "tomorrow"."""
    if not value:
        return ""
    local = timezone.localtime(value)
    days = (local.date() - timezone.localdate()).days
    time = f"{local:%H:%M}"
    if days == 0:
        return _("today at %(time)s") % {"time": time}
    if days == 1:
        return _("tomorrow at %(time)s") % {"time": time}
    day = dateformat.format(local, "D j M")
    return _("on %(day)s at %(time)s") % {"day": day, "time": time}


def kes(value: Decimal | int | float | str, *, whole: bool = False) -> str:
    """Money, one way everywhere: `KES 1,500.00`, or `KES 1,500` for whole shillings (M-Pesa
    moves whole shillings); a negative amount as `-KES 200.00`. The portal's pay.js writes
    whole shillings the same way."""
    amount = Decimal(str(value))
    places = Decimal(1) if whole else Decimal("0.01")
    amount = amount.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}KES {abs(amount):,}"


def when_lazily(value: datetime) -> Any:
    """`Sat 05 Dec 2026, 16:00` in the language of whoever reads it: worked out when it is
    rendered (a change found in an admin request, read in a member's Kiswahili message)."""
    return lazy(lambda: dateformat.format(timezone.localtime(value), "D d M Y, H:i"), str)()
