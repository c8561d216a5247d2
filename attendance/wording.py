"""Words for texts, shared by the SMS templates (as filters) and the services that build a
text's parts: a text is 160 characters, so what it says is cut with care."""

from datetime import datetime

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
