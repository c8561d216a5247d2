"""How a payment can end, in codes we own and in words a member reads.

`MpesaPayment.result_code` holds Safaricom's ResultCode ("0", "1032", ...) when a callback or
a status query settled the payment, or one of our own codes below when it ended before M-Pesa
could say (MPESA_CRM_IMPLEMENTATION.md lists them all). The Daraja client's own error codes are
wire detail and stay in `result_description`.
"""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from attendance.models import MpesaPayment
from attendance.services.core.errors import ServiceError

Status = MpesaPayment.Status

# Our codes: the push never left us (invalid input, Daraja or the token store unreachable) ...
PUSH_NOT_SENT = "push_not_sent"
# ... Daraja answered and refused it: nobody was prompted ...
PUSH_REFUSED = "push_refused"
# ... we got no usable answer: the prompt may still reach the phone (a late callback is
# matched to the payment for review) ...
PUSH_UNANSWERED = "push_unanswered"
# ... or nothing settled it within MPESA_PENDING_TIMEOUT_SECONDS (a late success still does).
EXPIRED = "expired"
# A failed payment M-Pesa may still complete: the late-callback match looks among these.
MAY_STILL_BE_PAID = (PUSH_UNANSWERED, EXPIRED)

# What members read when a prompt did not end in a payment (Daraja's own text is kept too).
RESULT_HINTS = {
    "1": _("Not enough money in the M-Pesa account."),
    "2": _("The amount is below M-Pesa's minimum."),
    "3": _("The amount is above M-Pesa's maximum."),
    "4": _("The M-Pesa daily limit has been reached."),
    "8": _("The payment would exceed the account's maximum balance."),
    "17": _("The same amount was just paid; wait two minutes before trying again."),
    "26": _("M-Pesa was too busy to take the payment; try again in a few minutes."),
    "1001": _("Another M-Pesa payment was in progress on the phone; wait a minute and try again."),
    "1019": _("The prompt expired before it was answered."),
    "1025": _("The prompt could not be sent to the phone."),
    "1032": _("The prompt was cancelled on the phone."),
    "1037": _("The phone could not be reached or did not answer in time."),
    "2001": _("The M-Pesa PIN was wrong."),
    "2028": _("M-Pesa did not permit this payment (wrong till or paybill setup)."),
    "8006": _("The M-Pesa account's security credential is locked."),
    "9999": _("M-Pesa had a problem on its side; try again in a few minutes."),
    "SFC_IC0003": _("M-Pesa does not know our till or paybill (a setup problem at our end)."),
}
_OWN_CODE_WORDS = {
    PUSH_NOT_SENT: _("Nothing was sent to the phone. Please try again in a minute."),
    PUSH_REFUSED: _("M-Pesa did not take the request. Nothing was paid."),
    PUSH_UNANSWERED: _(
        "M-Pesa did not answer. If the prompt still arrives and you pay, we check it."
    ),
    EXPIRED: _("M-Pesa did not confirm the payment in time. If you paid, it still shows up here."),
}


class PaymentError(ServiceError):
    """A payment request that could not be made; `code` and `message` go to the API caller,
    with the payment's id when one was recorded."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = 400,
        payment: MpesaPayment | None = None,
        retry_later: bool = False,
    ):
        details = {"payment_id": payment.pk} if payment is not None else None
        super().__init__(message, code=code, http_status=http_status, details=details)
        self.payment = payment
        # Daraja refused for now (spike arrest, quota, a busy moment) and nobody was prompted:
        # the same prompt may be asked for again later.
        self.retry_later = retry_later


def payment_explanation(payment: MpesaPayment) -> str:
    """What a member reads when a payment did not go through, in plain words.

    Safaricom's own description stays on the payment for staff; this is the sentence for the
    person holding the phone, and it always says whether money moved.
    """
    if payment.status == Status.CANCELLED:
        return gettext("The prompt was cancelled on the phone. Nothing was paid.")
    if payment.status != Status.FAILED:
        return ""
    code = payment.result_code
    if code in RESULT_HINTS:
        return gettext("%(what)s Nothing was paid.") % {"what": RESULT_HINTS[code]}
    return str(
        _OWN_CODE_WORDS.get(code, _("M-Pesa did not complete the payment. Nothing was paid."))
    )


def failure_description(result_description: str, result_code: str) -> str:
    """Safaricom's description with our plain-language hint after it, for staff and members."""
    hint = str(RESULT_HINTS.get(result_code, ""))
    return " ".join(part for part in (result_description, f"({hint})" if hint else "") if part)
