"""The rules that settle a payout, applied once under its row lock.

Paid: the payout completes, its receipt and the utility balance are kept, one *payout* ledger
entry (source: the payout; the database refuses a second) brings the member's credit back
toward zero, and the member gets a receipt. Not paid: the payout fails with Daraja's reason;
money is still owed, and only a person starts a new attempt. A result that contradicts one
already applied (paid after failed, or the other way) changes nothing and is flagged.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attendance.models import (
    BulkJob,
    BulkJobItem,
    EmailNotification,
    LedgerEntry,
    Payout,
    member_name,
)
from attendance.phones import mask_phone
from attendance.services.core.inbox import Outcome
from attendance.services.core.urls import absolute_url
from attendance.services.ledger import ledger_post
from attendance.services.messaging.channels import member_message
from attendance.wording import kes

from .reasons import payout_not_paid_words

logger = logging.getLogger(__name__)
S = Payout.Status


def _locked(payout: Payout) -> Payout:
    return Payout.objects.select_for_update().select_related("user").get(pk=payout.pk)


def payout_mark_paid(
    *,
    payout: Payout,
    receipt: str,
    amount: Decimal | None,
    receiver: str = "",
    paid_at: datetime | None = None,
    utility_balance: Decimal | None = None,
    how: str,
) -> Outcome:
    """Daraja says the payout paid: PROCESSED, DUPLICATE (we knew), or PROCESSED for a report
    that contradicts what we recorded, which is flagged for a person and changes nothing."""
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status == S.COMPLETED:
            return Outcome.DUPLICATE
        if payout.status == S.FAILED:
            # We recorded it as not paid (and perhaps paid again): a person must look.
            _flag(payout, f"Reported paid ({receipt}) after it was recorded as not paid.")
            return Outcome.PROCESSED  # settled as far as it can be: flagged above
        if amount is not None and amount != payout.amount:
            _flag(payout, f"Paid KES {amount}, we asked for KES {payout.amount}.")
        if mismatch := receiver_mismatch(payout, receiver):
            _flag(payout, mismatch)
        payout.status = S.COMPLETED
        payout.receipt_number = receipt[:40]
        payout.receiver_name = receiver[:200]
        payout.paid_at = paid_at or timezone.now()
        payout.result_code = "0"
        payout.result_description = f"Paid ({how})."
        if utility_balance is not None:
            payout.utility_balance = utility_balance
        payout.save()
        _job_item_paid(payout)
        entry = ledger_post(
            user=payout.user,
            kind=LedgerEntry.Kind.PAYOUT,
            amount=Decimal(payout.amount),
            description=f"M-Pesa payout {receipt}"[:255],
            source=payout,
        )
        member_message(
            user=payout.user,
            notification_type=EmailNotification.Type.PAYOUT_RECEIPT,
            context={
                "payout": payout,
                "balance": entry.balance_after,
                "phone": mask_phone(payout.phone_number),
                "pay_url": absolute_url("attendance:my_pay"),
            },
        )
    logger.info("Payout %s paid, receipt %s", payout.originator_conversation_id, receipt)
    return Outcome.PROCESSED


def receiver_mismatch(payout: Payout, receiver: str) -> str:
    """Why M-Pesa's "<MSISDN> - <REGISTERED NAME>" is not the member we paid, or "".

    A number in it other than ours, or a registered name sharing no word with the member's
    names (a colleague's SIM behind a stolen password), is flagged for a person. A masked
    number or an empty name says nothing (whether Daraja masks them is *unconfirmed*)."""
    number, _, name = receiver.partition(" - ")
    number = number.strip()
    if number.isdigit() and len(number) == 12 and number != payout.phone_number:
        return f"M-Pesa paid {mask_phone(number)}, not {mask_phone(payout.phone_number)}."
    theirs = set(re.findall(r"[a-z]{2,}", name.lower()))
    ours = set(
        re.findall(r"[a-z]{2,}", f"{payout.user.first_name} {payout.user.last_name}".lower())
    )
    if "*" in name or not theirs or not ours or theirs & ours:
        return ""
    return f"The number is registered to {name.strip()[:60]}, not {member_name(payout.user)}."


def payout_mark_failed(*, payout: Payout, code: str, description: str, how: str) -> Outcome:
    """Daraja proves the payout did not pay: PROCESSED, DUPLICATE, or PROCESSED and flagged
    when it contradicts what we recorded (as payout_mark_paid)."""
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status == S.FAILED:
            return Outcome.DUPLICATE
        if payout.status == S.COMPLETED:
            _flag(payout, f"Reported not paid ({code}) after it was recorded as paid.")
            return Outcome.PROCESSED  # settled as far as it can be: flagged above
        payout.status = S.FAILED
        payout.result_code = str(code)[:20]
        payout.result_description = f"{description} ({how})"[:255]
        payout.save()
        _job_item_failed(payout)
        words = payout_not_paid_words(payout.result_code, description)
        member_message(
            user=payout.user,
            notification_type=EmailNotification.Type.PAYOUT_NOT_PAID,
            context={
                "payout": payout,
                "reason": words.reason,
                "action": words.member_action,
                "short": words.text,
                "phone": mask_phone(payout.phone_number),
                "account_url": absolute_url("attendance:account"),
                "pay_url": absolute_url("attendance:my_pay"),
            },
        )
    return Outcome.PROCESSED


def payout_failure_text(payout: Payout) -> str:
    """Why a failed payout was not paid and what Finance does next, in plain words."""
    words = payout_not_paid_words(payout.result_code, payout.result_description)
    return f"{words.reason[:1].upper()}{words.reason[1:]}. {words.finance_action}"


def _job_item_failed(payout: Payout) -> None:
    """The payouts job said "sent" when Daraja took the POST; its result says not paid: the
    job's page says so too (one row per payout; the job's counters follow)."""
    items = BulkJobItem.objects.filter(
        job__kind=BulkJob.Kind.SUBMIT_PAYOUTS,
        target_id=payout.pk,
        status=BulkJobItem.Status.DONE,
    )
    for item in items.select_related("job"):
        item.status = BulkJobItem.Status.FAILED
        item.outcome = f"Not paid: {payout_failure_text(payout)}"[:500]
        item.save(update_fields=["status", "outcome", "updated_at"])
        BulkJob.objects.filter(pk=item.job_id, done__gt=0).update(
            done=F("done") - 1, failed=F("failed") + 1
        )


def _job_item_paid(payout: Payout) -> None:
    """The job's row of a payout says it was paid once M-Pesa says so, not only "sent"."""
    BulkJobItem.objects.filter(
        job__kind=BulkJob.Kind.SUBMIT_PAYOUTS,
        target_id=payout.pk,
        status=BulkJobItem.Status.DONE,
    ).update(
        outcome=f"{kes(payout.amount, whole=True)} to {mask_phone(payout.phone_number)}: paid, "
        f"M-Pesa code {payout.receipt_number}."[:500],
        updated_at=timezone.now(),
    )


def payout_mark_unknown(*, payout: Payout, reason: str) -> bool:
    """Money may have moved and nobody knows yet: only Transaction Status may settle it."""
    with transaction.atomic():
        payout = _locked(payout)
        if payout.status not in (S.SENDING, S.SUBMITTED, S.QUEUED):
            return False
        payout.status = S.UNKNOWN
        payout.result_description = reason[:255]
        payout.save(update_fields=["status", "result_description", "updated_at"])
    return True


def _flag(payout: Payout, reason: str) -> None:
    payout.needs_review = True
    payout.review_reason = reason[:255]
    payout.save(update_fields=["needs_review", "review_reason", "updated_at"])
    logger.warning("Payout %s needs review: %s", payout.originator_conversation_id, reason)
