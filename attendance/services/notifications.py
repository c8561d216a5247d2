"""The email outbox: every message is a row first and a delivery second."""

import contextlib
import logging
import smtplib
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone

from attendance.models import EmailNotification, Event
from attendance.services.queueing import queue_after_commit

logger = logging.getLogger(__name__)
Status = EmailNotification.Status


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: str
    mimetype: str = "text/plain"


def notification_create(
    *,
    recipient: str,
    notification_type: str,
    context: dict,
    user: User | None = None,
    event: Event | None = None,
    attachments: tuple[Attachment, ...] = (),
    **links: Any,
) -> EmailNotification:
    """Render and store an email, and queue its delivery for after the transaction commits.

    Templates: `attendance/emails/<type>_subject.txt`, `<type>.txt` and `<type>.html` (the
    HTML extends the shared branded layout). A template that fails to render produces a row
    that is already failed, with the error in `last_error`: the caller's action still
    succeeds, and admins see what could not be sent. `links` are further foreign keys of the
    row (e.g. `payment=...`, `crew_assignment=...`).
    """
    context = {"site_url": settings.SITE_URL, "recipient_user": user, **context}
    row = EmailNotification(
        recipient=recipient,
        user=user,
        event=event,
        notification_type=notification_type,
        attachments=[a.__dict__ for a in attachments],
        **links,
    )
    try:
        base = f"attendance/emails/{notification_type}"
        row.subject = " ".join(render_to_string(f"{base}_subject.txt", context).split())[:255]
        row.message = render_to_string(f"{base}.txt", context)
        row.html_message = render_to_string(f"{base}.html", context)
    except (TemplateDoesNotExist, TemplateSyntaxError) as error:
        row.subject = row.subject or f"({notification_type})"
        row.status = Status.FAILED
        row.last_error = f"Template error: {error!r}"
        logger.exception("Notification %s could not be rendered", notification_type)
    if row.status == Status.QUEUED:
        row.queued_at = timezone.now()
    row.save()
    if row.status == Status.QUEUED:
        _queue_after_commit([row.pk])
    return row


def _queue_after_commit(ids: list[int]) -> None:
    """Queue delivery tasks once the caller's transaction has committed.

    Ids go in batches of NOTIFICATION_BATCH_SIZE per task: a broker round trip and a task
    execution cost more than claiming and sending one email, so a briefing to sixty crew is a
    few tasks, not sixty. Each row is still claimed on its own. A broker that is down leaves
    the rows queued; the sweeper queues them again later.
    """
    size = max(1, settings.NOTIFICATION_BATCH_SIZE)
    for start in range(0, len(ids), size):
        batch = ids[start : start + size]
        if len(batch) == 1:
            queue_after_commit(notification_deliver_task, batch[0])
        else:
            queue_after_commit(notifications_deliver_batch_task, batch)


def notification_queue(*, notification_ids: list[int]) -> None:
    """Queue delivery of rows that are already `queued` (e.g. created in bulk), after commit."""
    _queue_after_commit(list(notification_ids))


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # "sent", "retry", "failed", "skipped"
    retry_in: float = 0.0
    error: str = ""


class _TemporaryError(Exception):
    pass


class _PermanentError(Exception):
    pass


def _classify(error: Exception) -> Exception:
    """SMTP 4xx, refused or dropped connections and timeouts are worth retrying; 5xx is not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            return _TemporaryError(f"Recipient deferred: {error.recipients}")
        return _PermanentError(f"Recipient refused: {error.recipients}")
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        text = f"SMTP {error.smtp_code}: {message}"
        if 400 <= error.smtp_code < 500:
            return _TemporaryError(text)
        return _PermanentError(text)
    if isinstance(error, smtplib.SMTPServerDisconnected | socket.timeout | OSError):
        return _TemporaryError(f"{type(error).__name__}: {error}")
    if isinstance(error, smtplib.SMTPException):
        return _TemporaryError(f"{type(error).__name__}: {error}")
    return _PermanentError(f"{type(error).__name__}: {error}")


# One open connection per worker process and mail configuration: a worker that sends a burst
# of emails would otherwise pay a TCP and SMTP handshake for every message.
_connections: dict[tuple, Any] = {}


def _connection():
    key = (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
    )
    connection = _connections.get(key)
    if connection is None:
        connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
        connection.open()
        _connections[key] = connection
    return key, connection


def _drop_connection(key: tuple) -> None:
    connection = _connections.pop(key, None)
    if connection is not None:
        # A broken connection may fail to close; it is gone either way.
        with contextlib.suppress(Exception):
            connection.close()


def _send(row: EmailNotification) -> None:
    message = EmailMultiAlternatives(
        subject=row.subject,
        body=row.message,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.recipient],
        headers={
            "X-Notification-ID": str(row.pk),
            "Message-ID": make_msgid(idstring=f"n{row.pk}", domain="soundfusion.local"),
        },
    )
    if row.html_message:
        message.attach_alternative(row.html_message, "text/html")
    for attachment in row.attachments:
        message.attach(attachment["filename"], attachment["content"], attachment["mimetype"])
    key, connection = _connection()
    try:
        sent = connection.send_messages([message])
    except Exception:
        _drop_connection(key)
        raise
    if not sent:
        _drop_connection(key)
        raise _TemporaryError("The mail backend did not accept the message.")


def notification_backoff(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: exponential, capped at one hour."""
    base = settings.NOTIFICATION_RETRY_BASE_SECONDS
    return min(base * (2 ** max(attempts - 1, 0)), 3600)


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryResult:
    """Send one queued notification, at most once at a time.

    The row is claimed (status `sending`) atomically before sending, so only one worker sends
    it; the send happens outside any transaction, so a slow SMTP server holds no lock. Temporary
    failures put the row back in the queue with a later `next_attempt_at` until
    NOTIFICATION_MAX_ATTEMPTS; permanent ones fail it at once. Returns what happened; the
    caller (the Celery task) schedules the retry.
    """
    now = now or timezone.now()
    # The claim is one conditional UPDATE: it takes the row lock, and a concurrent claimer
    # blocks on it, then re-reads the row, sees `sending` and updates nothing. Cheaper than
    # BEGIN / SELECT ... FOR UPDATE SKIP LOCKED / UPDATE / COMMIT, with the same guarantee.
    claimed = (
        EmailNotification.objects.filter(pk=notification_id, status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Status.SENDING, claimed_at=now)
    )
    if not claimed:
        return DeliveryResult("skipped")
    row = EmailNotification.objects.get(pk=notification_id)

    try:
        try:
            _send(row)
        except (_TemporaryError, _PermanentError):
            raise
        except Exception as error:
            raise _classify(error) from error
    except _TemporaryError as error:
        row.failed_attempts += 1
        row.last_error = str(error)[:2000]
        if row.failed_attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
            row.status = Status.FAILED
            row.next_attempt_at = None
            result = DeliveryResult("failed", error=row.last_error)
        else:
            delay = notification_backoff(row.failed_attempts)
            row.status = Status.QUEUED
            row.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            # The retry task runs then: that is when the sweeper's wait starts.
            row.queued_at = row.next_attempt_at
            result = DeliveryResult("retry", retry_in=delay, error=row.last_error)
        fields = ["status", "failed_attempts", "last_error", "next_attempt_at", "queued_at"]
        row.save(update_fields=fields)
        logger.warning("Notification %s not sent (%s): %s", row.pk, result.outcome, row.last_error)
        return result
    except _PermanentError as error:
        row.failed_attempts += 1
        row.status = Status.FAILED
        row.last_error = str(error)[:2000]
        row.next_attempt_at = None
        row.save(update_fields=["status", "failed_attempts", "last_error", "next_attempt_at"])
        logger.error("Notification %s failed permanently: %s", row.pk, row.last_error)
        return DeliveryResult("failed", error=row.last_error)

    row.status = Status.SENT
    row.sent_at = timezone.now()
    row.next_attempt_at = None
    row.save(update_fields=["status", "sent_at", "next_attempt_at"])
    return DeliveryResult("sent")


