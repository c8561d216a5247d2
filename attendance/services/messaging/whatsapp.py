"""The WhatsApp outbox: a row first, a send through Meta's Cloud API second.

The delivery machinery (claim once, retry with backoff, fail for good, sweep, resend) is the
one in core/outbox.py. What is particular to WhatsApp:

- Meta lets a business start a conversation only with an approved template; free text goes
  only inside the 24 hours after the member last wrote to us (their window). A message type
  with a template (whatsapp/templates.py) always goes as the template; one without goes as
  free text inside the window, and by the member's next channel outside it: never attempted.
- Accepted is not delivered. Statuses come later on the webhook (whatsapp_inbox.py), and a
  failure there may still mean WhatsApp cannot reach the member (131047 outside the window,
  131026 not on WhatsApp): the message then goes by their next channel, once (`fell_back_at`
  moves in one conditional UPDATE): an SMS written from the text kept on the row, or the email
  held beside it.
- An answer that never came (a read timeout) may hide an accepted message: before another try
  the row is checked for a status naming it (`biz_opaque_callback_data` is our row id), so an
  unknown outcome is settled by what Meta reported, not by sending again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.template import Context, Template, TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone, translation

from attendance.models import EmailNotification, Profile, WhatsAppMessage, django_language
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
from attendance.services.messaging.next_channel import send_by_next_channel
from attendance.services.messaging.sms import SMS_TYPES, sms_render
from attendance.whatsapp.client import WhatsAppClient, WhatsAppError, template_content
from attendance.whatsapp.templates import BY_TYPE, WhatsAppTemplate

logger = logging.getLogger(__name__)
Status = WhatsAppMessage.Status
WINDOW = timedelta(hours=24)
REFERENCE = "wa:"  # biz_opaque_callback_data = "wa:<row id>"
_SPACES = re.compile(r"\s+")


def whatsapp_number(profile: Profile) -> str:
    """The number the member gets WhatsApp on: the one they gave, else their M-Pesa number."""
    return profile.whatsapp_number or profile.phone_number


def whatsapp_usable(profile: Profile | None) -> bool:
    """Has this member chosen WhatsApp and can it reach them now?"""
    return bool(
        settings.WHATSAPP_ENABLED
        and profile is not None
        and whatsapp_number(profile)
        and profile.whatsapp_opted_in_at is not None
        and profile.whatsapp_opted_out_at is None
        and profile.whatsapp_blocked_at is None
    )


def whatsapp_window_open(profile: Profile, now: datetime | None = None) -> bool:
    """Did the member write to us on WhatsApp in the last 24 hours (by the message's time)?"""
    last = profile.whatsapp_last_inbound_at
    return last is not None and (now or timezone.now()) - last < WINDOW


def whatsapp_can_carry(profile: Profile, notification_type: str) -> bool:
    """Would a message of this type go by WhatsApp now: a template, or free text in the window."""
    return notification_type in BY_TYPE or (
        notification_type in SMS_TYPES and whatsapp_window_open(profile)
    )


@lru_cache(maxsize=256)
def _compiled(snippet: str) -> Template:
    return Template("{% autoescape off %}" + snippet + "{% endautoescape %}")


def _param(snippet: str, context: Context) -> str:
    # Meta refuses a parameter that is empty or holds a new line, a tab or many spaces.
    value = _SPACES.sub(" ", _compiled(snippet).render(context)).strip()
    return value[:300] or "-"


def template_values(
    template: WhatsAppTemplate, language: str, context: dict
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """The template's parameters and button payloads for this message, in its language."""
    with translation.override(django_language(language)):
        ctx = Context(context)
        params = [(name, _param(snippet, ctx)) for name, snippet in template.params]
        payloads = tuple(_param(snippet, ctx)[:256] for snippet in template.payloads)
    return params, payloads


def _language(profile: Profile, template: WhatsAppTemplate | None) -> str:
    wanted = profile.language or "en"
    if template is not None and wanted not in template.bodies:
        return "en"
    return wanted


def whatsapp_create(
    *,
    user: User,
    notification_type: str,
    context: dict,
    fallback_email: EmailNotification | None = None,
    **links: Any,
) -> WhatsAppMessage | None:
    """Write a WhatsApp message for the member and queue its sending after commit: the
    type's template, or free text inside their window. None when WhatsApp cannot carry it
    now (no template and the window is closed): the caller uses the next channel.

    `fallback_email` is an email written `held` beside it, sent if neither WhatsApp nor an
    SMS reaches the member.
    """
    profile = user.profile
    template = BY_TYPE.get(notification_type)
    if template is None and not whatsapp_window_open(profile):
        return None
    context = {"site_url": settings.SITE_URL, "recipient_user": user, **context}
    language = _language(profile, template)
    row = WhatsAppMessage(
        user=user,
        wa_number=whatsapp_number(profile),
        notification_type=notification_type,
        language=language,
        fallback_email=fallback_email,
        **links,
    )
    try:
        with translation.override(django_language(language)):
            row.fallback_text = (
                sms_render(notification_type, context) if notification_type in SMS_TYPES else ""
            )
        if template is not None:
            params, payloads = template_values(template, language, context)
            row.kind, row.template_name = WhatsAppMessage.Kind.TEMPLATE, template.name
            row.text = template.body(language, dict(params))
            row.content = template_content(template.name, language, params, payloads)
        else:
            row.kind, row.text = WhatsAppMessage.Kind.TEXT, row.fallback_text
            row.content = {"type": "text", "text": {"preview_url": False, "body": row.text}}
    except (TemplateDoesNotExist, TemplateSyntaxError):
        logger.exception("WhatsApp %s could not be rendered", notification_type)
        return None
    row.queued_at = timezone.now()
    row.save()
    _queue([row.pk])
    return row


def whatsapp_reply_text(
    *, profile: Profile, notification_type: str, context: dict, **links: Any
) -> bool:
    """Answer a member who just wrote to us on WhatsApp, in free text (their window is open).
    False when WhatsApp cannot: the caller answers another way."""
    if not whatsapp_usable(profile) or not whatsapp_window_open(profile):
        return False
    sent = whatsapp_create(
        user=profile.user, notification_type=notification_type, context=context, **links
    )
    return sent is not None


# --- Delivery -----------------------------------------------------------------------------


def _queue(ids: list[int]) -> None:
    outbox_queue_batches(ids, whatsapp_deliver_task, whatsapp_deliver_batch_task)


_clients: dict[tuple, WhatsAppClient] = {}


def whatsapp_client() -> WhatsAppClient:
    key = (
        settings.WHATSAPP_BASE_URL,
        settings.WHATSAPP_GRAPH_VERSION,
        settings.WHATSAPP_PHONE_NUMBER_ID,
        settings.WHATSAPP_ACCESS_TOKEN,
        settings.WHATSAPP_CONNECT_TIMEOUT,
        settings.WHATSAPP_READ_TIMEOUT,
    )
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = WhatsAppClient(
            base_url=settings.WHATSAPP_BASE_URL,
            version=settings.WHATSAPP_GRAPH_VERSION,
            phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID,
            access_token=settings.WHATSAPP_ACCESS_TOKEN,
            timeout=(settings.WHATSAPP_CONNECT_TIMEOUT, settings.WHATSAPP_READ_TIMEOUT),
        )
    return client


def _send(row: WhatsAppMessage) -> list[str]:
    if row.delivery_status:
        # A status named this row: an earlier try whose answer never came went out after
        # all. Sending again would give the member the message twice.
        return []
    if row.kind == WhatsAppMessage.Kind.TEXT:
        profile = Profile.objects.filter(user=row.user_id).first()
        if profile is None or not whatsapp_window_open(profile):
            raise PermanentError("The member's 24-hour window closed before sending.")
    try:
        accepted = whatsapp_client().send(
            to=row.wa_number, content=row.content, reference=f"{REFERENCE}{row.pk}"
        )
    except WhatsAppError as error:
        row.error_code, row.error_title = error.code, error.title[:300]
        WhatsAppMessage.objects.filter(pk=row.pk).update(
            error_code=row.error_code, error_title=row.error_title
        )
        if error.permanent:
            raise PermanentError(str(error)) from error
        raise TemporaryError(str(error)) from error
    row.provider_message_id = accepted.message_id
    logger.info("WhatsApp %s to %s accepted", row.pk, mask_phone(row.wa_number))
    return ["provider_message_id"]


def _classify(error: Exception) -> Exception:
    return TemporaryError(f"{type(error).__name__}: {error}")


def _failed(row: WhatsAppMessage, error: Exception) -> None:
    cause = error.__cause__
    if isinstance(cause, WhatsAppError):
        if cause.not_on_whatsapp and row.user_id:
            whatsapp_block_member(user_id=row.user_id, reason=f"({cause.code}) {cause.title}")
        if cause.needs_operator:
            logger.error("WhatsApp needs an operator: %s", cause)
    whatsapp_fall_back(row)


def whatsapp_block_member(*, user_id: int, reason: str) -> None:
    """Meta says this number is not on WhatsApp: stop using it until the member chooses
    WhatsApp again (perhaps with another number)."""
    Profile.objects.filter(user_id=user_id, whatsapp_blocked_at__isnull=True).update(
        whatsapp_blocked_at=timezone.now(),
        whatsapp_blocked_reason=reason[:120],
        updated_at=timezone.now(),
    )


def whatsapp_fall_back(row: WhatsAppMessage) -> bool:
    """WhatsApp will not carry this message: send it by the member's next channel, once
    (next_channel.py). True if this call did it."""
    return send_by_next_channel(row)


WHATSAPP_OUTBOX = Outbox(
    model=WhatsAppMessage,
    send=_send,
    classify=_classify,
    queue=_queue,
    max_attempts=lambda: settings.WHATSAPP_MAX_ATTEMPTS,
    on_failed=_failed,
    sent_together=True,  # _send skips a row a status named: a retry after a crash is safe
)


def whatsapp_deliver(*, message_id: int, now: datetime | None = None) -> DeliveryResult:
    """Send one queued WhatsApp message, at most once at a time (core/outbox.py)."""
    return outbox_deliver(WHATSAPP_OUTBOX, pk=message_id, now=now)


def whatsapp_requeue(*, message_ids: Iterable[int]) -> int:
    """Queue failed messages again (admin "resend"): only those that did not go by another
    channel instead, and not to a number Meta says is not on WhatsApp."""
    sendable = WhatsAppMessage.objects.filter(pk__in=list(message_ids), fell_back_at__isnull=True)
    sendable = sendable.exclude(user__profile__whatsapp_blocked_at__isnull=False)
    return outbox_requeue(WHATSAPP_OUTBOX, ids=sendable.values_list("pk", flat=True))


def whatsapp_sweep(*, now: datetime | None = None) -> dict:
    """Queue again what a lost task or a dead worker left behind (outbox_sweep)."""
    return outbox_sweep(WHATSAPP_OUTBOX, now=now)


@shared_task(
    name="attendance.tasks.whatsapp_deliver_task",
    bind=True,
    max_retries=None,
    acks_late=True,
    ignore_result=True,
)
def whatsapp_deliver_task(self: Task, message_id: int) -> str:
    return outbox_deliver_or_retry(WHATSAPP_OUTBOX, self, message_id)


@shared_task(
    name="attendance.tasks.whatsapp_deliver_batch_task", acks_late=True, ignore_result=True
)
def whatsapp_deliver_batch_task(message_ids: list[int]) -> dict:
    return outbox_deliver_batch(WHATSAPP_OUTBOX, message_ids, whatsapp_deliver_task)
