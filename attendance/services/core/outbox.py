"""The outbox both channels share: claim once, send outside any lock, retry or fail, sweep.

A channel (email in notifications.py, SMS in sms.py) is an `Outbox`: its model (an OutboxRow
with a `status` of queued / sending / sent / failed), how to send one row, and how to queue
delivery tasks. Everything about at-most-once-at-a-time, backoff and recovery lives here once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from attendance.services.core.queueing import queue_after_commit

logger = logging.getLogger(__name__)
QUEUED, SENDING, SENT, FAILED = "queued", "sending", "sent", "failed"


class TemporaryError(Exception):
    """Not sent, worth another try later."""


class PermanentError(Exception):
    """Not sent and never will be as it stands (a refused address, a configuration error)."""


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # "sent", "retry", "failed", "skipped"
    retry_in: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class Outbox:
    model: Any  # an OutboxRow subclass
    # Sends one claimed row; sets what it learnt on the row and returns those field names.
    # Raises TemporaryError / PermanentError (anything else is classified by `classify`).
    send: Callable[[Any], list[str]]
    classify: Callable[[Exception], Exception]
    queue: Callable[[list[int]], None]
    max_attempts: Callable[[], int]
    # Runs in the transaction that fails a row for good (an SMS falls back to email).
    on_failed: Callable[[Any, Exception], None] | None = None
    # A batch task marks its rows sent in one UPDATE at its end instead of one each: for a
    # channel whose send costs less than the UPDATE (WhatsApp's Cloud API answers in a few
    # milliseconds). A worker that dies mid-batch leaves up to a batch of sent rows `sending`,
    # which the sweeper sends again later: only for a channel whose `send` can tell that a row
    # went out already (WhatsApp's statuses name our row; the row then is not sent twice).
    sent_together: bool = False


def outbox_backoff(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: exponential, capped at one hour."""
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    return min(base * (2 ** max(attempts - 1, 0)), 3600)


def outbox_queue_batches(ids: list[int], one: Task, batch: Task) -> None:
    """Queue delivery tasks for after commit, NOTIFICATION_BATCH_SIZE ids per task.

    A broker round trip and a task execution cost more than claiming and sending one message,
    so a briefing to sixty crew is a few tasks, not sixty. Each row is still claimed on its
    own. A broker that is down leaves the rows queued; the sweeper queues them again later.
    """
    size = max(1, settings.NOTIFICATION_BATCH_SIZE)
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        if len(chunk) == 1:
            queue_after_commit(one, chunk[0])
        else:
            queue_after_commit(batch, chunk)


def _claim(outbox: Outbox, ids: list[int], now: datetime) -> list[Any]:
    """Claim the due, queued rows among `ids` (status `sending`) and return them.

    The claim is one conditional UPDATE: it takes the row locks, and a concurrent claimer
    blocks on them, then re-reads the rows, sees `sending` and updates nothing. Cheaper than
    BEGIN / SELECT ... FOR UPDATE SKIP LOCKED / UPDATE / COMMIT, with the same guarantee. The
    rows are read back by their claim time: only this call's claim carries it.
    """
    model = outbox.model
    claimed = (
        model.objects.filter(pk__in=ids, status=QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=SENDING, claimed_at=now)
    )
    if not claimed:
        return []
    return list(model.objects.filter(pk__in=ids, status=SENDING, claimed_at=now).order_by("pk"))


def outbox_deliver(outbox: Outbox, *, pk: int, now: datetime | None = None) -> DeliveryResult:
    """Send one queued row, at most once at a time.

    The row is claimed (status `sending`) atomically before sending, so only one worker sends
    it; the send happens outside any transaction, so a slow server holds no lock. Temporary
    failures put the row back in the queue with a later `next_attempt_at` until the channel's
    maximum; permanent ones fail it at once. Returns what happened; the caller (the Celery
    task) schedules the retry.
    """
    rows = _claim(outbox, [pk], now or timezone.now())
    if not rows:
        return DeliveryResult("skipped")
    return _send_claimed(outbox, rows[0])


