"""Why a payout was not paid, in the words of the people who read it.

Daraja's result descriptions are for integrators ("Credit Party customer type (Unregistered or
Registered Customer) can't be supported by the service."). Finance needs to know what to do,
and the member whether it is theirs to fix. Codes from Daraja's B2C result table; any other code
keeps Daraja's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NotPaid:
    # What members read is translated when it is rendered (their language); Finance's words
    # are English, as admin is.
    reason: Any  # what happened, for the member and Finance
    member_action: Any  # what the member can do (empty: nothing, we fix it)
    finance_action: str
    text: Any  # both, in the few words a text has room for


NUMBER = NotPaid(
    _("M-Pesa says the number is not a registered M-Pesa line"),
    _("Check the M-Pesa number on your Account page; Finance will pay again once it is right."),
    "Ask the member to check their number, then Pay again.",
    _("the number is not on M-Pesa. Check it on your Account page"),
)
OURS = NotPaid(
    _("M-Pesa refused our payout account's credentials or setup"),
    "",
    "Check the B2C initiator, its password (it lapses every 90 days) and the shortcode's "
    "products on the M-Pesa portal, then Pay again.",
    _("a problem at our end. Finance will pay again"),
)
FLOAT = NotPaid(
    _("our M-Pesa payout account did not have enough money"),
    "",
    "Move funds from the Working (MMF) to the Utility account, then Pay again.",
    _("a problem at our end. Finance will pay again"),
)
LIMIT = NotPaid(
    _("it would take the member's M-Pesa over its daily limit or maximum balance"),
    _("Your M-Pesa cannot take this amount today; Finance will pay again tomorrow."),
    "Pay again tomorrow, or split the amount.",
    _("your M-Pesa limit. Finance will pay again tomorrow"),
)
NOT_OWED = NotPaid(
    _("the member's balance changed after the pay run was approved and nothing is owed now"),
    "",
    "Nothing to do: the balance is settled.",
    _("your balance changed and nothing is owed now"),
)

REASONS: dict[str, NotPaid] = {
    "1": FLOAT,
    "4": LIMIT,
    "8": LIMIT,
    "11": OURS,
    "21": OURS,
    "2001": OURS,
    "2006": OURS,
    "2028": OURS,
    "8006": OURS,
    "2040": NUMBER,
    "SFC_IC0003": NUMBER,
    "not_owed": NOT_OWED,
}


def payout_not_paid_words(code: str, description: str) -> NotPaid:
    """The plain reason for a code, or Daraja's own words for one this table does not know."""
    known = REASONS.get(str(code).strip())
    if known is not None:
        return known
    return NotPaid(
        format_lazy(_("M-Pesa did not pay it ({why})"), why=description.strip() or f"code {code}"),
        _("Finance will look at it and pay again."),
        "Check the payout on the M-Pesa portal before paying again.",
        _("M-Pesa did not pay it. Finance will look at it"),
    )
