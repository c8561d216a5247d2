"""Which channel a message to a member takes: email, SMS, both, WhatsApp or the app's
notifications (push), as they chose.

Services that tell a member something call `member_message`; it writes the rows in the
caller's transaction. A member who takes texts or WhatsApp still gets the email written,
`held`: it goes out once if nothing else reaches them (opted out, invalid number, reported
undelivered, outcome unknown), so nothing important is lost silently. WhatsApp's next channel
is SMS (when the member can get texts), then that held email: each message goes by one of
them, never by two by accident. Push is the same: the four messages a phone should show at
once go as notifications; when no device of the member takes one, by SMS, else the email.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from attendance.models import (
    EmailNotification,
    MessageChannel,
    Profile,
    PushMessage,
    SmsMessage,
    WhatsAppMessage,
)
from attendance.services.messaging.email import (
    Attachment,
    notification_create,
    notification_release_held,
)
from attendance.services.messaging.push import PUSH_TYPES, push_create, push_usable
from attendance.services.messaging.sms import SMS_TYPES, sms_create
from attendance.services.messaging.whatsapp import (
    whatsapp_can_carry,
    whatsapp_create,
    whatsapp_usable,
)

Channel = MessageChannel
# The row a member sees first, whichever channel carried it.
MemberMessage = EmailNotification | SmsMessage | WhatsAppMessage | PushMessage


def _profile(user: User) -> Profile | None:
    try:
        return user.profile  # cached on the user after the first look
    except Profile.DoesNotExist:
        return None


def member_can_text(user: User) -> bool:
    """Can an SMS reach this member now (texts on, a number, not blocked)?"""
    profile = _profile(user)
    return bool(
        settings.SMS_ENABLED and profile and profile.phone_number and profile.sms_blocked_at is None
    )


def member_channel(user: User) -> str:
    """ "email", "sms", "both", "whatsapp" or "push": what this member gets, given what can
    reach them now."""
    profile = _profile(user)
    chosen = (profile.message_channel if profile else "") or settings.SMS_DEFAULT_CHANNEL
    if chosen == Channel.PUSH:
        if push_usable(user):
            return Channel.PUSH
        chosen = settings.SMS_DEFAULT_CHANNEL  # no phone of theirs has notifications on now
    if chosen == Channel.WHATSAPP:
        if whatsapp_usable(profile):
            return Channel.WHATSAPP
        chosen = settings.SMS_DEFAULT_CHANNEL  # they chose WhatsApp; it cannot reach them
    if not member_can_text(user):
        return Channel.EMAIL
    if not user.email:
        return Channel.SMS
    return chosen


def member_channel_choice(profile: Profile) -> str:
    """What the member chose, or the company's default for them: the Account page's answer."""
    return profile.message_channel or settings.SMS_DEFAULT_CHANNEL


def member_reachable(user: User) -> bool:
    """Can any message reach this member (an email address, texts or WhatsApp)?"""
    return bool(user.email) or member_channel(user) != Channel.EMAIL


def member_message(
    *,
    user: User,
    notification_type: str,
    context: dict,
    attachments: tuple[Attachment, ...] = (),
    sms_context: dict | None = None,
    text: bool = True,
    **links: Any,
) -> MemberMessage | None:
    """Tell a member something on their channel(s). Returns the row they will see first (the
    text when one is sent), or None when nothing can reach them. `sms_context` adds to the
    context of the text only (a short link instead of two long ones). `text=False`: email
    only, because the member has just been answered by text about the same thing."""
    channel = member_channel(user)
    if channel == Channel.PUSH and (not text or notification_type not in PUSH_TYPES):
        # The app shows only what a phone should show at once: the rest by text or email.
        channel = Channel.SMS if member_can_text(user) else Channel.EMAIL
    if channel == Channel.WHATSAPP and (
        not text or not whatsapp_can_carry(user.profile, notification_type)
    ):
        # No template for it and the member's window is closed: the next channel.
        channel = Channel.SMS if member_can_text(user) else Channel.EMAIL
    if notification_type not in SMS_TYPES or not text:
        channel = Channel.EMAIL
    email = None
    if user.email:
        email = notification_create(
            recipient=user.email,
            user=user,
            notification_type=notification_type,
            context=context,
            attachments=attachments,
            hold=channel in (Channel.SMS, Channel.WHATSAPP, Channel.PUSH),
            **links,
        )
    if channel == Channel.EMAIL:
        return email
    if channel == Channel.PUSH:
        pushed = push_create(
            user=user,
            notification_type=notification_type,
            context={**context, **(sms_context or {})},
            fallback_email=email,
            **links,
        )
        if pushed is not None:
            return pushed
        channel = Channel.SMS if member_can_text(user) else Channel.EMAIL
        if channel == Channel.EMAIL:
            if email is not None:
                notification_release_held(notification_id=email.pk)
            return email
    if channel == Channel.WHATSAPP:
        sent = whatsapp_create(
            user=user,
            notification_type=notification_type,
            context={**context, **(sms_context or {})},
            fallback_email=email,
            **links,
        )
        if sent is not None:
            return sent
        if not member_can_text(user):
            if email is not None:
                notification_release_held(notification_id=email.pk)
            return email
    return sms_create(
        user=user,
        phone_number=user.profile.phone_number,
        notification_type=notification_type,
        context={**context, **(sms_context or {})},
        fallback_email=email if channel in (Channel.SMS, Channel.WHATSAPP, Channel.PUSH) else None,
        **links,
    )
