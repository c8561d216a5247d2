"""Member account codes: what a member types as the "account number" when paying the company's
Paybill from the SIM menu, and how we read what they typed.

`SF` and digits only (no O/0 or I/1 to confuse on a feature phone), the last digit a Luhn check
digit, so a mistyped digit or two swapped neighbours name nobody instead of someone else. The
digits are the profile's id, scrambled by a fixed permutation: unique by construction, stable
for ever, short (7 digits up to a million members), and not a count of members.
"""

from __future__ import annotations

import re

PREFIX = "SF"
_DIGITS = 6  # the scrambled id; ids of a million and more take one more digit each decade
_MULTIPLIER = 738_457  # coprime with 10: multiplying by it permutes the numbers below 10^n
_OFFSET = 271_828


def _luhn_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # every second digit from the right, as the check digit will be
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _luhn_ok(digits: str) -> bool:
    return _luhn_digit(digits[:-1]) == digits[-1]


def account_code_for(profile_id: int) -> str:
    """The account code of the profile with this id (`SF` + 7 digits for ids below 10^6)."""
    width = max(_DIGITS, len(str(profile_id)))
    scrambled = (profile_id * _MULTIPLIER + _OFFSET) % 10**width
    digits = f"{scrambled:0{width}d}"
    return f"{PREFIX}{digits}{_luhn_digit(digits)}"


def account_code_normalise(text: str) -> str | None:
    """What a payer typed, as the code it can only mean, or None.

    Case, spaces, dashes, dots and a leading `#` do not matter, and `SF` may be left out; the
    check digit must hold.
    """
    cleaned = re.sub(r"[\s\-.#]", "", str(text or "")).upper()
    cleaned = cleaned.removeprefix(PREFIX)
    if not cleaned.isdigit() or len(cleaned) < _DIGITS + 1 or not _luhn_ok(cleaned):
        return None
    return PREFIX + cleaned
