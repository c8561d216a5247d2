"""Reversal results: the inbox adapter (`services/core/inbox.py` stores, claims and retries).

A result names its reversal by the ids of Daraja's synchronous answer; it may arrive before
that answer is saved, so a result that names nothing yet waits and is looked at again.
"""

from __future__ import annotations

import json
from datetime import timedelta

from celery import shared_task

from attendance.models import ReversalResult
from attendance.mpesa.results import parse_result, text
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register

from .reversals import reversal_apply, reversal_for

K = ReversalResult.Kind


@shared_task(name="attendance.tasks.reversal_result_process_task", ignore_result=True)
def reversal_result_process_task(result_id: int) -> str:
    return reversal_results.process(result_id)


class ReversalResults(Inbox):
    model = ReversalResult
    label = "Reversal result"
    max_bytes_setting = "PAYOUT_MAX_BYTES"
    max_attempts_setting = "PAYOUT_RESULT_MAX_ATTEMPTS"
    task = reversal_result_process_task
    links = ("reversal",)
    look_again_after = {1: timedelta(seconds=30), 2: timedelta(minutes=5)}

    def identify(self, row: ReversalResult, body: bytes) -> None:
        try:
            result = parse_result(json.loads(body))
        except Exception as error:
            raise Unreadable(text(f"Not a result: {type(error).__name__}: {error}", 500)) from error
        row.originator_conversation_id = result.originator_conversation_id
        row.conversation_id = result.conversation_id

    def apply(self, row: ReversalResult) -> Outcome:
        result = parse_result(json.loads(row.raw_body))
        reversal = reversal_for(result)
        if reversal is None:
            row.detail = "Names no reversal of ours (yet)."
            return Outcome.NOT_YET
        row.reversal = reversal
        outcome = reversal_apply(
            reversal=reversal, result=None if row.kind == K.TIMEOUT else result
        )
        row.detail = f"{reversal.get_status_display()}: {reversal.result_description}"
        return outcome


reversal_results = register(ReversalResults())


def reversal_result_receive(*, kind: str, body: bytes, remote_addr: str | None) -> Received:
    """Store a result raw and commit it, then queue its processing."""
    return reversal_results.receive(body=body, remote_addr=remote_addr, kind=kind)


def reversal_results_process_pending() -> int:
    return reversal_results.sweep()
