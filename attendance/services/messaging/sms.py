"""The SMS outbox: every text is a row first and a send through Africa's Talking second.

The delivery machinery (claim once, retry with backoff, fail for good, sweep, resend) is the
email outbox's, in outbox.py; this module knows what is particular to a text: the template
fits a segment budget, AT's refusals say whether the number itself is unusable, and an email
held beside the text goes out if the text cannot reach the member.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone, translation

from attendance.models import EmailNotification, Event, Profile, SmsMessage
from attendance.phones import mask_phone
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
from attendance.services.messaging.email import in_language_of, notification_release_held
from attendance.sms.client import SmsClient, SmsError
from attendance.sms.segments import sms_clean, sms_segments

logger = logging.getLogger(__name__)
Status = SmsMessage.Status
# The message types that have an SMS template (attendance/sms/<type>.txt).
SMS_TYPES = frozenset(
    {
        "crew_invitation",
        "crew_reminder",
        "event_updated",
        "setup_briefing",
        "payment_confirmation",
        "payout_receipt",
        "payout_not_paid",
        "dispute_answered",
        "phone_code",
        "password_reset",
        "phone_changed",
        "crew_reply",
        "crew_off",
        "crew_offer_answer",
        "show_leave_now",
        "show_are_you_coming",
        "show_check_out",
    }
)


def sms_render(notification_type: str, context: dict) -> str:
    """The text of one SMS in the active language, GSM-7-safe where the words allow. Each
    language has its own file (`sms/sw/<type>.txt`): a text is too short for a sentence to be
    translated on its own, it is written again to fit 160 characters. Raises
    TemplateDoesNotExist."""
    names = [f"attendance/sms/{notification_type}.txt"]
    if translation.get_language() == "sw":
        names.insert(0, f"attendance/sms/sw/{notification_type}.txt")
    return sms_clean(render_to_string(names, context))


def sms_create(
    *,
    user: User | None,
    phone_number: str,
    notification_type: str,
    context: dict,
    event: Event | None = None,
    fallback_email: EmailNotification | None = None,
    text: str | None = None,
    **links: Any,
) -> SmsMessage:
    """Render and store a text, and queue its sending for after the transaction commits.

    `fallback_email` is an email written `held` beside it: it is sent (once) if this text
    fails for good. A template that fails to render gives a row that is already failed, and
    releases the fallback at once. `text`: already written (a WhatsApp message going by SMS
    instead carries the text rendered beside it), not rendered again.
    """
    context = {"site_url": settings.SITE_URL, "recipient_user": user, **context}
    row = SmsMessage(
        user=user,
        phone_number=phone_number,
        notification_type=notification_type,
        event=event,
        fallback_email=fallback_email,
        **links,
    )
    try:
        with in_language_of(user):
            row.message = (
                sms_clean(text) if text is not None else sms_render(notification_type, context)
            )
    except (TemplateDoesNotExist, TemplateSyntaxError) as error:
        row.status = Status.FAILED
        row.last_error = f"Template error: {error!r}"
        logger.exception("SMS %s could not be rendered", notification_type)
    segments = sms_segments(row.message)
    row.encoding, row.parts = segments.encoding, segments.parts
    if row.status == Status.QUEUED:
        row.queued_at = timezone.now()
    row.save()
    if row.status == Status.QUEUED:
        _queue([row.pk])
    elif fallback_email is not None:
        notification_release_held(notification_id=fallback_email.pk)
    return row


def _queue(ids: list[int]) -> None:
    outbox_queue_batches(ids, sms_deliver_task, sms_deliver_batch_task)


# One client per worker process and configuration (the SDK builds its URLs once).
_clients: dict[tuple, SmsClient] = {}


def sms_client() -> SmsClient:
    key = (
        settings.AT_USERNAME,
        settings.AT_API_KEY,
        settings.AT_BASE_URL,
        settings.SMS_SENDER_ID,
        settings.SMS_CONNECT_TIMEOUT,
        settings.SMS_READ_TIMEOUT,
    )
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = SmsClient(
            username=settings.AT_USERNAME,
            api_key=settings.AT_API_KEY,
            base_url=settings.AT_BASE_URL,
            sender_id=settings.SMS_SENDER_ID,
            timeout=(settings.SMS_CONNECT_TIMEOUT, settings.SMS_READ_TIMEOUT),
        )
    return client


def _send(row: SmsMessage) -> list[str]:
    try:
        accepted = sms_client().send(to="+" + row.phone_number, message=row.message)
    except SmsError as error:
        if error.permanent:
            raise PermanentError(str(error)) from error
        raise TemporaryError(str(error)) from error
    row.provider_message_id = accepted.message_id
    row.provider_status = f"{accepted.status} ({accepted.status_code})"[:40]
    row.cost, row.cost_currency = accepted.cost, accepted.currency
    logger.info("SMS %s to %s accepted", row.pk, mask_phone(row.phone_number))
    return ["provider_message_id", "provider_status", "cost", "cost_currency"]


def _classify(error: Exception) -> Exception:
    # Anything the client did not turn into an SmsError is a bug or the database: not sent,
    # and another try later is the safe side (the row was claimed, nothing went out).
    return TemporaryError(f"{type(error).__name__}: {error}")


def _failed(row: SmsMessage, error: Exception) -> None:
    cause = error.__cause__
    if isinstance(cause, SmsError):
        row.provider_status = f"{cause.status} ({cause.status_code})"[:40] if cause.status else ""
        SmsMessage.objects.filter(pk=row.pk).update(provider_status=row.provider_status)
        if cause.blocks_number and row.user_id:
            sms_block_member(user_id=row.user_id, reason=cause.status)
    sms_fall_back(row)


def sms_fall_back(row: SmsMessage) -> bool:
    """The text will not reach the member: send the email held beside it, once."""
    if row.fallback_email_id is None:
        return False
    return notification_release_held(notification_id=row.fallback_email_id)


def sms_block_member(*, user_id: int, reason: str) -> None:
    """AT says this member's number cannot get our texts: stop texting it until cleared."""
    Profile.objects.filter(user_id=user_id, sms_blocked_at__isnull=True).update(
        sms_blocked_at=timezone.now(), sms_blocked_reason=reason[:60], updated_at=timezone.now()
    )


