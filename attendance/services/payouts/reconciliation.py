"""Asking Daraja (Transaction Status) about payouts whose result has not come.

A payout is never settled by sending it again: a submitted or unknown payout with no result
after PAYOUT_QUERY_AFTER_SECONDS is asked about, and its answer (posted to our status URL) is
settled by the inbox like any result. One left *sending* (its worker died around the POST)
is unknown first. After PAYOUT_REVIEW_AFTER_CHECKS questions without an answer that settles
it, it is flagged for a person with the reason, and no longer asked about.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from attendance.models import Payout
from attendance.mpesa import b2c_client, b2c_initiator
from attendance.mpesa.client import DarajaError

from .inbox import payout_results_process_pending
from .settlement import payout_mark_unknown
from .submission import payout_result_url

logger = logging.getLogger(__name__)
S = Payout.Status
BATCH = 200


def payout_check(*, payout: Payout, now: datetime | None = None) -> str:
    """Ask Transaction Status how this payout ended (the answer comes to our status URL)."""
    now = now or timezone.now()
    if payout.status == S.SENDING:
        payout_mark_unknown(payout=payout, reason="Its worker stopped around the POST.")
    if payout.status in (S.COMPLETED, S.FAILED, S.QUEUED):
        return "settled" if payout.status != S.QUEUED else "not sent yet"
    if payout.status_checks >= settings.PAYOUT_REVIEW_AFTER_CHECKS:
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
        logger.warning(
            "Transaction Status for payout %s failed: %s", payout.originator_conversation_id, error
        )
        return "error"
    return "asked"


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
