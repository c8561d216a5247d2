"""WhatsApp: the outbox channel beside email and SMS, and the webhook's inbox.

A message is a row first (WhatsAppMessage, the same outbox machine as email and SMS), a send
through Meta's Cloud API second, then the statuses Meta posts back (WhatsAppWebhook, the inbox
machine). What members write to us is kept once per WhatsApp message id (WhatsAppInbound).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .inbox import INBOX_OPEN, InboxRow
from .notifications import EmailNotification, MessageType, OutboxRow
from .sms import SmsMessage


class WhatsAppMessage(OutboxRow):
    """One WhatsApp message: an approved template (any time) or free text (only inside the
    member's 24-hour window).

    `status` says whether Meta *accepted* it; `delivery_status` is what the status webhooks
    said afterwards, and only ever moves forward (sent < delivered < read; failed is final
    unless it was delivered first). A failure that means WhatsApp cannot reach the member
    sends the message by their next channel, once (`fell_back_at`).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Accepted by WhatsApp"
        FAILED = "failed", "Failed"

    class Kind(models.TextChoices):
        TEMPLATE = "template", "Template"
        TEXT = "text", "Free text (inside the window)"

    class Delivery(models.TextChoices):
        NONE = "", "No status yet"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_messages",
    )
    wa_number = models.CharField("WhatsApp number", max_length=16, help_text="2547XXXXXXXX")
    notification_type = models.CharField(max_length=30, choices=MessageType.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    template_name = models.CharField(max_length=60, blank=True)
    language = models.CharField(max_length=5, blank=True)
    # What the member reads (the template's text with its values, or the free text).
    text = models.TextField()
    # The `template` or `text` object of the request, built when the row is written: what is
    # stored is what is sent, however late the send.
    content = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    delivery_status = models.CharField(
        max_length=10, choices=Delivery.choices, blank=True, default=Delivery.NONE
    )
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_title = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    # The same message as a text, in the member's language, written with the row: what goes
    # by SMS if WhatsApp cannot carry it.
    fallback_text = models.TextField(blank=True)
    # What Meta's status says it was billed as (`pricing.type` / `pricing.category`).
    pricing = models.CharField(max_length=60, blank=True)
    # The email written beside it, held back, and when the message went by the next channel
    # instead (an SMS, or that email): set once, so a second failure report sends nothing.
    fallback_email = models.OneToOneField(
        EmailNotification,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_held_for",
    )
    fell_back_at = models.DateTimeField(null=True, blank=True)
    fallback_sms = models.OneToOneField(
        SmsMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_fallback_for",
    )
    event = models.ForeignKey(
        "attendance.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_messages",
    )
    payment = models.ForeignKey(
        "attendance.MpesaPayment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_messages",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_messages",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "WhatsApp message"
        indexes = [
            models.Index(fields=["-created_at"], name="wa_recent"),
            models.Index(fields=["user", "-created_at"], name="wa_user_recent"),
            models.Index(fields=["crew_assignment", "-created_at"], name="wa_crew_recent"),
            models.Index(fields=["status", "-created_at"], name="wa_status_recent"),
            models.Index(fields=["delivery_status", "-created_at"], name="wa_delivery_recent"),
            models.Index(
                fields=["next_attempt_at"], name="wa_queued", condition=Q(status="queued")
            ),
            models.Index(fields=["claimed_at"], name="wa_sending", condition=Q(status="sending")),
        ]

    def __str__(self):
        return f"{self.get_notification_type_display()} to {self.wa_number}"


class WhatsAppWebhook(InboxRow):
    """Every POST Meta made to the webhook with a valid signature, raw. One POST may carry
    many statuses and messages (up to 1,000): the columns describe its first."""

    class Kind(models.TextChoices):
        STATUS = "status", "Delivery status"
        MESSAGE = "message", "Message from a member"
        MIXED = "mixed", "Statuses and messages"
        OTHER = "other", "Other (errors, account updates)"

    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.OTHER)
    provider_id = models.CharField(max_length=200, blank=True)
    sender = models.CharField(max_length=20, blank=True)
    text = models.TextField(blank=True)
    updates = models.PositiveIntegerField(default=0)
    message = models.ForeignKey(
        WhatsAppMessage,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhooks",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta(InboxRow.Meta):
        verbose_name = "WhatsApp webhook"
        indexes = [
            models.Index(fields=["-received_at"], name="wahook_recent"),
            models.Index(fields=["provider_id"], name="wahook_provider"),
            models.Index(fields=["status", "-received_at"], name="wahook_status"),
            models.Index(
                fields=["received_at"], name="wahook_open", condition=Q(status__in=INBOX_OPEN)
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.provider_id}"


class WhatsAppInbound(models.Model):
    """One message a member (or anyone) wrote to our WhatsApp number, once: Meta may post it
    again, and its id is unique here. Replies nobody could read stay for staff."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        BUTTON = "button", "Button press"
        INTERACTIVE = "interactive", "Reply button"
        OTHER = "other", "Other (media, location ...)"

    wamid = models.CharField("WhatsApp message id", max_length=200, unique=True)
    wa_number = models.CharField(max_length=20)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.TextField(blank=True)
    # The button's payload (ours, set when the template was sent), and the message it answers.
    payload = models.CharField(max_length=256, blank=True)
    context_id = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField("written at")
    received_at = models.DateTimeField(auto_now_add=True)
    webhook = models.ForeignKey(
        WhatsAppWebhook, on_delete=models.SET_NULL, null=True, related_name="inbound"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_inbound",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="whatsapp_replies",
    )
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "WhatsApp message from a member"
        verbose_name_plural = "WhatsApp messages from members"
        indexes = [
            models.Index(fields=["-received_at"], name="wain_recent"),
            models.Index(fields=["user", "-received_at"], name="wain_user_recent"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} from {self.wa_number}"