def notification_requeue(*, notification_ids: Iterable[int]) -> int:
    """Queue failed notifications for another round of delivery attempts (admin "resend").

    Only failed rows are touched, so a double click cannot send a delivered email again.
    Returns how many were queued.
    """
    with transaction.atomic():
        ids = list(
            EmailNotification.objects.filter(pk__in=notification_ids, status=Status.FAILED)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        EmailNotification.objects.filter(pk__in=ids).update(
            status=Status.QUEUED,
            failed_attempts=0,
            next_attempt_at=None,
            claimed_at=None,
            queued_at=timezone.now(),
        )
        _queue_after_commit(ids)
    return len(ids)


def notification_sweep(*, now: datetime | None = None) -> dict:
    """Queue again what a lost task or a dead worker left behind.

    - `sending` rows claimed longer ago than NOTIFICATION_STALE_CLAIM_SECONDS: the worker died
      mid-send; they go back to the queue (the recipient may, rarely, get the email twice:
      at-least-once is the trade-off for never losing one).
    - `queued` rows that are due and whose task was queued longer ago than
      NOTIFICATION_REQUEUE_AFTER_SECONDS (or never): it was lost (broker down at commit, a
      worker gone). A row queued more recently is left alone: its task may still be waiting
      behind a backlog, and queuing it again would only flood the broker.

    All of them, not a fixed batch: the workers then send as fast as SMTP allows. Both sets
    have partial indexes, so a run costs what was left behind, not the million sent rows.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTIFICATION_STALE_CLAIM_SECONDS)
    reclaimed = EmailNotification.objects.filter(
        status=Status.SENDING, claimed_at__lt=stale
    ).update(status=Status.QUEUED, claimed_at=None, queued_at=None)
    lost = now - timedelta(seconds=settings.NOTIFICATION_REQUEUE_AFTER_SECONDS)
    due = (
        EmailNotification.objects.filter(status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=lost))
    )
    queued = 0
    while True:
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:5000])
        if not ids:
            break
        with transaction.atomic():
            EmailNotification.objects.filter(pk__in=ids).update(queued_at=now)
            _queue_after_commit(ids)
        queued += len(ids)
    return {"reclaimed": reclaimed, "queued": queued}


# --- Delivery tasks (queued by the functions above; names kept for messages in the broker) --


@shared_task(
    name="attendance.tasks.notification_deliver_task",
    bind=True,
    max_retries=None,
    acks_late=True,
    ignore_result=True,
)
def notification_deliver_task(self: Task, notification_id: int) -> str:
    result = notification_deliver(notification_id=notification_id)
    if result.outcome == "retry":
        raise self.retry(countdown=result.retry_in)
    return result.outcome


@shared_task(
    name="attendance.tasks.notifications_deliver_batch_task", acks_late=True, ignore_result=True
)
def notifications_deliver_batch_task(notification_ids: list[int]) -> dict:
    outcomes: dict[str, int] = {}
    for notification_id in notification_ids:
        result = notification_deliver(notification_id=notification_id)
        if result.outcome == "retry":
            # Each retry is its own delayed task, so one slow recipient holds up no batch.
            notification_deliver_task.apply_async(
                args=(notification_id,), countdown=result.retry_in
            )
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return outcomes
