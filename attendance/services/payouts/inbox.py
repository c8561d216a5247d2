"""Payout results: every body stored raw and committed, then processed; the sweeper's task.

Kinds, by the URL they came to: a B2C result, a queue timeout, a Transaction Status result,
an Account Balance result. Processing correlates by OriginatorConversationID (for a status
result, the *parameter* naming the original, not the envelope's) and settles through
settlement.py, which makes duplicates and reorderings harmless.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from attendance.models import Payout, PayoutResult
from attendance.mpesa.results import (
    b2c_payout,
    parse_result,
    text,
    transaction_status,
)
from attendance.services.payments.inbox import body_as_text
from attendance.services.queueing import queue_after_commit

from .settlement import payout_mark_failed, payout_mark_paid, payout_mark_unknown

logger = logging.getLogger(__name__)
R = PayoutResult.Status
K = PayoutResult.Kind


def payout_result_receive(
    *, kind: str, body: bytes, remote_addr: str | None, oversized: bool = False
) -> tuple[int, int]:
    """Store a body raw and commit it, then queue its processing. Returns (row id, status):
    200, or 400/413 for a body that is not a result (kept, never processed)."""
    raw, exact = body_as_text(body[: settings.PAYOUT_MAX_BYTES])
    row = PayoutResult(kind=kind, raw_body=raw, raw_bytes=exact, remote_addr=remote_addr)
    status = 200
    try:
        result = parse_result(json.loads(body)) if not oversized else None
    except Exception as error:  # any body at all is stored; only what parses is processed
        row.status, status = R.MALFORMED, 400
        row.detail = text(f"Not a result: {type(error).__name__}: {error}", 500)
    else:
        if result is None:
            row.status, status = R.MALFORMED, 413
            row.detail = f"Body larger than {settings.PAYOUT_MAX_BYTES} bytes (truncated)."
        else:
            row.conversation_id = result.conversation_id
            row.originator_conversation_id = result.originator_conversation_id
            if kind == K.BALANCE:
                row.status = R.NOTED  # read by the float check that asked for it
    with transaction.atomic():
        row.save()
        if row.status == R.RECEIVED:
            queue_after_commit(payout_result_process_task, row.pk)
    return row.pk, status


@shared_task(name="attendance.tasks.payout_result_process_task", ignore_result=True)
def payout_result_process_task(result_id: int) -> str:
    return payout_result_process(result_id=result_id)


def payout_result_process(*, result_id: int) -> str:
    """Apply one stored result; safe to repeat. Returns the row's status afterwards.

    The attempt is counted and committed before processing, so a row whose processing
    cannot even be saved still counts towards quarantine; processing runs in a savepoint,
    so its failure leaves the row's own update possible. A row that fails
    PAYOUT_RESULT_MAX_ATTEMPTS times is quarantined: not retried, listed for a person.
    """
    with transaction.atomic():
        row = PayoutResult.objects.select_for_update().get(pk=result_id)
        if row.status not in (R.RECEIVED, R.ERROR):
            return row.status
        row.attempts += 1
        row.save(update_fields=["attempts"])
    with transaction.atomic():
        row = PayoutResult.objects.select_for_update().get(pk=result_id)
        if row.status not in (R.RECEIVED, R.ERROR):
            return row.status
        try:
            with transaction.atomic():
                outcome, payout = _apply(row)
        except Exception as error:  # a bug or the database: keep the row, retry, then stop
            logger.exception("Payout result %s could not be processed", row.pk)
            exhausted = row.attempts >= settings.PAYOUT_RESULT_MAX_ATTEMPTS
            row.status = R.QUARANTINED if exhausted else R.ERROR
            row.detail = text(f"{type(error).__name__}: {error}", 500)
        else:
            row.status = {
                "processed": R.PROCESSED,
                "duplicate": R.DUPLICATE,
                "conflict": R.PROCESSED,
                "noted": R.NOTED,
                "unmatched": R.UNMATCHED,
            }[outcome]
            row.payout = payout
            row.processed_at = timezone.now()
            row.detail = text(row.detail, 500)
        row.save()
    return row.status


def payout_result_reprocess(*, result: PayoutResult) -> str:
    """A person asks for a quarantined (or erroring) row to be tried again from scratch."""
    PayoutResult.objects.filter(pk=result.pk, status__in=[R.QUARANTINED, R.ERROR]).update(
        status=R.RECEIVED, attempts=0
    )
    return payout_result_process(result_id=result.pk)


def payout_result_set_aside(*, result: PayoutResult, reason: str) -> bool:
    """A person decides a stored row is not to be processed (it stays, with the reason)."""
    return bool(
        PayoutResult.objects.filter(
            pk=result.pk, status__in=[R.RECEIVED, R.ERROR, R.QUARANTINED]
        ).update(status=R.SET_ASIDE, detail=text(f"Set aside: {reason}", 500))
    )


def _apply(row: PayoutResult) -> tuple[str, Payout | None]:
    result = parse_result(json.loads(row.raw_body))
    if row.kind == K.BALANCE:
        return "noted", None
    if row.kind == K.STATUS:
        status = transaction_status(result)
        payout = Payout.objects.filter(
            originator_conversation_id=status.original_conversation_id
        ).first()
        if payout is None:
            row.detail = "A status answer that names no payout of ours (or failed): kept."
            return "unmatched", None
        if status.paid:
            return payout_mark_paid(
                payout=payout,
                receipt=status.receipt,
                amount=status.amount,
                how="by Transaction Status",
            ), payout
        if status.not_paid:
            return payout_mark_failed(
                payout=payout,
                code=status.state,
                description=f"M-Pesa says {status.state.lower()}",
                how="by Transaction Status",
            ), payout
        row.detail = f"Still open at M-Pesa ({status.state or result.description}); ask later."
        return "noted", payout
    payout = Payout.objects.filter(
        originator_conversation_id=result.originator_conversation_id
    ).first()
    if payout is None:
        row.detail = "Names no payout of ours: kept for review."
        return "unmatched", None
    if row.kind == K.TIMEOUT:
        # The queue gave up or something timed out: the outcome is unknown, never "failed".
        payout_mark_unknown(payout=payout, reason=f"Queue timeout: {result.description}")
        return "noted", payout
    if result.succeeded:
        paid = b2c_payout(result)
        return payout_mark_paid(
            payout=payout,
            receipt=paid.receipt,
            amount=paid.amount,
            receiver=paid.receiver,
            paid_at=paid.completed_at,
            utility_balance=paid.utility_balance,
            how="by M-Pesa's result",
        ), payout
    return payout_mark_failed(
        payout=payout,
        code=result.result_code,
        description=result.description,
        how="by M-Pesa's result",
    ), payout


def payout_results_process_pending(*, now: datetime | None = None) -> int:
    """The sweeper's part: results whose processing was lost or failed, oldest first."""
    now = now or timezone.now()
    ids = list(
        PayoutResult.objects.filter(
            status__in=[R.RECEIVED, R.ERROR], received_at__lte=now - timedelta(seconds=5)
        )
        .exclude(kind=K.BALANCE)
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
    for pk in ids:
        try:
            payout_result_process(result_id=pk)
        except Exception:  # the database refused even the bookkeeping: next row, next run
            logger.exception("Payout result %s: processing failed outside its savepoint", pk)
    return len(ids)
