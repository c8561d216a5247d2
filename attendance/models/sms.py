from django.conf import settings
from django.db import models
from django.db.models import Q

from .inbox import INBOX_OPEN, InboxRow
from .notifications import EmailNotification, MessageType, OutboxRow


class SmsMessage(OutboxRow):
    """One text: a row first, a send second, then AT's delivery reports.

    The same outbox as EmailNotification (services/core/outbox.py): written in the caller's
    transaction, claimed once, retried with backoff, swept. `status` says whether Africa's
    Talking took the message; `delivery_status` is what the network reported afterwards
    (AT's own word: Sent, Submitted, Buffered, Success = delivered, Failed, Rejected, Expired).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Accepted by Africa's Talking"
        FAILED = "failed", "Failed"

    phone_number = models.CharField(max_length=16, help_text="2547XXXXXXXX")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_messages",
    )
    notification_type = models.CharField(max_length=30, choices=MessageType.choices)
    message = models.TextField()
    encoding = models.CharField(max_length=5, default="GSM-7")
    parts = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    provider_message_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    provider_status = models.CharField(max_length=40, blank=True)
    cost = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, blank=True)
    delivery_status = models.CharField(max_length=40, blank=True)
    failure_reason = models.CharField(max_length=60, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    # The email written beside it, held back: sent once if this text cannot reach the member.
    fallback_email = models.OneToOneField(
        EmailNotification,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_held_for",
    )
    event = models.ForeignKey(
        "attendance.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_messages",
    )
    payment = models.ForeignKey(
        "attendance.MpesaPayment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_messages",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_messages",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "SMS"
        verbose_name_plural = "SMS messages"
        indexes = [
            models.Index(fields=["-created_at"], name="sms_recent"),
            models.Index(fields=["user", "-created_at"], name="sms_user_recent"),
            models.Index(fields=["event", "-created_at"], name="sms_event_recent"),
            models.Index(fields=["crew_assignment", "-created_at"], name="sms_crew_recent"),
            models.Index(fields=["phone_number", "-created_at"], name="sms_phone"),
            models.Index(fields=["status", "-created_at"], name="sms_status_recent"),
            # The list sorted by a column: its ties newest first (admin IndexedSortChangeList).
            models.Index(fields=["notification_type", "-created_at"], name="sms_type_recent"),
            models.Index(fields=["cost", "-created_at"], name="sms_cost_recent"),
            # The delivery filter: a handful failed among half a million, counted in the index.
            models.Index(fields=["delivery_status", "-created_at"], name="sms_delivery_recent"),
            # Taken by AT, no final report yet (the list's "waiting" filter): a few among many.
            models.Index(
                fields=["-created_at"],
                name="sms_awaiting_report",
                condition=Q(status="sent")
                & ~Q(delivery_status__in=["Success", "Failed", "Rejected", "Expired"]),
            ),
            models.Index(
                fields=["next_attempt_at"], name="sms_queued", condition=Q(status="queued")
            ),
            models.Index(fields=["claimed_at"], name="sms_sending", condition=Q(status="sending")),
        ]

    def __str__(self):
        return f"{self.get_notification_type_display()} to {self.phone_number}"

    @property
    def delivered(self) -> bool:
        return self.delivery_status.lower() == "success"


class SmsCallback(InboxRow):
    """Every delivery report and incoming message that reached us with the right token, raw.

    Replies nobody could match stay here, `unmatched`, for staff.
    """

    class Kind(models.TextChoices):
        REPORT = "report", "Delivery report"
        INCOMING = "incoming", "Incoming message"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The report's messageId, or the incoming message's own id.
    provider_id = models.CharField(max_length=100, blank=True)
    sender = models.CharField(max_length=20, blank=True)
    text = models.TextField(blank=True)
    message = models.ForeignKey(
        SmsMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="callbacks"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sms_replies",
    )

    class Meta(InboxRow.Meta):
        verbose_name = "SMS callback"
        indexes = [
            models.Index(fields=["-received_at"], name="smscb_recent"),
            models.Index(fields=["kind", "provider_id"], name="smscb_provider"),
            models.Index(fields=["status", "-received_at"], name="smscb_status"),
            models.Index(
                fields=["received_at"], name="smscb_open", condition=Q(status__in=INBOX_OPEN)
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.provider_id}"
