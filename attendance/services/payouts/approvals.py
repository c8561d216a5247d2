"""A second look before money goes again: payouts held for a new number, released by a
second Finance member, and a new attempt for a payout proven unpaid (same rule as *Pay out*:
`payslips_that_may_pay`, for what the member is owed now)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from attendance.models import Payout, PayRun, PayRunMember, member_name
from attendance.mpesa.b2c import B2C_MIN_AMOUNT
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.wording import kes

from .submission import (
    PayoutError,
    members_owed_now,
    payout_amount,
    payslips_that_may_pay,
    whole_shillings_down,
)

S = Payout.Status


def payouts_held(pay_run: PayRun) -> list[Payout]:
    return list(
        Payout.objects.filter(pay_run=pay_run, status=S.HELD)
        .select_related("user__profile", "created_by")
        .order_by("pk")
    )


def payouts_release(*, pay_run: PayRun, by: User) -> list[Payout]:
    """A second Finance member releases the run's held payouts to the queue (each to the
    member's number now). Refused to whoever drew them up: the point is a second person."""
    released = []
    with transaction.atomic():
        held = list(
            Payout.objects.select_for_update(of=("self",))
            .filter(pay_run=pay_run, status=S.HELD)
            .select_related("user__profile")
            .order_by("pk")
        )
        if not held:
            raise PayoutError("No payout of this run is waiting for approval.")
        for payout in held:
            if payout.created_by_id == by.pk:
                raise PayoutError(
                    "A held payout needs a second person: someone other than who pressed "
                    "Pay out releases it."
                )
            phone = getattr(payout.user.profile, "phone_number", "")
            if not phone:
                continue
            payout.status, payout.phone_number, payout.released_by = S.QUEUED, phone, by
            payout.result_description = ""
            payout.save()
            released.append(payout)
        audit_record(
            AuditEvent.PAYOUT_SUBMITTED,
            actor=by,
            target=pay_run,
            after={"released": len(released)},
            details={"held_for": "new numbers"},
        )
    return released


def payout_retry(*, payout: Payout, by: User) -> Payout:
    """A new attempt for a payout M-Pesa says was not paid: a new row with a new id, linked
    to the old one, for what the member is owed now. Refused unless the payslip may pay
    again by the same rule as *Pay out* (payslips_that_may_pay)."""
    with transaction.atomic():
        # Only the payout's own row: PostgreSQL cannot lock the nullable side of the outer
        # join a select_related to the profile would add.
        old = (
            Payout.objects.select_for_update(of=("self",))
            .select_related("user__profile")
            .get(pk=payout.pk)
        )
        if old.status != S.FAILED:
            raise PayoutError("Only a payout M-Pesa says was not paid gets a new attempt.")
        if Payout.objects.filter(retry_of=old).exists():
            raise PayoutError("This payout has been tried again already.")
        if not payslips_that_may_pay(PayRunMember.objects.filter(pk=old.payslip_id)).exists():
            raise PayoutError(
                "Another payout of this payslip may have paid (or one is flagged for review): "
                "settle that first."
            )
        owed = members_owed_now([old.user_id])[old.user_id]
        amount = min(payout_amount(old.payslip), whole_shillings_down(owed))
        if amount < B2C_MIN_AMOUNT:
            raise PayoutError(
                f"Nothing to pay again: {member_name(old.user)} is owed "
                f"{kes(max(owed, Decimal(0)))} now."
            )
        try:
            with transaction.atomic():
                return Payout.objects.create(
                    pay_run_id=old.pay_run_id,
                    payslip_id=old.payslip_id,
                    user=old.user,
                    phone_number=getattr(old.user.profile, "phone_number", "") or old.phone_number,
                    amount=amount,
                    originator_conversation_id=f"SF-{uuid.uuid4()}",
                    retry_of=old,
                    created_by=by,
                )
        except IntegrityError as error:
            raise PayoutError("Another payout of this payslip may still pay.") from error
