"""Paying an approved pay run out: the float check, a payout row per payslip, one POST each.

A payout row and its OriginatorConversationID are committed before its POST, and one worker
claims it (queued -> sending) before sending, so two workers never send it. What the POST
leaves decides the state: accepted -> submitted; refused by Daraja -> failed (nothing moved);
not sent at all -> queued again (same id); anything after sending that is not an answer (a
timeout, a broken connection, an unreadable reply, "duplicate id") -> unknown, which only
Transaction Status settles. Never a second POST of a payout that may have reached Daraja.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from attendance.models import Payout, PayoutResult, PayRun, PayRunMember
from attendance.mpesa import b2c_client, b2c_initiator
from attendance.mpesa.b2c import B2C_MIN_AMOUNT
from attendance.mpesa.client import DarajaError, DarajaValidationError
from attendance.mpesa.results import ResultFormatError, account_balances, parse_result
from attendance.phones import mask_phone
from attendance.services.audit import AuditEvent, audit_record

from .settlement import payout_mark_failed, payout_mark_unknown

logger = logging.getLogger(__name__)
S = Payout.Status


class PayoutError(ValueError):
    """A pay run that cannot be paid out now; the message says why (and the figures)."""


def payout_result_url(kind: str) -> str:
    return f"{settings.MPESA_B2C_RESULT_URL}/{kind}/{settings.MPESA_B2C_RESULT_TOKEN}/"


def payout_amount(slip: PayRunMember) -> int:
    """Whole shillings (B2C takes no cents): the cents stay on the member's balance."""
    return int(slip.to_pay.to_integral_value(rounding=ROUND_FLOOR))


def payouts_due(pay_run: PayRun) -> list[tuple[PayRunMember, int]]:
    """The payslips of an approved run with something to pay and no payout that may pay."""
    live = Payout.objects.filter(pay_run=pay_run).exclude(status=S.FAILED).values("payslip_id")
    slips = (
        PayRunMember.objects.filter(pay_run=pay_run, to_pay__gte=B2C_MIN_AMOUNT)
        .exclude(pk__in=live)
        .select_related("user__profile")
        .order_by("pk")
    )
    return [(slip, payout_amount(slip)) for slip in slips]


def payout_float_check(*, needed: Decimal, wait_seconds: float | None = None) -> Decimal:
    """The utility account's available funds (Account Balance, whose answer comes to our
    result URL). PayoutError when Daraja cannot say within the wait."""
    accepted = b2c_client().account_balance(
        initiator=b2c_initiator(),
        result_url=payout_result_url("balance"),
        queue_timeout_url=payout_result_url("balance"),
    )
    deadline = time.monotonic() + (wait_seconds or settings.PAYOUT_FLOAT_WAIT_SECONDS)
    while time.monotonic() < deadline:
        row = (
            PayoutResult.objects.filter(
                kind=PayoutResult.Kind.BALANCE, conversation_id=accepted.conversation_id
            )
            .order_by("pk")
            .first()
        )
        if row is not None:
            try:
                result = parse_result(json.loads(row.raw_body))
            except ResultFormatError as error:
                raise PayoutError(f"M-Pesa's balance answer was unreadable: {error}") from error
            if not result.succeeded:
                raise PayoutError(f"M-Pesa could not give the balance: {result.description}")
            balances = account_balances(result)
            if "Utility Account" not in balances:
                raise PayoutError("M-Pesa's balance answer has no Utility Account.")
            return balances["Utility Account"]
        time.sleep(0.2)
    raise PayoutError("M-Pesa did not give the account balance in time; try again in a minute.")


def payouts_prepare(*, pay_run: PayRun, by: User, partial: bool = False) -> list[Payout]:
    """The float check, then a queued payout per payslip due, committed (before any POST).

    A run larger than the utility account's available funds is refused with the figures;
    `partial` (an explicit choice) pays the payslips that fit, in order.
    """
    run = PayRun.objects.get(pk=pay_run.pk)
    if run.status != PayRun.Status.APPROVED:
        raise PayoutError("Only an approved pay run is paid out.")
    due = payouts_due(run)
    if not due:
        raise PayoutError("Nothing to pay out: every payslip is paid, on its way, or under KES 10.")
    missing = [slip for slip, _ in due if not getattr(slip.user.profile, "phone_number", "")]
    needed = Decimal(sum(amount for _, amount in due))
    try:
        available = payout_float_check(needed=needed)
    except PayoutError:
        raise
    except DarajaError as error:
        raise PayoutError(f"M-Pesa could not be asked for the balance: {error}") from error
    except ValueError as error:  # B2C not configured
        raise PayoutError(str(error)) from error
    if available < needed and not partial:
        raise PayoutError(
            f"The B2C utility account has KES {available:,.2f}; this run needs KES {needed:,.2f}. "
            "Top it up (MMF to Utility on the M-Pesa portal), or pay out part of the run."
        )
    payouts = []
    left = available
    with transaction.atomic():
        for slip, amount in due:
            if slip in missing or amount > left:
                continue
            left -= amount
            try:
                with transaction.atomic():
                    payouts.append(
                        Payout.objects.create(
                            pay_run=run,
                            payslip=slip,
                            user=slip.user,
                            phone_number=slip.user.profile.phone_number,
                            amount=amount,
                            # Ours, made once here and reused on any resend: the key Daraja
                            # uses against double disbursement, and Transaction Status's.
                            originator_conversation_id=f"SF-{uuid.uuid4()}",
                            created_by=by,
                        )
                    )
            except IntegrityError:
                continue  # another submission made it first (one live payout per payslip)
        audit_record(
            AuditEvent.PAYOUT_SUBMITTED,
            actor=by,
            target=run,
            after={"payouts": len(payouts), "total": str(sum(p.amount for p in payouts))},
            details={
                "utility_balance": str(available),
                "skipped_no_phone": len(missing),
                "partial": partial,
            },
        )
    return payouts


