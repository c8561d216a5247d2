"""Settlement: the rules that move money. A callback's or a query's outcome, applied once.

- Settling locks the payment row; the ledger credit is posted in the same transaction and the
  database allows one credit per payment, so duplicate, concurrent or reordered callbacks and
  queries can never credit twice.
- A final state is never downgraded. Success wins over an earlier failure (the money moved),
  which is how a late callback completes a payment reconciliation had given up on.
- Only what M-Pesa says was paid is ever credited, and only when it matches the request;
  anything else waits for a person.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from attendance.models import EmailNotification, LedgerEntry, MpesaPayment, PaybillPayment
from attendance.mpesa.callbacks import StkResult, clean_text
from attendance.phones import mask_phone
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.inbox import Outcome
from attendance.services.ledger import LedgerError, ledger_credit_payment
from attendance.services.messaging.channels import member_message
from attendance.services.messaging.email import notification_create
from attendance.services.payments.amounts import PROMPT_MAXIMUM
from attendance.services.people.roles import staff_with_permission

from .outcomes import MAY_STILL_BE_PAID, PaymentError, failure_description
from .paybill import paybill_twin_of_prompt

logger = logging.getLogger(__name__)
Status = MpesaPayment.Status


def payment_apply_result(*, result: StkResult, via: str) -> tuple[Outcome, MpesaPayment | None]:
    """Apply a callback's or a query's outcome to its payment, once.

    Returns (PROCESSED, DUPLICATE or UNMATCHED, the payment if one matched).
    """
    with transaction.atomic():
        # The row lock serialises concurrent callbacks and queries for one payment.
        payment = (
            MpesaPayment.objects.select_for_update()
            .filter(checkout_request_id=result.checkout_request_id)
            .first()
        )
        if payment is None:
            payment = _unanswered_push_for(result)
            if payment is None:
                return Outcome.UNMATCHED, None
            payment.checkout_request_id = result.checkout_request_id
            payment.merchant_request_id = result.merchant_request_id
            doubt = (
                f"our push got no answer ({payment.result_code}); matched to this callback "
                "by amount and phone: check receipt"
            )
            return _complete(payment, result, via, doubt=doubt), payment
        if result.succeeded:
            return _complete(payment, result, via), payment
        return _fail(payment, result, via), payment


def _unanswered_push_for(result: StkResult) -> MpesaPayment | None:
    """The payment a success callback with an unknown checkout must be for, if only one fits.

    A push that timed out on our side may still reach the phone; we never learnt its
    CheckoutRequestID, so the customer's money would otherwise sit in an unmatched callback.
    The one failed payment M-Pesa may still complete, for the same amount, started shortly
    before the transaction (and from the same phone, when the callback shows it unmasked), is
    taken; two candidates or none leave the callback unmatched for staff. Caller holds a
    transaction.
    """
    if not result.succeeded or result.amount is None:
        return None
    paid_at = result.transaction_date or timezone.now()
    candidates = MpesaPayment.objects.select_for_update().filter(
        checkout_request_id__isnull=True,
        status=Status.FAILED,
        result_code__in=MAY_STILL_BE_PAID,
        amount=result.amount,
        # The prompt lives a minute or two; the slack allows for Safaricom's clock.
        initiated_at__range=(
            paid_at - timedelta(seconds=settings.MPESA_PENDING_TIMEOUT_SECONDS),
            paid_at + timedelta(minutes=2),
        ),
    )
    if result.phone.isdigit() and len(result.phone) == 12:
        candidates = candidates.filter(phone_number=result.phone)
    found = list(candidates.order_by("pk")[:2])
    return found[0] if len(found) == 1 else None


def _paid_amount(result: StkResult) -> Decimal | None:
    """What the callback says was paid, if it is an amount M-Pesa can have moved: whole
    shillings, 1 to 250,000. None for anything else (0, negative, 300.001, absurd)."""
    amount = result.amount
    if amount is None or amount != amount.to_integral_value() or not 1 <= amount <= PROMPT_MAXIMUM:
        return None
    return amount.quantize(Decimal("0.01"))


def _record_paid(payment: MpesaPayment, result: StkResult) -> None:
    payment.receipt_number = result.receipt_number
    payment.transaction_date = result.transaction_date
    payment.paid_amount = _paid_amount(result)
    payment.paid_phone_number = result.phone


def _complete(payment: MpesaPayment, result: StkResult, via: str, *, doubt: str = "") -> Outcome:
    """`doubt`: a reason staff must look before the ledger is credited."""
    if payment.status == Status.COMPLETED:
        _fill_in_after_query(payment, result)
        return Outcome.DUPLICATE
    payment.status = Status.COMPLETED
    payment.completed_at = payment.settled_at = timezone.now()
    payment.settled_via = via
    payment.result_code = "0"
    payment.result_description = result.result_description or "Paid"
    if result.receipt_number:
        _record_paid(payment, result)
    problems = ([doubt] if doubt else []) + _mismatches(payment, result)
    if problems:
        payment.needs_review = True
        payment.review_reason = clean_text("; ".join(problems), 255)
        payment.save()
        alert_staff(
            notification_type=EmailNotification.Type.PAYMENT_REVIEW,
            context={"payment": payment},
            payment=payment,
        )
        logger.error("M-Pesa payment %s needs review: %s", payment.pk, payment.review_reason)
        return Outcome.PROCESSED
    if _credited_as_paybill(payment):
        payment.save()
        return Outcome.PROCESSED
    reference = payment.receipt_number or payment.checkout_request_id
    payment.ledger_entry = ledger_credit_payment(
        user=payment.user,
        amount=payment.amount,
        description=f"M-Pesa payment {reference}",
        receipt=payment.receipt_number,
        source=payment,
        created_by=payment.requested_by,
    )
    if payment.ledger_entry is None:
        # The same money reached us first as a Paybill confirmation (or a Pull row), which
        # credited it: completed here, credited once.
        payment.result_description = clean_text(
            f"{payment.result_description}; credited already as Paybill payment "
            f"{payment.receipt_number}",
            255,
        )
        PaybillPayment.objects.filter(receipt=payment.receipt_number).update(stk_payment=payment)
    payment.save()
    _confirm_to_payer(payment)
    return Outcome.PROCESSED


def _credited_as_paybill(payment: MpesaPayment) -> bool:
    """A prompt settled by a status query carries no receipt. If a Paybill payment of the
    member for the same amount, in the prompt's time, credited the money already, it was this
    one: take its receipt, credit nothing. Caller holds a transaction."""
    if payment.receipt_number:
        return False
    twin = paybill_twin_of_prompt(payment)
    if twin is None:
        return False
    payment.receipt_number = twin.receipt
    payment.paid_amount = twin.amount
    payment.result_description = clean_text(
        f"{payment.result_description}; credited already as Paybill payment {twin.receipt}", 255
    )
    twin.stk_payment = payment
    twin.save(update_fields=["stk_payment"])
    return True


def _fill_in_after_query(payment: MpesaPayment, result: StkResult) -> None:
    """A query settled it earlier (it carries no receipt): keep what the callback tells."""
    if not result.receipt_number or payment.receipt_number:
        return
    _record_paid(payment, result)
    fields = ["receipt_number", "transaction_date", "paid_amount", "paid_phone_number"]
    problems = _mismatches(payment, result)
    if problems and payment.ledger_entry_id and not payment.needs_review:
        # The query credited the requested amount; the callback says otherwise.
        payment.needs_review = True
        payment.review_reason = clean_text(
            f"credited KES {payment.amount} on the status query, then the callback said: "
            f"{'; '.join(problems)}",
            255,
        )
        fields += ["needs_review", "review_reason"]
    if payment.ledger_entry_id:
        try:
            with transaction.atomic():
                LedgerEntry.objects.filter(pk=payment.ledger_entry_id).update(
                    receipt=payment.receipt_number
                )
        except IntegrityError:
            # Credited on the query, and as a Paybill payment before we could tell they were
            # one: a person must undo one of them.
            payment.needs_review = True
            payment.review_reason = clean_text(
                f"credited twice: on the status query and as Paybill payment "
                f"{payment.receipt_number}; reverse one",
                255,
            )
            fields += ["needs_review", "review_reason"]
    payment.save(update_fields=[*fields, "updated_at"])


def _mismatches(payment: MpesaPayment, result: StkResult) -> list[str]:
    problems = []
    if result.amount is not None:
        if _paid_amount(result) is None:
            problems.append(f"M-Pesa reported an amount that cannot be right: {result.amount}")
        elif result.amount != payment.amount:
            problems.append(f"paid KES {result.amount}, requested KES {payment.amount}")
    if result.phone.isdigit() and len(result.phone) == 12 and result.phone != payment.phone_number:
        problems.append(
            f"paid from {mask_phone(result.phone)}, requested {mask_phone(payment.phone_number)}"
        )
    return problems


def _fail(payment: MpesaPayment, result: StkResult, via: str) -> Outcome:
    if payment.is_final:
        return Outcome.DUPLICATE  # never downgrade; the first final answer stands
    payment.status = Status.CANCELLED if result.result_code == "1032" else Status.FAILED
    payment.result_code = result.result_code
    payment.result_description = failure_description(result.result_description, result.result_code)
    payment.settled_at = timezone.now()
    payment.settled_via = via
    payment.save()
    return Outcome.PROCESSED


def _confirm_to_payer(payment: MpesaPayment) -> None:
    if payment.ledger_entry is None:
        return
    member_message(
        user=payment.user,
        notification_type=EmailNotification.Type.PAYMENT_CONFIRMATION,
        context={"payment": payment, "balance": payment.ledger_entry.balance_after},
        payment=payment,
    )


def alert_staff(*, notification_type: str, context: dict, **links: Any) -> None:
    """Email the staff who can act on a payment that needs a look: those who may credit
    payments flagged for review (Finance), never everyone with a staff login (an event
    manager would get links to a page that refuses them)."""
    staff = staff_with_permission("review_mpesapayment").exclude(email="")
    for member in staff:
        notification_create(
            recipient=member.email,
            user=member,
            notification_type=notification_type,
            context=context,
            **links,
        )


def payment_credit_after_review(*, payment: MpesaPayment, by: User) -> MpesaPayment:
    """Staff accept a flagged payment: the ledger is credited with what was actually paid."""
    with transaction.atomic():
        payment = MpesaPayment.objects.select_for_update().get(pk=payment.pk)
        if not (payment.needs_review and payment.status == Status.COMPLETED):
            raise PaymentError("not_in_review", "Only completed payments flagged for review.")
        if payment.ledger_entry_id:
            raise PaymentError("already_credited", "This payment was already credited.")
        # What M-Pesa says was paid, never the requested amount: a callback that reported
        # 0, a negative or a fraction of a shilling has nothing we may credit.
        amount = payment.paid_amount
        if amount is None or amount <= 0:
            raise PaymentError(
                "no_paid_amount",
                f"Payment {payment.pk}: M-Pesa reported no valid amount paid, so there is "
                "nothing to credit. Check the M-Pesa statement and add a ledger payment by hand "
                "if money arrived.",
            )
        try:
            payment.ledger_entry = ledger_credit_payment(
                user=payment.user,
                amount=amount,
                description=f"M-Pesa payment {payment.receipt_number} (after review)",
                receipt=payment.receipt_number,
                source=payment,
                created_by=by,
            )
        except LedgerError as error:
            raise PaymentError("invalid_amount", str(error)) from error
        if payment.ledger_entry is None:
            raise PaymentError(
                "already_credited",
                f"Receipt {payment.receipt_number} was credited already (as a Paybill "
                "payment): not again.",
            )
        payment.needs_review = False
        payment.review_reason = f"{payment.review_reason}; credited KES {amount} by {by}"[:255]
        payment.save()
        entry = payment.ledger_entry
        audit_record(
            AuditEvent.PAYMENT_CREDITED,
            actor=by,
            target=payment,
            before={"balance": entry.balance_after - entry.amount},
            after={"balance": entry.balance_after, "credited": amount},
            details={"member": payment.user.get_username(), "receipt": payment.receipt_number},
        )
    return payment
