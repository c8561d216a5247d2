"""Asking Daraja (Transaction Status) about payouts whose result has not come.

A payout is never settled by paying it again: a submitted or unknown payout with no result
after PAYOUT_QUERY_AFTER_SECONDS is asked about, and its answer (posted to our status URL) is
settled by the inbox like any result. One left *sending* (its worker died around the POST)
is unknown first. When Daraja says it has no transaction with the payout's id (its worker
died before the POST left), or no question has brought an answer, the payout is sent again
with the same OriginatorConversationID and body (Daraja's B2C documentation, reconciling a payout):
Daraja refuses an id it has seen ("Duplicate OriginatorConversationID"), which proves the
first arrived, so a resend can pay at most once. After PAYOUT_REVIEW_AFTER_CHECKS questions
without an answer that settles it, it is flagged for a person, who may close it by hand
after checking the M-Pesa portal (`payout_close`: its own permission, a reason, audited).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from attendance.models import Payout
from attendance.mpesa import b2c_client, b2c_initiator
from attendance.mpesa.transport import DarajaError
from attendance.services.core.audit import AuditEvent, audit_record

from .inbox import payout_results_process_pending
from .settlement import payout_mark_failed, payout_mark_paid, payout_mark_unknown
from .submission import PayoutError, payout_result_url, payout_submit

logger = logging.getLogger(__name__)
S = Payout.Status
BATCH = 200
# Daraja's Transaction Status for an id it does not know (the simulator's answer; what the
# live API sends is not documented by Safaricom): a 404 with this code.
NOT_FOUND = "404.003.01"
# POSTs of one payout at most: the first and two resends with the same id.
MAX_SENDS = 3


def _resend(payout: Payout, why: str) -> str:
    if payout.sends >= MAX_SENDS:
        return "not resent"
    logger.warning(
        "Payout %s sent again with the same id: %s", payout.originator_conversation_id, why
    )
    payout_submit(payout_id=payout.pk, resend=True)
    return "resent"


def payout_check(*, payout: Payout, now: datetime | None = None) -> str:
    """Ask Transaction Status how this payout ended (the answer comes to our status URL)."""
    now = now or timezone.now()
    if payout.status == S.SENDING:
        payout_mark_unknown(payout=payout, reason="Its worker stopped around the POST.")
    if payout.status in (S.COMPLETED, S.FAILED, S.QUEUED):
        return "settled" if payout.status != S.QUEUED else "not sent yet"
    if payout.status_checks >= settings.PAYOUT_REVIEW_AFTER_CHECKS:
        if payout.sends < 2:  # no answer to any question: the POST may never have arrived
            return _resend(payout, "no status answer")
        Payout.objects.filter(pk=payout.pk, needs_review=False).update(
            needs_review=True,
            review_reason=(
                f"No answer from M-Pesa after {payout.status_checks} status checks: check the "
                "receipt on the M-Pesa portal. It is not paid again by itself."
            ),
        )
        return "flagged"
    Payout.objects.filter(pk=payout.pk).update(
        status_checks=F("status_checks") + 1, last_checked_at=now
    )
    try:
        b2c_client().transaction_status(
            initiator=b2c_initiator(),
            originator_conversation_id=payout.originator_conversation_id,
            transaction_id=payout.receipt_number,
            result_url=payout_result_url("status"),
            queue_timeout_url=payout_result_url("status"),
        )
    except DarajaError as error:
        if error.code == NOT_FOUND:
            return _resend(payout, "Daraja has no transaction with its id")
        logger.warning(
            "Transaction Status for payout %s failed: %s", payout.originator_conversation_id, error
        )
        return "error"
    return "asked"


def payout_close(*, payout: Payout, by: User, paid: bool, receipt: str = "", reason: str) -> str:
    """A person settles a payout whose outcome M-Pesa has not told us, after looking it up on
    the M-Pesa portal: paid (with the receipt they saw) or not paid. Only an unknown,
    submitted or flagged open payout; the caller checks the permission (*Can close payouts
    whose outcome is unknown*) and the second factor. Audited with the reason."""
    reason = reason.strip()
    receipt = receipt.strip().upper()
    if len(reason) < 5:
        raise PayoutError("Say what you checked on the M-Pesa portal (at least a few words).")
    if paid and not (8 <= len(receipt) <= 12 and receipt.isalnum()):
        raise PayoutError("Give the M-Pesa receipt you found (10 letters and digits).")
    if payout.status not in (S.UNKNOWN, S.SUBMITTED, S.SENDING):
        raise PayoutError("Only a payout whose outcome is unknown can be closed by hand.")
    how = f"closed by {by.get_username()}: {reason}"
    with transaction.atomic():
        if paid:
            outcome = payout_mark_paid(payout=payout, receipt=receipt, amount=None, how=how)
        else:
            outcome = payout_mark_failed(
                payout=payout, code="closed", description="Not paid (checked by hand)", how=how
            )
        audit_record(
            AuditEvent.PAYOUT_CLOSED,
            actor=by,
            target=payout,
            before={"status": payout.status},
            after={"status": "completed" if paid else "failed", "receipt": receipt},
            details={"reason": reason, "outcome": outcome},
        )
    return outcome


def payouts_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """The beat job: stored results not processed yet, then status questions for payouts
    whose outcome is overdue."""
    now = now or timezone.now()
    processed = payout_results_process_pending(now=now)
    wait = timedelta(seconds=settings.PAYOUT_QUERY_AFTER_SECONDS)
    due = list(
        Payout.objects.filter(
            status__in=[S.SENDING, S.SUBMITTED, S.UNKNOWN],
            submitted_at__lte=now - wait,
            needs_review=False,
        )
        .filter(Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=now - wait))
        .order_by("submitted_at")[:BATCH]
    )
    outcomes: dict[str, int] = {"results": processed}
    for payout in due:
        outcome = payout_check(payout=payout, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
