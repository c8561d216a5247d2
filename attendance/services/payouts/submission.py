"""Paying an approved pay run out: the float check, a payout row per payslip, one POST each.

A payout row and its OriginatorConversationID are committed before its POST, and one worker
claims it (queued -> sending) before sending, so two workers never send it; the claim also
caps the amount at what the member is owed at that moment. What the POST leaves decides the
state: accepted -> submitted; proven refused by Daraja (a 4xx with its error body) -> failed;
not sent at all, or rate-limited -> queued again (same id); anything else after sending (a
timeout, a broken connection, a 5xx such as "System internal error.", an unreadable reply,
"duplicate id") -> unknown, settled only by a result or Transaction Status. An unknown payout
Daraja says it has never seen is sent again with the *same* id (reconciliation.py): Daraja
refuses a repeated id, so that can never pay twice.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from attendance.models import Payout, PayoutResult, PayRun, PayRunMember, Profile, member_name
from attendance.mpesa import b2c_client, b2c_initiator
from attendance.mpesa.b2c import B2C_MIN_AMOUNT
from attendance.mpesa.results import ResultFormatError, account_balances, parse_result
from attendance.mpesa.transport import DarajaError, DarajaValidationError
from attendance.phones import mask_phone
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.errors import ServiceError
from attendance.wording import kes

from .settlement import payout_mark_failed, payout_mark_unknown

logger = logging.getLogger(__name__)
S = Payout.Status
# Payouts that may still pay: what they carry is not owed to the member again.
MAY_PAY = (S.HELD, *Payout.OPEN)


class PayoutError(ServiceError):
    """A pay run that cannot be paid out now; the message says why (and the figures)."""


def payout_result_url(kind: str) -> str:
    return f"{settings.MPESA_B2C_RESULT_URL}/{kind}/{settings.MPESA_B2C_RESULT_TOKEN}/"


def payout_amount(slip: PayRunMember) -> int:
    """Whole shillings (B2C takes no cents): the cents stay on the member's balance."""
    return int(slip.to_pay.to_integral_value(rounding=ROUND_FLOOR))


def whole_shillings_down(amount: Decimal) -> int:
    return max(int(amount.to_integral_value(rounding=ROUND_FLOOR)), 0)


@dataclass(frozen=True)
class Due:
    """A payslip to pay out: what it says, and what the member is owed now (the lower one
    is paid; a charge or payment since approval changes the second)."""

    slip: PayRunMember
    payslip_amount: int
    amount: int

    @property
    def changed(self) -> bool:
        return self.amount != self.payslip_amount


def payslips_that_may_pay(queryset: QuerySet[PayRunMember]) -> QuerySet[PayRunMember]:
    """The one rule for *Pay out* and *Pay again*: a payslip may get a (new) payout only when
    every payout it had is proven unpaid: failed, with no receipt and nothing flagged (a
    result saying "paid" after a failure flags it, and a person decides)."""
    may_have_paid = Payout.objects.filter(
        Q(payslip=OuterRef("pk"))
        & (~Q(status=S.FAILED) | Q(needs_review=True) | ~Q(receipt_number=""))
    )
    return queryset.exclude(Exists(may_have_paid))


def members_owed_now(user_ids: list[int]) -> dict[int, Decimal]:
    """What each member is owed now: minus their balance, less payouts that may still pay
    (those reach the ledger when they settle)."""
    balances = dict(Profile.objects.filter(user_id__in=user_ids).values_list("user_id", "balance"))
    in_flight = dict(
        Payout.objects.filter(user_id__in=user_ids, status__in=MAY_PAY)
        .values("user_id")
        .annotate(total=Sum("amount"))
        .values_list("user_id", "total")
    )
    return {
        user_id: -balances.get(user_id, Decimal(0)) - Decimal(in_flight.get(user_id) or 0)
        for user_id in user_ids
    }


def payouts_due(pay_run: PayRun) -> list[Due]:
    """The payslips of an approved run that may pay (see payslips_that_may_pay), each with
    what would be paid now: the payslip's amount, capped at what the member is owed now."""
    slips = list(
        payslips_that_may_pay(
            PayRunMember.objects.filter(pay_run=pay_run, to_pay__gte=B2C_MIN_AMOUNT)
        )
        .select_related("user__profile")
        .order_by("pk")
    )
    owed = members_owed_now([slip.user_id for slip in slips])
    due = []
    for slip in slips:
        amount = min(payout_amount(slip), whole_shillings_down(owed[slip.user_id]))
        if amount >= B2C_MIN_AMOUNT:
            due.append(Due(slip, payout_amount(slip), amount))
    return due


def payout_float_check(*, wait_seconds: float | None = None) -> Decimal:
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


def _new_number(profile: Profile) -> bool:
    changed = profile.phone_changed_at
    hold = timedelta(days=settings.PAYOUT_NEW_NUMBER_HOLD_DAYS)
    return changed is not None and changed > timezone.now() - hold


