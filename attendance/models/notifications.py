from django.conf import settings
from django.db import models
from django.db.models import Q


class MessageType(models.TextChoices):
    """What a message is about, whichever channel carries it (email or SMS)."""

    EVENT_CREATED = "event_created", "Event created"
    EVENT_UPDATED = "event_updated", "Event updated"
    CREW_INVITATION = "crew_invitation", "Crew invitation"
    CREW_REMINDER = "crew_reminder", "Reminder"
    CREW_DECLINED = "crew_declined", "Crew declined (to managers)"
    SETUP_BRIEFING = "setup_briefing", "Setup briefing"
    PAYMENT_CONFIRMATION = "payment_confirmation", "Payment confirmation"
    PAYMENT_REVIEW = "payment_review", "Payment needs review"
    PAYMENT_UNMATCHED = "payment_unmatched", "Payment matching no request"
    PASSWORD_RESET = "password_reset", "Password reset"
    ALERT = "alert", "Operations alert"
    PAYSLIP = "payslip", "Payslip"
    PAYOUT_RECEIPT = "payout_receipt", "Payout receipt"
    PAYOUT_NOT_PAID = "payout_not_paid", "Payout not paid"
    PAY_RUN_WAITING = "pay_run_waiting", "Pay run waiting for approval"
    DISPUTE_ANSWERED = "dispute_answered", "Pay dispute answered"
    PHONE_CODE = "phone_code", "Phone number code"
    PHONE_CHANGED = "phone_changed", "Phone number changed"
    CREW_REPLY = "crew_reply", "Answer to an SMS reply"
    CREW_OFF = "crew_off", "Off the crew (calendar cancelled)"
    CREW_UNAVAILABLE = "crew_unavailable", "Confirmed crew now unavailable (to managers)"
    CREW_STAFFING = "crew_staffing", "Standby, offers and replacements (to managers)"
    CREW_OFFER_ANSWER = "crew_offer_answer", "Answer to an offer or a replacement request"
    SHOW_LEAVE_NOW = "show_leave_now", "Show day: leave now"
    SHOW_ARE_YOU_COMING = "show_are_you_coming", "Show day: are you coming?"
    SHOW_CHECK_OUT = "show_check_out", "Show day: check out"
    SHOW_LATE = "show_late", "Show day: crew not checked in (to managers)"
    SHOW_ROLE_SHORT = "show_role_short", "Show day: roles still short (to managers)"


class OutboxRow(models.Model):
    """The delivery bookkeeping every outbox row has (services/core/outbox.py keeps it)."""

    sent_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When its delivery task was last queued: the sweeper leaves rows whose task may still be
    # waiting in the broker (a backlog behind a slow server) rather than queue them again.
    queued_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class EmailNotification(OutboxRow):
    """One email: a row first, a delivery second.

    The row is written in the caller's transaction, so a rolled-back action sends nothing; the
    delivery task is queued after commit and claims the row before sending, so two workers never
    send it twice. What is stored is what was sent: subject and bodies are rendered when the row
    is created, not at delivery.
    """

    Type = MessageType

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Written with an SMS, sent only if the SMS cannot reach the member (opted out,
        # invalid number, outcome unknown): the fallback goes out at most once.
        HELD = "held", "Held (SMS sent instead)"

    recipient = models.EmailField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )
    notification_type = models.CharField(max_length=30, choices=Type.choices)
    subject = models.CharField(max_length=255)
    message = models.TextField(help_text="Plain-text body")
    html_message = models.TextField(blank=True)
    attachments = models.JSONField(
        default=list, blank=True, help_text="[{filename, mimetype, content}] (text content)"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    event = models.ForeignKey(
        "attendance.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )
    payment = models.ForeignKey(
        "attendance.MpesaPayment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )
    crew_assignment = models.ForeignKey(
        "attendance.EventCrew",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_status_next"),
            models.Index(fields=["user", "-created_at"], name="notif_user_recent"),
            models.Index(fields=["event", "-created_at"], name="notif_event_recent"),
            models.Index(fields=["-created_at"], name="notif_recent"),
            # The list sorted by a column: its ties newest first (admin IndexedSortChangeList).
            models.Index(fields=["status", "-created_at"], name="notif_status_recent"),
            models.Index(fields=["crew_assignment", "-created_at"], name="notif_crew_recent"),
            # What the admin sorts and searches by (an address is looked up whole).
            models.Index(fields=["recipient", "-created_at"], name="notif_recipient"),
            models.Index(fields=["-sent_at"], name="notif_sent"),
            models.Index(fields=["notification_type", "-created_at"], name="notif_type_recent"),
            # The sweeper's work: small whatever the history's size.
            models.Index(
                fields=["next_attempt_at"],
                name="notif_queued",
                condition=Q(status="queued"),
            ),
            models.Index(
                fields=["claimed_at"], name="notif_sending", condition=Q(status="sending")
            ),
        ]

    def __str__(self):
        return f"{self.get_notification_type_display()} to {self.recipient}"
