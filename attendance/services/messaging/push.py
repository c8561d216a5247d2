"""The app's notifications (web push): a channel of the outbox beside email, SMS and WhatsApp.

The delivery machinery (claim once, retry with backoff, fail for good, sweep) is core/outbox.py.
What is particular to push:

- A member turns it on per device, from the Account page; each device is a PushSubscription.
  A notification is one row, pushed to every device of the member; it is sent when at least
  one push service accepted it.
- Push carries the messages a phone should show at once: invitations (with Confirm / Decline
  on the notification, answered like the answer links), reminders, "leave now" and "are you
  coming?". Others go by the member's next channel.
- A push service answering 404 or 410 says that device is gone: its subscription is removed.
  A notification no device can take any more goes by the member's next channel, once
  (`fell_back_at`): an SMS written from the text kept on the row, or the email held beside it.
  429 and 5xx are tried again with the outbox's backoff; nothing is sent twice by accident,
  because a device that accepted is not pushed again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from attendance.models import (
    EmailNotification,
    MessageType,
    PushMessage,
    PushSubscription,
    django_language,
)
from attendance.push.client import PushClient, PushError
from attendance.push.keys import private_key_from, public_key_of
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
from attendance.services.core.urls import absolute_url
from attendance.services.messaging.next_channel import send_by_next_channel
from attendance.services.messaging.sms import SMS_TYPES, sms_render

logger = logging.getLogger(__name__)
T = MessageType
# What a phone should show at once, and how urgently the push service should deliver it.
PUSH_TYPES: dict[str, str] = {
    T.CREW_INVITATION: "normal",
    T.CREW_REMINDER: "normal",
    T.SHOW_LEAVE_NOW: "high",
    T.SHOW_ARE_YOU_COMING: "high",
}
MAX_SUBSCRIPTIONS = 10  # a member's devices; the oldest goes when an eleventh subscribes


class PushSubscriptionError(ServiceError):
    """What the browser sent is not a push subscription."""

    code = "bad_subscription"


# --- Subscriptions ----------------------------------------------------------------------------


def push_usable(user: User) -> bool:
    """Can a notification reach this member now (push on, at least one device)?"""
    return settings.WEBPUSH_ENABLED and PushSubscription.objects.filter(user=user).exists()


def push_subscribe(*, user: User, subscription: Any, user_agent: str = "") -> PushSubscription:
    """Keep a device's subscription (`PushSubscription.toJSON()`) for the member. The same
    endpoint again (the page sends it on every start) updates its keys; an endpoint another
    member had (a shared phone) becomes this member's."""
    try:
        endpoint = str(subscription["endpoint"])
        p256dh, auth = str(subscription["keys"]["p256dh"]), str(subscription["keys"]["auth"])
    except (KeyError, TypeError) as error:
        raise PushSubscriptionError("Not a push subscription.") from error
    if not endpoint.startswith(("https://", "http://")) or len(endpoint) > 1000:
        raise PushSubscriptionError("Not a push service's address.")
    if len(p256dh) != 87 or len(auth) != 22:
        raise PushSubscriptionError("Not a browser's push keys.")
    row, _created = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={"user": user, "p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]},
    )
    devices = PushSubscription.objects.filter(user=user).order_by("-created_at")
    extra = devices.values_list("pk", flat=True)[MAX_SUBSCRIPTIONS:]
    PushSubscription.objects.filter(pk__in=list(extra)).delete()
    return row


def push_device_count(user: User) -> int:
    """How many of the member's devices have notifications on (0 when push is off)."""
    if not settings.WEBPUSH_ENABLED:
        return 0
    return PushSubscription.objects.filter(user=user).count()


def push_unsubscribe(*, user: User, endpoint: str) -> int:
    """Forget a device (the member turned notifications off there)."""
    return PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()[0]


# --- Writing ----------------------------------------------------------------------------------


def push_render(notification_type: str, context: dict) -> tuple[str, str]:
    """(title, body) in the active language (`push/sw/<type>.txt` for Kiswahili)."""
    names = [f"attendance/push/{notification_type}.txt"]
    if translation.get_language() == "sw":
        names.insert(0, f"attendance/push/sw/{notification_type}.txt")
    title, _newline, body = render_to_string(names, context).strip().partition("\n")
    return title.strip()[:120], body.strip()[:300]


def _payload(row: PushMessage, context: dict) -> dict:
    title, body = push_render(row.notification_type, context)
    payload: dict[str, Any] = {
        "title": title,
        "body": body,
        "tag": f"{row.notification_type}-{row.crew_assignment_id or row.event_id or ''}",
        "url": absolute_url("attendance:home"),
    }
    if row.event_id:
        payload["url"] = absolute_url("attendance:event_detail", row.event_id)
    if row.notification_type == T.SHOW_ARE_YOU_COMING and context.get("coming_url"):
        payload["url"] = context["coming_url"]
    if row.notification_type == T.CREW_INVITATION and context.get("confirm_url"):
        # Confirm / Decline on the notification (Chromium); elsewhere the page it opens.
        payload["url"] = absolute_url("attendance:crew_assignments")
        # The answer links' JSON twin (`…/now/`): the worker posts there, with no page.
        payload["actions"] = [
            {"action": "confirm", "title": _("Confirm"), "answer": context["confirm_url"] + "now/"},
            {"action": "decline", "title": _("Decline"), "answer": context["decline_url"] + "now/"},
        ]
    return payload