def payouts_prepare(*, pay_run: PayRun, by: User, partial: bool = False) -> list[Payout]:
    """The float check, then a payout per payslip due, committed (before any POST): queued,
    or held when the member's number changed in the last PAYOUT_NEW_NUMBER_HOLD_DAYS (a
    second Finance member releases those: payouts_release).

    A run larger than the utility account's available funds is refused with the figures;
    `partial` (an explicit choice) pays the payslips that fit, in order.
    """
    run = PayRun.objects.get(pk=pay_run.pk)
    if run.status != PayRun.Status.APPROVED:
        raise PayoutError("Only an approved pay run is paid out.")
    due = payouts_due(run)
    if not due:
        raise PayoutError(
            "Nothing to pay out: every payslip is paid, on its way, under KES 10, or no longer "
            "owed (the member's balance changed since approval)."
        )
    missing = [d.slip for d in due if not getattr(d.slip.user.profile, "phone_number", "")]
    needed = Decimal(sum(d.amount for d in due))
    try:
        available = payout_float_check()
    except DarajaError as error:
        raise PayoutError(f"M-Pesa could not be asked for the balance: {error}") from error
    except ValueError as error:  # B2C not configured
        raise PayoutError(str(error)) from error
    if available < needed and not partial:
        raise PayoutError(
            f"The B2C utility account has {kes(available)}; this run needs {kes(needed)}. "
            "Top it up (MMF to Utility on the M-Pesa portal), or pay out part of the run."
        )
    payouts = []
    left = available
    with transaction.atomic():
        for d in due:
            slip, amount = d.slip, d.amount
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
                            capped_from=d.payslip_amount if d.changed else None,
                            status=S.HELD if _new_number(slip.user.profile) else S.QUEUED,
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


def _claim(payout_id: int, *, resend: bool) -> Payout | None:
    """Take a payout for its POST (queued -> sending; `resend`: unknown -> sending), or None
    when another worker has it or it is settled.

    A first claim decides the amount under the member's ledger lock (the payout row, then
    the profile: settlement's order, so the two never deadlock): never more than they are
    owed now, less their other payouts on the way. Owed less than the B2C minimum: the
    payout fails before sending ("not_owed"). A resend keeps the body it was first sent with.
    """
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update(of=("self",))
            .select_related("pay_run")
            .get(pk=payout_id)
        )
        if payout.status != (S.UNKNOWN if resend else S.QUEUED):
            return None
        if not resend:
            profile = Profile.objects.select_for_update().get(user_id=payout.user_id)
            if profile.phone_number != payout.phone_number:
                # The number changed after the payout was drawn up: never pay the old one,
                # and the new one only after a second approval.
                payout.status = S.HELD
                payout.phone_number = profile.phone_number or payout.phone_number
                payout.result_description = "The member's number changed: held for approval."
                payout.save()
                return None
            others = (
                Payout.objects.filter(user_id=payout.user_id, status__in=MAY_PAY)
                .exclude(pk=payout.pk)
                .aggregate(total=Sum("amount"))["total"]
                or 0
            )
            owed = whole_shillings_down(-profile.balance - others)
            if owed < payout.amount:
                if owed < B2C_MIN_AMOUNT:
                    payout_mark_failed(
                        payout=payout,
                        code="not_owed",
                        description=(
                            f"Owed {kes(max(owed, 0))} now, not {kes(payout.amount, whole=True)}"
                        ),
                        how="not sent",
                    )
                    return None
                payout.capped_from = payout.capped_from or payout.amount
                payout.amount = owed
        payout.status = S.SENDING
        payout.submitted_at = timezone.now()
        payout.sends += 1
        payout.save()
    return payout


def payout_submit(*, payout_id: int, resend: bool = False) -> str:
    """POST one queued payout to Daraja (`resend`: an unknown one again, with the same
    OriginatorConversationID, when Daraja could not say whether the first arrived). Returns
    its status afterwards."""
    payout = _claim(payout_id, resend=resend)
    if payout is None:
        return Payout.objects.values_list("status", flat=True).get(pk=payout_id)
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
            # Whom we mean to pay, on the statement beside the payout (Daraja echoes nothing
            # of it; the M-Pesa registered name comes back in the result, and is compared).
            occasion=member_name(payout.user)[:100],
        )
    except DarajaValidationError as error:
        if resend:  # the same body went once already: it cannot be invalid now
            payout_mark_unknown(payout=payout, reason=error.message)
        else:
            payout_mark_failed(
                payout=payout, code="invalid", description=error.message, how="not sent"
            )
    except DarajaError as error:
        _after_error(payout, error, resend=resend)
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


def _after_error(payout: Payout, error: DarajaError, *, resend: bool) -> None:
    if error.code == "duplicate":
        payout_mark_unknown(
            payout=payout, reason="Daraja already has this payout's id: asking how it ended."
        )
    elif error.may_have_reached_customer or resend:
        # A resend exists because the first POST may have arrived: whatever this one's
        # answer, the payout stays unknown until a result or Transaction Status says.
        payout_mark_unknown(payout=payout, reason=f"{error.message} Asking M-Pesa how it ended.")
    elif not error.sent or error.retryable:
        # Nothing reached Daraja, or it turned the request away for now (rate limit): the
        # same id goes again.
        Payout.objects.filter(pk=payout.pk, status=S.SENDING).update(
            status=S.QUEUED, result_description=error.message[:255]
        )
    else:
        payout_mark_failed(
            payout=payout, code=error.code, description=error.message, how="refused by Daraja"
        )


def payout_summary(pay_run: PayRun) -> dict:
    """Counts and totals of a run's payouts by state, what is still to pay out, and the
    payslips whose member is owed less now than the payslip says."""
    due = payouts_due(pay_run) if pay_run.status == PayRun.Status.APPROVED else []
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
        "due": len(due),
        "changed": [d for d in due if d.changed],
        "held": by_status.get(S.HELD, []),
    }
