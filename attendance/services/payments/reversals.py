"""Reversing a Paybill payment: M-Pesa gives the money back to the payer.

For a payment Finance marked not ours (paid to the wrong account) or one that was credited
twice over (the member paid the same thing twice). The rules:

- the request is committed before Daraja is asked, and one reversal at most is alive per
  receipt (a database constraint): Daraja's request carries no id of ours, so nothing but this
  stops a second one;
- a POST whose answer is lost leaves the reversal *unknown*, never failed: M-Pesa may have
  reversed it. A person checks the statement; asking again is answered R000001 ("already
  reversed"), which completes it, never a second refund;
- the result (stored raw first, `reversal_inbox.py`) completes it: if the payment had been
  credited to a member, one adjustment takes the credit back (the money went back to the
  payer); a failure says why, and the payment can be reversed again later.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from attendance.models import LedgerEntry, PaybillPayment, Reversal
from attendance.mpesa import paybill_client, reversal_initiator
from attendance.mpesa.paybill import PaybillClient
from attendance.mpesa.results import Result
from attendance.mpesa.transport import DarajaError
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.errors import ServiceError
from attendance.services.core.inbox import Outcome
from attendance.services.ledger import ledger_post

logger = logging.getLogger(__name__)
R = Reversal.Status
P = PaybillPayment.Status
ALREADY_REVERSED = "R000001"
# What each failure means, in Finance's words (Daraja's Reversal result codes).
FAILURES = {
    "R000002": "M-Pesa does not know this receipt.",
    "1": "The Utility account has less than the amount: move money into it, then try again.",
    "11": "The organisation's account is not active.",
    "2006": "The organisation's account is not active.",
    "21": "The API operator lacks the Org Reversals Initiator role.",
    "2001": "The operator's username, password or certificate is wrong.",
    "2028": "The Daraja app has no Reversal product.",
    "8006": "The operator's credential is locked: the Business Administrator unlocks it.",
}


class ReversalError(ServiceError):
    """A reversal that cannot be asked for; the message says why."""


def reversal_urls() -> tuple[str, str]:
    base, token = settings.MPESA_REVERSAL_RESULT_URL, settings.MPESA_REVERSAL_RESULT_TOKEN
    return f"{base}/result/{token}/", f"{base}/timeout/{token}/"


def reversal_request(
    *, payment: PaybillPayment, by: User, reason: str, client: PaybillClient | None = None
) -> Reversal:
    """Ask M-Pesa to reverse a payment that is not ours or was credited twice over."""
    reason = reason.strip()
    if len(reason) < 2:
        raise ReversalError(
            "Say why it is reversed (the payer sees nothing of it; the audit does)."
        )
    with transaction.atomic():
        payment = PaybillPayment.objects.select_for_update().get(pk=payment.pk)
        if payment.status not in (P.NOT_OURS, P.CREDITED):
            raise ReversalError(
                f"{payment.receipt} is {payment.get_status_display().lower()}: only a payment "
                "marked not ours, or a credited one paid twice, can be reversed."
            )
        try:
            with transaction.atomic():
                reversal = Reversal.objects.create(
                    payment=payment,
                    receipt=payment.receipt,
                    amount=payment.amount,
                    reason=reason[:200],
                    requested_by=by,
                )
        except IntegrityError as error:
            raise ReversalError(
                f"{payment.receipt} has a reversal already (asked, waiting or done): never twice."
            ) from error
        audit_record(
            AuditEvent.REVERSAL_REQUESTED,
            actor=by,
            target=reversal,
            details={"receipt": payment.receipt, "amount": str(payment.amount), "reason": reason},
        )
    _send(reversal, client or paybill_client())
    reversal.refresh_from_db()
    return reversal


def _send(reversal: Reversal, client: PaybillClient) -> None:
    result_url, timeout_url = reversal_urls()
    try:
        accepted = client.reversal(
            initiator=reversal_initiator(),
            receipt=reversal.receipt,
            amount=reversal.amount,
            result_url=result_url,
            queue_timeout_url=timeout_url,
            remarks=f"Reversal: {reversal.reason}",
        )
    except (DarajaError, ValueError) as error:
        unknown = isinstance(error, DarajaError) and error.may_have_reached_customer
        Reversal.objects.filter(pk=reversal.pk, status=R.REQUESTED).update(
            status=R.UNKNOWN if unknown else R.FAILED,
            result_code=getattr(error, "code", "") or "not_sent",
            result_description=str(error)[:255],
        )
        logger.warning("Reversal %s: %s", reversal.pk, error)
        return
    # The result may have arrived first (stored, waiting): it finds these ids from now on.
    Reversal.objects.filter(pk=reversal.pk).update(
        originator_conversation_id=accepted.originator_conversation_id[:100],
        conversation_id=accepted.conversation_id[:100],
    )
    Reversal.objects.filter(pk=reversal.pk, status=R.REQUESTED).update(status=R.SENT)


def reversal_for(result: Result) -> Reversal | None:
    found = Reversal.objects.select_for_update()
    if result.originator_conversation_id:
        hit = found.filter(originator_conversation_id=result.originator_conversation_id).first()
        if hit is not None:
            return hit
    if result.conversation_id:
        return found.filter(conversation_id=result.conversation_id).first()
    return None


def reversal_apply(*, reversal: Reversal, result: Result | None) -> Outcome:
    """Apply a result (None: a queue timeout) to a locked reversal, once."""
    if reversal.status in (R.COMPLETED, R.FAILED):
        return Outcome.DUPLICATE
    if result is None:
        reversal.status = R.UNKNOWN
        reversal.result_description = "M-Pesa's queue timed out: check the statement."
        reversal.save(update_fields=["status", "result_description"])
        return Outcome.NOTED
    reversal.result_code = result.result_code
    reversal.result_description = result.description[:255]
    if result.succeeded or result.result_code == ALREADY_REVERSED:
        _complete(reversal, result)
    else:
        reversal.status = R.FAILED
        words = FAILURES.get(result.result_code, "")
        reversal.result_description = (
            f"{words} ({result.description})"[:255] if words else (result.description[:255])
        )
        reversal.completed_at = timezone.now()
        reversal.save()
    return Outcome.PROCESSED


def _complete(reversal: Reversal, result: Result) -> None:
    reversal.status = R.COMPLETED
    reversal.completed_at = timezone.now()
    if result.succeeded and result.transaction_id and not result.transaction_id.endswith("0000000"):
        reversal.reversal_receipt = result.transaction_id[:20]
    payment = PaybillPayment.objects.select_for_update().get(pk=reversal.payment_id)
    if payment.ledger_entry_id and payment.user is not None:
        # The member was credited; the money went back to the payer: take the credit back.
        reversal.ledger_entry = ledger_post(
            user=payment.user,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=Decimal(payment.amount),
            description=f"Paybill payment {payment.receipt} reversed to the payer",
            source=reversal,
        )
    reversal.save()
    payment.status = P.REVERSED
    payment.detail = f"Reversed ({reversal.reversal_receipt or 'already reversed'})."
    payment.save(update_fields=["status", "detail"])
