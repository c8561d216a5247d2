"""STK callbacks: the inbox adapter (`services/core/inbox.py` stores, claims and retries).

Storing is the busiest write of the app and must never fail for a body's sake; processing
settles the payment a callback reports, once, and must never stop at a body it cannot take.
Two things are this inbox's own: a faster INSERT, and a batch task woken by a Redis flag
instead of a task per callback (a payment storm is thousands a minute).
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from attendance.models import EmailNotification, MpesaCallback
from attendance.mpesa.callbacks import MalformedCallback, parse_stk_callback
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register

from .kick import callback_kick
from .settlement import alert_staff, payment_apply_result

logger = logging.getLogger(__name__)
CB = MpesaCallback.Status

# The batch task keeps looking until it has found nothing for this long.
BATCH_LINGER_SECONDS = 1.0
BATCH_POLL_SECONDS = 0.2
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
        _queue_callback(row_id)


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
    """One committed INSERT of a well-formed callback; returns its id.

    It skips the ORM's model machinery (a third of the endpoint's time in profiles).
    Persistent connections are not health-checked per request (CONN_HEALTH_CHECKS, a second
    round trip), so a connection that died since the last request (a database restart) is
    replaced and the INSERT tried once more: a callback is answered 200 only once it is
    stored, and Safaricom does not send it again.
    """
    params: list[Any] = [timezone.now(), raw, exact, remote_addr, checkout_request_id, CB.RECEIVED]
    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                cursor.execute(_CALLBACK_INSERT, params)
                return cursor.fetchone()[0]
        except (OperationalError, InterfaceError):
            if attempt == 2 or not connection.get_autocommit() or connection.in_atomic_block:
                raise
            connection.close()
    raise AssertionError("unreachable")


def _queue_callback(callback_id: int) -> None:
    def queue():
        checked_at = time.monotonic()
        if callback_kick.recently_seen(checked_at):
            return
        # Asked only here: reading Celery's config costs a tenth of the endpoint's time.
        if callbacks_process_received_task.app.conf.task_always_eager:
            # No worker (the demo, tests): each request settles its own callback. The flag
            # is for workers, whose batch task looks once more after clearing it; a task run
            # in a request cannot wait for other requests to commit.
            process_guarded(callback_id)
            return
        try:
            if callback_kick.set():
                callbacks_process_received_task.delay()
            callback_kick.saw_it(checked_at)
        except Exception:
            # Redis or the broker is down: the callback is stored; the sweeper processes it.
            callback_kick.forget()
            with contextlib.suppress(Exception):  # Redis is down: the flag expires anyway
                callback_kick.clear()
            logger.warning("Could not queue callback %s; the sweeper will process it", callback_id)

    transaction.on_commit(queue)


# --- Processing ----------------------------------------------------------------------------


@shared_task(
    name="attendance.tasks.callbacks_process_received_task", acks_late=True, ignore_result=True
)
def callbacks_process_received_task() -> int:
    return callbacks_process_received()


def callbacks_process_received() -> int:
    """The batch task (on a worker): process every stored callback not processed yet.

    It keeps looking until it has found nothing new for BATCH_LINGER_SECONDS, clears the
    flag, waits CallbackKick.LOCAL_SECONDS (the longest any process trusts a flag it saw) and
    looks once more. A request checks the flag only after its row is committed, so a row whose
    request saw the flag set, or skipped Redis because it saw it recently, is committed before
    that last look. Returns how many it processed.
    """
    done, idle_since = 0, time.monotonic()
    while True:
        found = _callbacks_drain()
        done += found
        if found:
            idle_since = time.monotonic()
        if time.monotonic() - idle_since >= BATCH_LINGER_SECONDS:
            break
        callback_kick.refresh()
        time.sleep(BATCH_POLL_SECONDS)
    callback_kick.clear()
    time.sleep(callback_kick.LOCAL_SECONDS + BATCH_POLL_SECONDS)
    return done + _callbacks_drain()


def _callbacks_drain() -> int:
    """Process stored callbacks in arrival order, each looked at once per drain.

    A cursor on the id, not "the oldest received rows again": a row another worker holds, or
    one whose processing failed, must not be picked up again and again ahead of the rest.
    """
    done, after = 0, 0
    while True:
        batch = list(
            MpesaCallback.objects.filter(status=CB.RECEIVED, pk__gt=after)
            .order_by("id")
            .values_list("pk", flat=True)[:200]
        )
        if not batch:
            return done
        done += sum(process_guarded(pk) != "skipped" for pk in batch)
        after = batch[-1]


def process_guarded(callback_id: int) -> str:
    return stk_callbacks.process_guarded(callback_id)


def callback_process(*, callback_id: int, manual: bool = False) -> str:
    """Settle the payment a stored callback reports. Safe to run any number of times."""
    return stk_callbacks.process(callback_id, manual=manual)


def callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The beat's sweeper: what the batch task left behind, and callbacks due another look."""
    return stk_callbacks.sweep(now=now, seconds=SWEEP_SECONDS)
