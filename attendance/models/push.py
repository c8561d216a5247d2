"""Web push: the app's notifications on a member's phones, a channel of the outbox beside
email, SMS and WhatsApp.

A member turns notifications on per device (PushSubscription: what the browser's push service
gave that phone). A message is a row first (PushMessage), pushed to each of the member's
devices second; the push service answering 404 or 410 means that device is gone, and its
subscription is removed.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .notifications import EmailNotification, MessageType, OutboxRow
from .sms import SmsMessage


class PushSubscription(models.Model):
    """One device's subscription (`PushSubscription.toJSON()` from the browser)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_subscriptions"
    )
    # A capability URL on the push service: with our key, it reaches this phone.
    endpoint = models.URLField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=100)
    auth = models.CharField(max_length=40)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "push subscription"

    def __str__(self):
        return f"{self.user} on {self.user_agent[:40] or 'a device'}"

    def as_subscription(self) -> dict:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


class PushMessage(OutboxRow):
    """One notification to a member, pushed to each of their devices. Sent when at least one
    device's push service accepted it; when none can take it (no device left), it goes by the
    member's next channel once (`fell_back_at`): an SMS from `fallback_text`, or the email
    held beside it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Accepted by the push service"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_messages",
    )
    notification_type = models.CharField(max_length=30, choices=MessageType.choices)
    # What the service worker shows (title, body, url, actions): built when the row is
    # written, so what is stored is what is sent.
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    devices = models.PositiveSmallIntegerField(default=0, help_text="Devices that accepted it.")
    fallback_text = models.TextField(blank=True)
    fallback_email = models.OneToOneField(
        EmailNotification,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_held_for",
    )
    fell_back_at = models.DateTimeField(null=True, blank=True)
    fallback_sms = models.OneToOneField(
        SmsMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_fallback_for",
    )
    event = models.ForeignKey(
        "attendance.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_messages",
    )
    payment = models.ForeignKey(
        "attendance.MpesaPayment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_messages",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="push_messages",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "push notification"
        indexes = [
            models.Index(fields=["-created_at"], name="push_recent"),
            models.Index(fields=["user", "-created_at"], name="push_user_recent"),
            models.Index(fields=["status", "-created_at"], name="push_status_recent"),
            models.Index(
                fields=["next_attempt_at"], name="push_queued", condition=Q(status="queued")
            ),
            models.Index(fields=["claimed_at"], name="push_sending", condition=Q(status="sending")),
        ]

    def __str__(self):
        return f"{self.get_notification_type_display()} to {self.user}"