def _send_claimed(outbox: Outbox, row: Any, later: list | None = None) -> DeliveryResult:
    name = outbox.model._meta.verbose_name
    try:
        try:
            learnt = outbox.send(row)
        except (TemporaryError, PermanentError):
            raise
        except Exception as error:
            raise outbox.classify(error) from error
    except TemporaryError as error:
        row.failed_attempts += 1
        row.last_error = str(error)[:2000]
        if row.failed_attempts < outbox.max_attempts():
            delay = outbox_backoff(row.failed_attempts)
            row.status = QUEUED
            row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            # The retry task runs then: that is when the sweeper's wait starts.
            row.queued_at = row.next_attempt_at
            fields = ["status", "failed_attempts", "last_error", "next_attempt_at", "queued_at"]
            row.save(update_fields=fields)
            logger.warning("%s %s not sent (retry): %s", name, row.pk, row.last_error)
            return DeliveryResult("retry", retry_in=delay, error=row.last_error)
        return _fail(outbox, row, error)
    except PermanentError as error:
        row.failed_attempts += 1
        row.last_error = str(error)[:2000]
        return _fail(outbox, row, error)

    row.status = SENT
    row.sent_at = timezone.now()
    row.next_attempt_at = None
    if later is not None:
        later.append((row, learnt))
        return DeliveryResult("sent")
    # One UPDATE of what changed, not Model.save: this runs once per message sent.
    outbox.model.objects.filter(pk=row.pk).update(
        **{
            field: getattr(row, field)
            for field in ["status", "sent_at", "next_attempt_at", *learnt]
        }
    )
    return DeliveryResult("sent")


def _fail(outbox: Outbox, row: Any, error: Exception) -> DeliveryResult:
    row.status = FAILED
    row.next_attempt_at = None
    with transaction.atomic():
        row.save(update_fields=["status", "failed_attempts", "last_error", "next_attempt_at"])
        if outbox.on_failed is not None:
            outbox.on_failed(row, error)
    logger.error("%s %s failed: %s", outbox.model._meta.verbose_name, row.pk, row.last_error)
    return DeliveryResult("failed", error=row.last_error)


def outbox_requeue(outbox: Outbox, *, ids: Iterable[int]) -> int:
    """Queue failed rows for another round of delivery attempts (admin "resend").

    Only failed rows are touched, so a double click cannot send a delivered message again.
    Returns how many were queued.
    """
    model = outbox.model
    with transaction.atomic():
        chosen = list(
            model.objects.filter(pk__in=ids, status=FAILED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        model.objects.filter(pk__in=chosen).update(
            status=QUEUED,
            failed_attempts=0,
            next_attempt_at=None,
            claimed_at=None,
            queued_at=timezone.now(),
        )
        outbox.queue(chosen)
    return len(chosen)


def outbox_sweep(outbox: Outbox, *, now: datetime | None = None) -> dict:
    """Queue again what a lost task or a dead worker left behind.

    - `sending` rows claimed longer ago than NOTIFICATION_STALE_CLAIM_SECONDS: the worker died
      mid-send; they go back to the queue (the recipient may, rarely, get the message twice:
      at-least-once is the trade-off for never losing one).
    - `queued` rows that are due and whose task was queued longer ago than
      NOTIFICATION_REQUEUE_AFTER_SECONDS (or never): it was lost (broker down at commit, a
      worker gone). A row queued more recently is left alone: its task may still be waiting
      behind a backlog, and queuing it again would only flood the broker.

    All of them, not a fixed batch. Both sets have partial indexes, so a run costs what was
    left behind, not the million rows already sent.
    """
    now = now or timezone.now()
    model = outbox.model
    stale = now - timedelta(seconds=settings.NOTIFICATION_STALE_CLAIM_SECONDS)
    reclaimed = model.objects.filter(status=SENDING, claimed_at__lt=stale).update(
        status=QUEUED, claimed_at=None, queued_at=None
    )
    lost = now - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    due = (
        model.objects.filter(status=QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lost))
    )
    queued = 0
    while True:
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:5000])
        if not ids:
            break
        with transaction.atomic():
            model.objects.filter(pk__in=ids).update(queued_at=now)
            outbox.queue(ids)
        queued += len(ids)
    return {"reclaimed": reclaimed, "queued": queued}


def outbox_deliver_or_retry(outbox: Outbox, task: Task, pk: int) -> str:
    """A delivery task's body: deliver, and leave a temporary failure to Celery's retry (the
    row is already back in the queue, due then)."""
    result = outbox_deliver(outbox, pk=pk)
    if result.outcome == "retry":
        raise task.retry(countdown=result.retry_in)
    return result.outcome


def outbox_deliver_batch(outbox: Outbox, ids: list[int], retry_task: Any) -> dict:
    """A batch task's body: the due rows among `ids` claimed together (one UPDATE, one
    SELECT), then each sent on its own; each retry is its own delayed task, so one slow
    recipient holds up no batch."""
    rows = _claim(outbox, list(ids), timezone.now())
    outcomes: dict[str, int] = {"skipped": len(ids) - len(rows)} if len(rows) < len(ids) else {}
    sent: list | None = [] if outbox.sent_together else None
    try:
        for row in rows:
            result = _send_claimed(outbox, row, sent)
            if result.outcome == "retry":
                retry_task.apply_async(args=(row.pk,), countdown=result.retry_in)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    finally:
        if sent:
            fields = {"status", "sent_at", "next_attempt_at"}.union(*(f for _, f in sent))
            outbox.model.objects.bulk_update([row for row, _ in sent], sorted(fields))
    return outcomes
