"""The callback inbox: every body Safaricom posts is stored raw and committed, then processed.

Storing is the busiest write of the app and must never fail for a body's sake; processing
settles the payment a callback reports, once, and must never stop at a body it cannot take.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import EmailNotification, MpesaCallback
from attendance.mpesa.callbacks import MalformedCallback, clean_text, parse_stk_callback

from .kick import callback_kick
from .settlement import alert_staff, payment_apply_result

logger = logging.getLogger(__name__)
CB = MpesaCallback.Status

# The batch task keeps looking until it has found nothing for this long.
BATCH_LINGER_SECONDS = 1.0
BATCH_POLL_SECONDS = 0.2
# When the sweeper looks again at a callback that matched no payment (after its Nth look): its
# push's answer may not have been saved yet (a push that timed out on our side is only failed
# after MPESA_READ_TIMEOUT), so a second look 30 s after the first, a last one 5 minutes after
# that; then it is left for staff.
UNMATCHED_RETRY_AFTER = {1: timedelta(seconds=30), 2: timedelta(minutes=5)}
SWEEP_SECONDS = 40  # a run stops starting new rows after this; the beat runs every minute
_OUTCOME_STATUS = {"processed": CB.PROCESSED, "duplicate": CB.DUPLICATE, "unmatched": CB.UNMATCHED}


# --- Storing -------------------------------------------------------------------------------


def body_as_text(body: bytes) -> tuple[str, bytes | None]:
    """The body as storable text, plus its exact bytes when the text cannot hold them."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), body
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return text.replace("\x00", "\ufffd"), body
    return text, None


def callback_receive(
    *, body: bytes, remote_addr: str | None, oversized: bool = False
) -> tuple[int, int]:
    """Store a callback raw and commit it; queue its processing. Returns (row id, http status).

    Whatever the body, it is stored: malformed or oversized ones too (truncated to
    MPESA_CALLBACK_MAX_BYTES, exact bytes kept when text cannot hold them), answered with
    400/413 and never processed. Only a database failure raises.
    """
    raw, exact = body_as_text(body[: settings.MPESA_CALLBACK_MAX_BYTES])
    if oversized:
        detail = f"Body larger than {settings.MPESA_CALLBACK_MAX_BYTES} bytes (truncated)."
        return _store_unreadable(raw, exact, remote_addr, detail), 413
    try:
        result = parse_stk_callback(body)
    except MalformedCallback as error:
        detail = str(error)
    except Exception as error:  # the parser's promise broken: still keep the body
        logger.exception("The callback parser failed on a body")
        detail = f"Unreadable: {type(error).__name__}"
    else:
        callback_id = _callback_store(
            raw=raw,
            exact=exact,
            remote_addr=remote_addr,
            checkout_request_id=result.checkout_request_id,
        )
        _queue_callback(callback_id)
        return callback_id, 200
    callback_id = _store_unreadable(raw, exact, remote_addr, detail)
    logger.warning("Malformed M-Pesa callback %s from %s: %s", callback_id, remote_addr, detail)
    return callback_id, 400


def _store_unreadable(raw: str, exact: bytes | None, remote_addr: str | None, detail: str) -> int:
    return MpesaCallback.objects.create(
        raw_body=raw, raw_bytes=exact, remote_addr=remote_addr, status=CB.MALFORMED, detail=detail
    ).pk


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
    """callback_process for loops: a failure is logged and the loop goes on to the next row."""
    try:
        return callback_process(callback_id=callback_id)
    except Exception:
        # Only the bookkeeping itself failed here (the database went away mid-row); the row
        # is still stored and the sweeper comes back to it.
        logger.exception("M-Pesa callback %s could not be processed", callback_id)
        return "failed"


def callback_process(*, callback_id: int, manual: bool = False) -> str:
    """Settle the payment a stored callback reports. Safe to run any number of times.

    The callback row is claimed with a row lock that others skip, and its outcome commits in
    the same transaction as the payment's settlement: a callback is never half processed.
    Settlement runs in a savepoint: whatever goes wrong in it (a bug, a body the rules cannot
    take), the row records the reason and counts the attempt, and after
    MPESA_CALLBACK_MAX_ATTEMPTS it is quarantined for a person; it can never stop the
    callbacks behind it. `manual` (staff's "Process again") also takes quarantined rows.
    """
    statuses = [*MpesaCallback.RETRYABLE, *([CB.QUARANTINED] if manual else [])]
    fields = ["status", "payment", "detail", "attempts", "processed_at"]
    with transaction.atomic():
        callback = (
            MpesaCallback.objects.select_for_update(skip_locked=True)
            .filter(pk=callback_id, status__in=statuses)
            .first()
        )
        if callback is None:
            return "skipped"  # processed already, or being processed right now
        callback.attempts += 1
        callback.processed_at = timezone.now()
        try:
            with transaction.atomic():
                _settle_from(callback)
                callback.save(update_fields=fields)
        except Exception as error:
            logger.exception("M-Pesa callback %s could not be processed", callback_id)
            give_up = callback.attempts >= settings.MPESA_CALLBACK_MAX_ATTEMPTS
            callback.status = CB.QUARANTINED if give_up else CB.ERROR
            callback.payment = None
            callback.detail = clean_text(f"{type(error).__name__}: {error}", 2000)
            callback.save(update_fields=fields)
    if callback.status == CB.UNMATCHED:
        logger.warning(
            "M-Pesa callback %s for unknown checkout %s", callback_id, callback.checkout_request_id
        )
    return callback.status


def _settle_from(callback: MpesaCallback) -> None:
    result = parse_stk_callback(callback.body_bytes)
    outcome, payment = payment_apply_result(result=result, via="callback")
    callback.status = _OUTCOME_STATUS[outcome]
    callback.payment = payment
    callback.detail = clean_text(
        f"ResultCode {result.result_code}: {result.result_description}", 2000
    )
    if outcome == "unmatched" and result.succeeded and callback.attempts == 2:
        # Money arrived that no request of ours explains. Not on the first look, which can
        # race the push's answer being saved; the sweeper's retry, 30 s on, cannot.
        alert_staff(
            notification_type=EmailNotification.Type.PAYMENT_UNMATCHED,
            context={"callback": callback, "result": result},
        )


def callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The beat's sweeper: process what the batch task left behind. Returns how many rows.

    First rows never processed or whose processing failed (oldest first), then unmatched rows
    due their next look. The open set has a partial index, so a run costs what is left
    behind, not the size of the history; it goes on until that set is empty or SWEEP_SECONDS
    have passed (its rate is then bounded by processing, not a fixed batch).
    """
    now = now or timezone.now()
    started = time.monotonic()
    open_rows = MpesaCallback.objects.filter(received_at__lt=now - timedelta(seconds=30))
    unmatched_due = Q()
    for attempts, wait in UNMATCHED_RETRY_AFTER.items():
        unmatched_due |= Q(attempts=attempts, processed_at__lt=now - wait)
    stages = [
        open_rows.filter(status__in=[CB.RECEIVED, CB.ERROR]),
        open_rows.filter(unmatched_due, status=CB.UNMATCHED),
    ]
    count = 0
    for stage in stages:
        after = 0
        while time.monotonic() - started < SWEEP_SECONDS:
            batch = list(
                stage.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:200]
            )
            if not batch:
                break
            for callback_id in batch:
                process_guarded(callback_id)
                count += 1
            after = batch[-1]
    return count
