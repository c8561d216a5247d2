"""Which channel a message to a member takes: email, SMS or both, as they chose.

Services that tell a member something call `member_message`; it writes the rows (email and/or
SMS) in the caller's transaction. A member who takes texts only still gets the email written,
`held`: it goes out once if the text cannot reach them (opted out, invalid number, reported
undelivered, outcome unknown), so nothing important is lost silently.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User

from attendance.models import EmailNotification, MessageChannel, Profile, SmsMessage
from attendance.services.messaging.email import Attachment, notification_create
from attendance.services.messaging.sms import SMS_TYPES, sms_create

Channel = MessageChannel


def _profile(user: User) -> Profile | None:
    try:
        return user.profile  # cached on the user after the first look
    except Profile.DoesNotExist:
        return None


def member_channel(user: User) -> str:
    """ "email", "sms" or "both": what this member gets, given what can reach them now."""
    if not settings.SMS_ENABLED:
        return Channel.EMAIL
    profile = _profile(user)
    can_text = bool(profile and profile.phone_number and profile.sms_blocked_at is None)
    if not can_text:
        return Channel.EMAIL
    chosen = (profile.message_channel if profile else "") or settings.SMS_DEFAULT_CHANNEL
    if not user.email:
        return Channel.SMS
    return chosen


def member_channel_choice(profile: Profile) -> str:
    """What the member chose, or the company's default for them: the Account page's answer."""
    return profile.message_channel or settings.SMS_DEFAULT_CHANNEL


def member_reachable(user: User) -> bool:
    """Can any message reach this member (an email address, or texts they can get)?"""
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
) -> EmailNotification | SmsMessage | None:
    """Tell a member something on their channel(s). Returns the row they will see first (the
    text when one is sent), or None when nothing can reach them. `sms_context` adds to the
    context of the text only (a short link instead of two long ones). `text=False`: email
    only, because the member has just been answered by text about the same thing."""
    channel = member_channel(user)
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
            hold=channel == Channel.SMS,
            **links,
        )
    if channel == Channel.EMAIL:
        return email
    return sms_create(
        user=user,
        phone_number=user.profile.phone_number,
        notification_type=notification_type,
        context={**context, **(sms_context or {})},
        fallback_email=email if channel == Channel.SMS else None,
        **links,
    )