def push_create(
    *,
    user: User,
    notification_type: str,
    context: dict,
    fallback_email: EmailNotification | None = None,
    **links: Any,
) -> PushMessage | None:
    """Write a notification for the member and queue its pushing after commit. None when push
    does not carry this type or the member has no device: the caller uses the next channel."""
    if notification_type not in PUSH_TYPES or not push_usable(user):
        return None
    # The profile channels.py read is cached on the user: no second query for the language.
    language = django_language(user.profile.language)
    context = {"site_url": settings.SITE_URL, "recipient_user": user, **context}
    row = PushMessage(
        user=user,
        notification_type=notification_type,
        fallback_email=fallback_email,
        **links,
    )
    try:
        with translation.override(language):
            row.payload = _payload(row, context)
            row.fallback_text = (
                sms_render(notification_type, context) if notification_type in SMS_TYPES else ""
            )
    except TemplateDoesNotExist:
        logger.exception("Push %s could not be rendered", notification_type)
        return None
    row.queued_at = timezone.now()
    row.save()
    _queue([row.pk])
    return row


# --- Delivery ---------------------------------------------------------------------------------


def _queue(ids: list[int]) -> None:
    outbox_queue_batches(ids, push_deliver_task, push_deliver_batch_task)


def push_client() -> PushClient:
    return PushClient(
        private_key=settings.VAPID_PRIVATE_KEY,
        subject=settings.VAPID_SUBJECT,
        timeout=settings.WEBPUSH_TIMEOUT,
    )


def _send(row: PushMessage) -> list[str]:
    if not settings.WEBPUSH_ENABLED:
        raise PermanentError("Web push is off (no VAPID_PRIVATE_KEY).")
    devices = list(PushSubscription.objects.filter(user_id=row.user_id)) if row.user_id else []
    if not devices:
        raise PermanentError("The member has no device with notifications on.")
    client, accepted, later = push_client(), 0, []
    ttl = settings.WEBPUSH_TTL_SECONDS
    urgency = PUSH_TYPES.get(row.notification_type, "normal")
    # Topic: a newer notification about the same thing replaces one a phone has not had yet.
    topic = row.payload.get("tag", "")
    for device in devices:
        now = timezone.now()
        try:
            client.send(
                device.as_subscription(),
                row.payload,
                ttl=ttl,
                urgency=urgency,
                topic=topic,
            )
        except PushError as error:
            if error.gone:
                logger.info("Push subscription %s gone (%s): removed", device.pk, error.status)
                device.delete()
                continue
            PushSubscription.objects.filter(pk=device.pk).update(
                last_failure_at=now, last_status=error.status
            )
            if error.permanent:
                logger.error("Push %s refused for good: %s", row.pk, error)
                continue
            later.append(str(error))
            continue
        accepted += 1
        PushSubscription.objects.filter(pk=device.pk).update(last_success_at=now, last_status=201)
    if accepted:
        row.devices = accepted
        return ["devices"]
    if later:
        raise TemporaryError("; ".join(later))
    raise PermanentError("No device of the member took it.")


def _classify(error: Exception) -> Exception:
    return TemporaryError(f"{type(error).__name__}: {error}")


def _failed(row: PushMessage, error: Exception) -> None:
    push_fall_back(row)


def push_fall_back(row: PushMessage) -> bool:
    """No device took the notification: send it by the member's next channel, once
    (next_channel.py). True if this call did it."""
    return send_by_next_channel(row)


PUSH_OUTBOX = Outbox(
    model=PushMessage,
    send=_send,
    classify=_classify,
    queue=_queue,
    max_attempts=lambda: settings.WEBPUSH_MAX_ATTEMPTS,
    on_failed=_failed,
)


def push_deliver(*, message_id: int, now: datetime | None = None) -> DeliveryResult:
    """Push one queued notification, at most once at a time (core/outbox.py)."""
    return outbox_deliver(PUSH_OUTBOX, pk=message_id, now=now)


def push_requeue(*, message_ids: Iterable[int]) -> int:
    """Queue failed notifications again (admin): only those that did not go another way."""
    sendable = PushMessage.objects.filter(pk__in=list(message_ids), fell_back_at__isnull=True)
    return outbox_requeue(PUSH_OUTBOX, ids=sendable.values_list("pk", flat=True))


def push_sweep(*, now: datetime | None = None) -> dict:
    """Queue again what a lost task or a dead worker left behind (outbox_sweep)."""
    return outbox_sweep(PUSH_OUTBOX, now=now)


def push_public_key() -> str:
    """The VAPID public key the Account page subscribes with ("" when push is off)."""
    if not settings.WEBPUSH_ENABLED:
        return ""
    return public_key_of(private_key_from(settings.VAPID_PRIVATE_KEY))


@shared_task(
    name="attendance.tasks.push_deliver_task",
    bind=True,
    max_retries=None,
    acks_late=True,
    ignore_result=True,
)
def push_deliver_task(self: Task, message_id: int) -> str:
    return outbox_deliver_or_retry(PUSH_OUTBOX, self, message_id)


@shared_task(name="attendance.tasks.push_deliver_batch_task", acks_late=True, ignore_result=True)
def push_deliver_batch_task(message_ids: list[int]) -> dict:
    return outbox_deliver_batch(PUSH_OUTBOX, message_ids, push_deliver_task)
