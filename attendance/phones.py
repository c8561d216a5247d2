"""Kenyan mobile numbers: one canonical form, `2547XXXXXXXX` or `2541XXXXXXXX`.

That is the form Daraja wants in PartyA/PhoneNumber and the form we store, so that a number
typed as `0712 345 678`, `+254-712-345678` or `254712345678` is the same person everywhere.
"""

import re

import phonenumbers
from django.core.exceptions import ValidationError

_SEPARATORS = re.compile(r"[\s\-().]")
_KENYAN_MOBILE = re.compile(r"^(?:\+?254|0)([17]\d{8})$")

INVALID_PHONE_MESSAGE = (
    "Enter a Kenyan mobile number such as 0712 345 678, 0110 123 456 or +254 712 345 678."
)


def normalise_phone(raw: str) -> str:
    """Return the number as `2547XXXXXXXX` / `2541XXXXXXXX`.

    Accepts `07..`, `01..`, `+254..` and `254..`, with spaces, dashes, dots or brackets between
    digits. Raises ValidationError (with a message a person can act on) for anything else.
    """
    cleaned = _SEPARATORS.sub("", str(raw or ""))
    match = _KENYAN_MOBILE.match(cleaned)
    if not match:
        raise ValidationError(INVALID_PHONE_MESSAGE, code="invalid_phone")
    return "254" + match.group(1)


def format_phone(normalised: str) -> str:
    """`254712345678` as people read it: `+254 712 345678`."""
    if not normalised:
        return ""
    try:
        parsed = phonenumbers.parse("+" + normalised, None)
    except phonenumbers.NumberParseException:
        return normalised
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(number: str) -> str:
    """A number safe to write to logs: the network prefix and last three digits only."""
    digits = str(number or "")
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:4] + "*" * (len(digits) - 7) + digits[-3:]
