"""Money rules, in one place: what a prompt may ask for and how a balance becomes a prompt.

M-Pesa (Daraja) takes whole shillings from KES 1 to KES 250,000 per STK push; those limits are
the client's wire facts and are read from it here, so that the portal, the admin and the API
show and apply the same ones.
"""

from decimal import ROUND_CEILING, Decimal

from attendance.mpesa.client import MAX_AMOUNT, MIN_AMOUNT

PROMPT_MINIMUM = MIN_AMOUNT
PROMPT_MAXIMUM = MAX_AMOUNT


def prompt_limits() -> dict[str, int]:
    """For templates and forms: {"minimum": 1, "maximum": 250000}."""
    return {"minimum": PROMPT_MINIMUM, "maximum": PROMPT_MAXIMUM}


def prompt_amount_for(balance: Decimal) -> int | None:
    """The prompt that settles `balance`, or None when nothing is owed.

    The one rounding rule: up to the next whole shilling (M-Pesa takes no cents; KES 100.50 owed
    becomes a KES 101 prompt and the 50 cents over become credit, rather than leaving a debt no
    prompt can ever clear). Capped at the maximum a single prompt may ask for.
    """
    balance = Decimal(balance)
    if balance <= 0:
        return None
    return min(int(balance.to_integral_value(rounding=ROUND_CEILING)), PROMPT_MAXIMUM)
