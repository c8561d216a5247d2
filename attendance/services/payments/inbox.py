"""STK callbacks: the inbox adapter (`services/core/inbox.py` stores, claims and retries).

Storing is the busiest write of the app and must never fail for a body's sake; processing
settles the payment a callback reports, once, and must never stop at a body it cannot take.
Like Paybill confirmations, it stores with one raw INSERT and wakes one batch task per burst
instead of a task per callback (`core/batching.py`: a payment storm is thousands a minute).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

from attendance.models import EmailNotification, MpesaCallback
from attendance.mpesa.callbacks import MalformedCallback, parse_stk_callback
from attendance.services.core.batching import Burst, insert_committed
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register

from .kick import callback_kick
from .settlement import alert_staff, payment_apply_result

logger = logging.getLogger(__name__)
CB = MpesaCallback.Status

SWEEP_SECONDS = 40  # a run stops starting new rows after this; the beat runs every minute


class StkCallbacks(Inbox):
    model = MpesaCallback
    label = "M-Pesa callback"
    max_bytes_setting = "MPESA_CALLBACK_MAX_BYTES"
    max_attempts_setting = "MPESA_CALLBACK_MAX_ATTEMPTS"
    links = ("payment",)
    sweep_grace = timedelta(seconds=30)
    # A callback that matches no payment may have overtaken the push's answer being saved
    # (a push that timed out on our side is only failed after MPESA_READ_TIMEOUT): a second
    # look 30 s after the first, a last one 5 minutes after that; then it is unmatched.
    look_again_after = {1: timedelta(seconds=30), 2: timedelta(minutes=5)}

    def identify(self, row: MpesaCallback, body: bytes) -> None:
        try:
            row.checkout_request_id = parse_stk_callback(body).checkout_request_id
        except MalformedCallback as error:
            raise Unreadable(str(error)) from error

    def apply(self, row: MpesaCallback) -> Outcome:
        result = parse_stk_callback(row.body_bytes)
        outcome, payment = payment_apply_result(result=result, via="callback")
        row.payment = payment
        row.detail = f"ResultCode {result.result_code}: {result.result_description}"
        if outcome is Outcome.UNMATCHED and result.succeeded and row.attempts == 2:
            # Money arrived that no request of ours explains. Not on the first look, which
            # can race the push's answer being saved; the second, 30 s on, cannot.
            alert_staff(
                notification_type=EmailNotification.Type.PAYMENT_UNMATCHED,
                context={"callback": row, "result": result},
            )
        return Outcome.NOT_YET if outcome is Outcome.UNMATCHED else outcome

    def after(self, row: MpesaCallback) -> None:
        if row.status in (CB.WAITING, CB.UNMATCHED):
            logger.warning(
                "M-Pesa callback %s for unknown checkout %s", row.pk, row.checkout_request_id
            )

    def store(self, row: MpesaCallback) -> int:
        if row.status != CB.RECEIVED:
            return super().store(row)
        return _callback_store(
            raw=row.raw_body,
            exact=row.raw_bytes,
            remote_addr=row.remote_addr,
            checkout_request_id=row.checkout_request_id,
        )

    def queue(self, row_id: int) -> None:
        stk_burst.queue(row_id)


stk_callbacks = register(StkCallbacks())


# --- Storing -------------------------------------------------------------------------------


def callback_receive(*, body: bytes, remote_addr: str | None) -> Received:
    """Store a callback raw and commit it; queue its processing (see Inbox.receive)."""
    return stk_callbacks.receive(body=body, remote_addr=remote_addr)


_CALLBACK_INSERT = (
    f"INSERT INTO {MpesaCallback._meta.db_table} "  # noqa: S608 - a constant table name
    "(received_at, raw_body, raw_bytes, remote_addr, checkout_request_id, status, detail, "
    "attempts) VALUES (%s, %s, %s, %s, %s, %s, '', 0) RETURNING id"
)


def _callback_store(
    *, raw: str, remote_addr: str | None, checkout_request_id: str, exact: bytes | None = None
) -> int:
    """One committed INSERT of a well-formed callback; returns its id (batching.py)."""
    params: list[Any] = [timezone.now(), raw, exact, remote_addr, checkout_request_id, CB.RECEIVED]
    return insert_committed(_CALLBACK_INSERT, params)


# --- Processing ----------------------------------------------------------------------------


@shared_task(
    name="attendance.tasks.callbacks_process_received_task", acks_late=True, ignore_result=True
)
def callbacks_process_received_task() -> int:
    return callbacks_process_received()


def callbacks_process_received() -> int:
    """The batch task (on a worker): process every stored callback not processed yet."""
    return stk_burst.process_received()


stk_burst = Burst(
    model=MpesaCallback,
    kick=callback_kick,
    process=stk_callbacks.process_guarded,
    task=lambda: callbacks_process_received_task,
    label="M-Pesa callback",
)


def process_guarded(callback_id: int) -> str:
    return stk_callbacks.process_guarded(callback_id)


def callback_process(*, callback_id: int, manual: bool = False) -> str:
    """Settle the payment a stored callback reports. Safe to run any number of times."""
    return stk_callbacks.process(callback_id, manual=manual)


def callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The beat's sweeper: what the batch task left behind, and callbacks due another look."""
    return stk_callbacks.sweep(now=now, seconds=SWEEP_SECONDS)