def payout_submit(*, payout_id: int) -> str:
    """POST one queued payout to Daraja. Returns its status afterwards."""
    claimed = Payout.objects.filter(pk=payout_id, status=S.QUEUED).update(
        status=S.SENDING, submitted_at=timezone.now()
    )
    payout = Payout.objects.get(pk=payout_id)
    if not claimed:
        return payout.status  # another worker has it, or it is settled
    try:
        accepted = b2c_client().b2c_payment(
            initiator=b2c_initiator(),
            originator_conversation_id=payout.originator_conversation_id,
            phone=payout.phone_number,
            amount=payout.amount,
            remarks=f"Sound Fusion pay {payout.pay_run.period_end:%b %Y}",
            result_url=payout_result_url("result"),
            queue_timeout_url=payout_result_url("timeout"),
            command_id=settings.MPESA_B2C_COMMAND_ID,
        )
    except DarajaValidationError as error:
        payout_mark_failed(payout=payout, code="invalid", description=error.message, how="not sent")
    except DarajaError as error:
        _after_error(payout, error)
    else:
        # Conditional: the result may already have settled it while we waited for the answer.
        Payout.objects.filter(pk=payout.pk, status=S.SENDING).update(
            status=S.SUBMITTED, conversation_id=accepted.conversation_id[:64]
        )
        logger.info(
            "Payout %s of KES %s to %s submitted",
            payout.originator_conversation_id,
            payout.amount,
            mask_phone(payout.phone_number),
        )
    return Payout.objects.values_list("status", flat=True).get(pk=payout.pk)


def _after_error(payout: Payout, error: DarajaError) -> None:
    if error.code == "duplicate":
        payout_mark_unknown(
            payout=payout, reason="Daraja already has this payout's id: asking how it ended."
        )
    elif error.may_have_reached_customer:
        payout_mark_unknown(payout=payout, reason=f"{error.message} Asking M-Pesa how it ended.")
    elif not error.sent or error.retryable:
        # Nothing reached Daraja, or it refused for now (rate limit): the same id goes again.
        Payout.objects.filter(pk=payout.pk, status=S.SENDING).update(
            status=S.QUEUED, result_description=error.message[:255]
        )
    else:
        payout_mark_failed(
            payout=payout, code=error.code, description=error.message, how="refused by Daraja"
        )


def payout_retry(*, payout: Payout, by: User) -> Payout:
    """A new attempt for a payout M-Pesa says was not paid: a new row with a new id, linked
    to the old one. Refused for anything not proven unpaid."""
    with transaction.atomic():
        old = Payout.objects.select_for_update().select_related("user__profile").get(pk=payout.pk)
        if old.status != S.FAILED:
            raise PayoutError("Only a payout M-Pesa says was not paid gets a new attempt.")
        if Payout.objects.filter(retry_of=old).exists():
            raise PayoutError("This payout has been tried again already.")
        try:
            with transaction.atomic():
                return Payout.objects.create(
                    pay_run_id=old.pay_run_id,
                    payslip_id=old.payslip_id,
                    user=old.user,
                    phone_number=getattr(old.user.profile, "phone_number", "") or old.phone_number,
                    amount=old.amount,
                    originator_conversation_id=f"SF-{uuid.uuid4()}",
                    retry_of=old,
                    created_by=by,
                )
        except IntegrityError as error:
            raise PayoutError("Another payout of this payslip may still pay.") from error


def payout_summary(pay_run: PayRun) -> dict:
    """Counts and totals of a run's payouts by state, and what is still to pay out."""
    rows = Payout.objects.filter(pay_run=pay_run).values_list("status", "amount", "needs_review")
    by_status: dict[str, list[int]] = {}
    review = 0
    for status, amount, flagged in rows:
        by_status.setdefault(status, []).append(amount)
        review += flagged
    return {
        "states": [
            (S(status).label, status, len(amounts), sum(amounts))
            for status, amounts in sorted(by_status.items())
        ],
        "paid": sum(by_status.get(S.COMPLETED, [])),
        "open": sum(len(by_status.get(status, [])) for status in Payout.OPEN),
        "review": review,
        "due": len(payouts_due(pay_run)) if pay_run.status == PayRun.Status.APPROVED else 0,
    }
