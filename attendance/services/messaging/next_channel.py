"""When WhatsApp or the app's notifications cannot carry a message: the member's next channel,
once. Both rows keep the message as a text (`fallback_text`) and the email written beside it,
held (`fallback_email`); `fell_back_at` moves in one conditional UPDATE, so a second failure
report, a retry or a sweep sends nothing more."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from attendance.models import Profile
from attendance.services.messaging.email import notification_release_held
from attendance.services.messaging.sms import sms_create


def send_by_next_channel(row: Any) -> bool:
    """An SMS when the member can get texts, else the held email. True if this call did it."""
    model = type(row)
    now = timezone.now()
    if not model.objects.filter(pk=row.pk, fell_back_at__isnull=True).update(fell_back_at=now):
        return False
    row.fell_back_at = now
    profile = Profile.objects.filter(user=row.user_id).select_related("user").first()
    can_text = bool(
        settings.SMS_ENABLED
        and profile is not None
        and profile.phone_number
        and profile.sms_blocked_at is None
        and row.fallback_text
    )
    if can_text:
        assert profile is not None
        sms = sms_create(
            user=profile.user,
            phone_number=profile.phone_number,
            notification_type=row.notification_type,
            context={},
            text=row.fallback_text,
            fallback_email=row.fallback_email,
            event_id=row.event_id,
            crew_assignment_id=row.crew_assignment_id,
            payment_id=row.payment_id,
        )
        model.objects.filter(pk=row.pk).update(fallback_sms=sms)
        row.fallback_sms = sms
        return True
    if row.fallback_email_id is not None:
        notification_release_held(notification_id=row.fallback_email_id)
    return True
