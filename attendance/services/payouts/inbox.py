"""Payout results: every body stored raw and committed, then processed; the sweeper's task.

Kinds, by the URL they came to: a B2C result, a queue timeout, a Transaction Status result,
an Account Balance result. Processing correlates by OriginatorConversationID (for a status
result, the *parameter* naming the original, not the envelope's) and settles through
settlement.py, which makes duplicates and reorderings harmless.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from celery import shared_task

from attendance.models import Payout, PayoutResult
from attendance.mpesa.results import (
    b2c_payout,
    parse_result,
    text,
    transaction_status,
)
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register

from .settlement import payout_mark_failed, payout_mark_paid, payout_mark_unknown

logger = logging.getLogger(__name__)
R = PayoutResult.Status
K = PayoutResult.Kind


@shared_task(name="attendance.tasks.payout_result_process_task", ignore_result=True)
def payout_result_process_task(result_id: int) -> str:
    return payout_results.process(result_id)


class PayoutResults(Inbox):
    model = PayoutResult
    label = "Payout result"
    max_bytes_setting = "PAYOUT_MAX_BYTES"
    max_attempts_setting = "PAYOUT_RESULT_MAX_ATTEMPTS"
    task = payout_result_process_task
    links = ("payout",)

    def identify(self, row: PayoutResult, body: bytes) -> None:
        try:
            result = parse_result(json.loads(body))
        except Exception as error:
            raise Unreadable(text(f"Not a result: {type(error).__name__}: {error}", 500)) from error
        row.conversation_id = result.conversation_id
        row.originator_conversation_id = result.originator_conversation_id
        if row.kind == K.BALANCE:
            row.status = R.NOTED  # read by the float check that asked for it

    def apply(self, row: PayoutResult) -> Outcome:
        outcome, payout = _apply(row)
        row.payout = payout
        return outcome


payout_results = register(PayoutResults())


def payout_result_receive(*, kind: str, body: bytes, remote_addr: str | None) -> Received:
    """Store a body raw and commit it, then queue its processing (see Inbox.receive)."""
    return payout_results.receive(body=body, remote_addr=remote_addr, kind=kind)


def payout_result_process(*, result_id: int) -> str:
    """Apply one stored result; safe to repeat. Returns the row's status afterwards."""
    return payout_results.process(result_id)


def payout_result_reprocess(*, result: PayoutResult) -> str:
    """A person asks for a quarantined (or erroring) row to be tried again from scratch."""
    return payout_results.reprocess(result)


def payout_result_set_aside(*, result: PayoutResult, reason: str) -> bool:
    """A person decides a stored row is not to be processed (it stays, with the reason)."""
    return payout_results.set_aside(result, reason=reason)


def _apply(row: PayoutResult) -> tuple[Outcome, Payout | None]:
    result = parse_result(json.loads(row.raw_body))
    if row.kind == K.BALANCE:
        return Outcome.NOTED, None
    if row.kind == K.STATUS:
        status = transaction_status(result)
        payout = Payout.objects.filter(
            originator_conversation_id=status.original_conversation_id
        ).first()
        if payout is None:
            row.detail = "A status answer that names no payout of ours (or failed): kept."
            return Outcome.UNMATCHED, None
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
        return Outcome.NOTED, payout
    payout = Payout.objects.filter(
        originator_conversation_id=result.originator_conversation_id
    ).first()
    if payout is None:
        row.detail = "Names no payout of ours: kept for review."
        return Outcome.UNMATCHED, None
    if row.kind == K.TIMEOUT:
        # The queue gave up or something timed out: the outcome is unknown, never "failed".
        payout_mark_unknown(payout=payout, reason=f"Queue timeout: {result.description}")
        return Outcome.NOTED, payout
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
    return payout_results.sweep(now=now)
