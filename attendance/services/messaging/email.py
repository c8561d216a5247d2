"""The email outbox: every message is a row first and a delivery second."""

import contextlib
import logging
import smtplib
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone, translation

from attendance.models import EmailNotification, Event, Profile, django_language
from attendance.services.core.errors import ServiceError
from attendance.services.core.outbox import (
    DeliveryResult,
    Outbox,
    PermanentError,
    TemporaryError,
    outbox_deliver,
    outbox_deliver_batch,
    outbox_deliver_or_retry,
    outbox_queue_batches,
    outbox_requeue,
    outbox_sweep,
)

logger = logging.getLogger(__name__)
Status = EmailNotification.Status


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email: text kept in the row (`content`), or a `document` made
    when the email is sent, from `ref` (a PDF takes ~0.1 s, which a pay run approving 1,250
    payslips should not wait for, and bytes do not belong in the row)."""

    filename: str
    content: str = ""
    mimetype: str = "text/plain"
    document: str = ""
    ref: int | None = None


# Document makers by name, registered by the domain that owns each document (a lower layer
# cannot import a higher one): `maker(ref)` returns the file's bytes.
DOCUMENTS: dict[str, Callable[[int], bytes]] = {}


def document_register(name: str, maker: Callable[[int], bytes]) -> None:
    DOCUMENTS[name] = maker


def _document(attachment: dict) -> bytes | None:
    """The bytes of a document attachment, or None when it cannot be made here: the email goes
    without it (its text links to the same document), and the log says why."""
    maker = DOCUMENTS.get(attachment["document"])
    if maker is None:
        logger.warning("No maker for %s: sent without it", attachment["document"])
        return None
    try:
        return maker(attachment["ref"])
    except (ServiceError, ObjectDoesNotExist) as error:
        logger.warning("%s not attached: %s", attachment["filename"], error)
        return None


def _names(notification_type: str, suffix: str) -> list[str]:
    """The templates of one part of an email, the active language's first: crew emails are
    written again in Kiswahili (`emails/sw/`), staff emails exist in English only."""
    names = [f"attendance/emails/{notification_type}{suffix}"]
    if translation.get_language() == "sw":
        names.insert(0, f"attendance/emails/sw/{notification_type}{suffix}")
    return names


def in_language_of(user: User | None) -> translation.override:
    """Render in the recipient's language (their Account page's choice); staff and anyone
    without a profile read English."""
    try:
        language = user.profile.language if user is not None else ""
    except Profile.DoesNotExist:
        language = ""
    return translation.override(django_language(language))


def notification_create(
    *,
    recipient: str,
    notification_type: str,
    context: dict,
    user: User | None = None,
    event: Event | None = None,
    attachments: tuple[Attachment, ...] = (),
    hold: bool = False,
    **links: Any,
) -> EmailNotification:
    """Render and store an email, and queue its delivery for after the transaction commits.

    Templates: `attendance/emails/<type>_subject.txt`, `<type>.txt` and `<type>.html` (the
    HTML extends the shared branded layout). A template that fails to render produces a row
    that is already failed, with the error in `last_error`: the caller's action still
    succeeds, and admins see what could not be sent. `links` are further foreign keys of the
    row (e.g. `payment=...`, `crew_assignment=...`). `hold` writes it `held`, not queued: the
    fallback of an SMS (messaging.py), sent only if the text fails.
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
        with in_language_of(user):
            subject = render_to_string(_names(notification_type, "_subject.txt"), context)
            row.subject = " ".join(subject.split())[:255]
            row.message = render_to_string(_names(notification_type, ".txt"), context)
            row.html_message = render_to_string(_names(notification_type, ".html"), context)
    except (TemplateDoesNotExist, TemplateSyntaxError) as error:
        row.subject = row.subject or f"({notification_type})"
        row.status = Status.FAILED
        row.last_error = f"Template error: {error!r}"
        logger.exception("Notification %s could not be rendered", notification_type)
    if hold and row.status == Status.QUEUED:
        row.status = Status.HELD
    if row.status == Status.QUEUED:
        row.queued_at = timezone.now()
    row.save()
    if row.status == Status.QUEUED:
        _queue_after_commit([row.pk])
    return row


def _queue_after_commit(ids: list[int]) -> None:
    outbox_queue_batches(ids, notification_deliver_task, notifications_deliver_batch_task)


def _classify(error: Exception) -> Exception:
    """SMTP 4xx, refused or dropped connections and timeouts are worth retrying; 5xx is not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            return TemporaryError(f"Recipient deferred: {error.recipients}")
        return PermanentError(f"Recipient refused: {error.recipients}")
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        if isinstance(message, bytes):
            message = message.decode(errors="replace")
        text = f"SMTP {error.smtp_code}: {message}"
        if 400 <= error.smtp_code < 500:
            return TemporaryError(text)
        return PermanentError(text)
    if isinstance(error, smtplib.SMTPServerDisconnected | socket.timeout | OSError):
        return TemporaryError(f"{type(error).__name__}: {error}")
    if isinstance(error, smtplib.SMTPException):
        return TemporaryError(f"{type(error).__name__}: {error}")
    return PermanentError(f"{type(error).__name__}: {error}")


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


def _send(row: EmailNotification) -> list[str]:
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
        content = _document(attachment) if attachment.get("document") else attachment["content"]
        if content is not None:
            message.attach(attachment["filename"], content, attachment["mimetype"])
    key, connection = _connection()
    try:
        sent = connection.send_messages([message])
    except Exception:
        _drop_connection(key)
        raise
    if not sent:
        _drop_connection(key)
        raise TemporaryError("The mail backend did not accept the message.")
    return []


EMAIL_OUTBOX = Outbox(
    model=EmailNotification,
    send=_send,
    classify=_classify,
    queue=_queue_after_commit,
    max_attempts=lambda: settings.NOTIFICATION_MAX_ATTEMPTS,
)


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryResult:
    """Send one queued email, at most once at a time (see outbox.outbox_deliver)."""
    return outbox_deliver(EMAIL_OUTBOX, pk=notification_id, now=now)


def notification_requeue(*, notification_ids: Iterable[int]) -> int:
    """Queue failed emails for another round of delivery attempts (admin "resend")."""
    return outbox_requeue(EMAIL_OUTBOX, ids=notification_ids)


def notification_release_held(*, notification_id: int) -> bool:
    """Send an email held beside an SMS that could not reach the member. At most once: only
    a held row moves, in one conditional UPDATE. True if this call released it."""
    released = EmailNotification.objects.filter(pk=notification_id, status=Status.HELD).update(
        status=Status.QUEUED, queued_at=timezone.now(), next_attempt_at=None
    )
    if released:
        _queue_after_commit([notification_id])
    return bool(released)


def notification_sweep(*, now: datetime | None = None) -> dict:
    """Queue again the emails a lost task or a dead worker left behind (outbox_sweep)."""
    return outbox_sweep(EMAIL_OUTBOX, now=now)


# --- Delivery tasks (queued by the functions above; names kept for messages in the broker) --


@shared_task(
    name="attendance.tasks.notification_deliver_task",
    bind=True,
    max_retries=None,
    acks_late=True,
    ignore_result=True,
)
def notification_deliver_task(self: Task, notification_id: int) -> str:
    return outbox_deliver_or_retry(EMAIL_OUTBOX, self, notification_id)


@shared_task(
    name="attendance.tasks.notifications_deliver_batch_task", acks_late=True, ignore_result=True
)
def notifications_deliver_batch_task(notification_ids: list[int]) -> dict:
    return outbox_deliver_batch(EMAIL_OUTBOX, notification_ids, notification_deliver_task)