SMS_OUTBOX = Outbox(
    model=SmsMessage,
    send=_send,
    classify=_classify,
    queue=_queue,
    max_attempts=lambda: settings.SMS_MAX_ATTEMPTS,
    on_failed=_failed,
)


def sms_deliver(*, sms_id: int, now: datetime | None = None) -> DeliveryResult:
    """Send one queued text, at most once at a time (see outbox.outbox_deliver)."""
    return outbox_deliver(SMS_OUTBOX, pk=sms_id, now=now)


def sms_requeue(*, sms_ids: Iterable[int]) -> int:
    """Queue failed texts again (admin "resend"). A member blocked for SMS is left alone:
    AT would refuse the number again."""
    sendable = SmsMessage.objects.filter(pk__in=list(sms_ids)).exclude(
        user__profile__sms_blocked_at__isnull=False
    )
    return outbox_requeue(SMS_OUTBOX, ids=sendable.values_list("pk", flat=True))


def sms_sweep(*, now: datetime | None = None) -> dict:
    """Queue again the texts a lost task or a dead worker left behind (outbox_sweep)."""
    return outbox_sweep(SMS_OUTBOX, now=now)


def sms_cost_by_month(queryset: Any, months: int = 12) -> list[dict]:
    """What texts cost per month (AT's own figures), newest first."""
    rows = (
        queryset.filter(cost__isnull=False)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "cost_currency")
        .annotate(total=Sum("cost"), texts=Count("pk"), parts=Sum(F("parts")))
        .order_by("-month", "cost_currency")
    )
    return list(rows[: months * 2])


@shared_task(
    name="attendance.tasks.sms_deliver_task",
    bind=True,
    max_retries=None,
    acks_late=True,
    ignore_result=True,
)
def sms_deliver_task(self: Task, sms_id: int) -> str:
    return outbox_deliver_or_retry(SMS_OUTBOX, self, sms_id)


@shared_task(name="attendance.tasks.sms_deliver_batch_task", acks_late=True, ignore_result=True)
def sms_deliver_batch_task(sms_ids: list[int]) -> dict:
    return outbox_deliver_batch(SMS_OUTBOX, sms_ids, sms_deliver_task)
