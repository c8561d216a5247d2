"""M-Pesa B2C payouts of approved pay, and every result Daraja posts about them, stored raw.

A payout is written (with its OriginatorConversationID) and committed before its POST. Its
outcome comes later, by a result or by Transaction Status; a payout whose POST may have
reached Daraja is *unknown* until Daraja says, and is never sent again. A new attempt after a
proven failure is a new row with a new id, linked to the old one.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .inbox import INBOX_OPEN, InboxRow


class Payout(models.Model):
    class Status(models.TextChoices):
        # To a number changed in the last PAYOUT_NEW_NUMBER_HOLD_DAYS: a second Finance
        # member releases it (to the queue) before it is sent.
        HELD = "held", "Held: new number, waiting for a second approval"
        QUEUED = "queued", "Queued"
        # Claimed by one worker for its POST. Left like this, the worker died around the
        # POST: money may have moved, so reconciliation treats it as unknown.
        SENDING = "sending", "Sending"
        SUBMITTED = "submitted", "Submitted, waiting for the result"
        UNKNOWN = "unknown", "Outcome unknown: asking M-Pesa"
        COMPLETED = "completed", "Paid"
        FAILED = "failed", "Not paid"

    OPEN = (Status.QUEUED, Status.SENDING, Status.SUBMITTED, Status.UNKNOWN)

    pay_run = models.ForeignKey(
        "attendance.PayRun", on_delete=models.PROTECT, related_name="payouts"
    )
    payslip = models.ForeignKey(
        "attendance.PayRunMember", on_delete=models.PROTECT, related_name="payouts"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payouts"
    )
    phone_number = models.CharField(max_length=12)
    # Whole shillings (Daraja's B2C takes no cents). Decided when the payout is claimed for
    # its first POST, under the member's ledger lock: never more than they are owed then.
    amount = models.PositiveIntegerField()
    # What the payslip said, when the member was owed less by the time it was sent.
    capped_from = models.PositiveIntegerField(null=True, blank=True)
    originator_conversation_id = models.CharField(max_length=64, unique=True)
    conversation_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result_code = models.CharField(max_length=20, blank=True)
    result_description = models.CharField(max_length=255, blank=True)
    receipt_number = models.CharField(max_length=40, blank=True)
    receiver_name = models.CharField(max_length=200, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    utility_balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=255, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The second Finance member who released a held payout.",
    )
    retry_of = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="retried_by"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    status_checks = models.PositiveSmallIntegerField(default=0)
    # POSTs of this payout, all with the same OriginatorConversationID: more than one only
    # when Daraja could not say whether the first arrived (a duplicate id proves it did).
    sends = models.PositiveSmallIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["pay_run", "status"], name="payout_run_status"),
            models.Index(fields=["user", "-created_at"], name="payout_user_recent"),
            # The reconciler's work: payouts whose outcome is not known yet.
            models.Index(
                fields=["submitted_at"],
                name="payout_open",
                condition=Q(status__in=["sending", "submitted", "unknown"]),
            ),
        ]
        constraints = [
            # One payout of a payslip at a time that may still pay: a second attempt only
            # once the first is proven failed.
            models.UniqueConstraint(
                fields=["payslip"],
                condition=~Q(status="failed"),
                name="payout_one_live_per_payslip",
            ),
            models.CheckConstraint(condition=Q(amount__gte=10), name="payout_b2c_minimum"),
        ]
        permissions = [
            ("submit_payout", "Can submit payouts"),
            ("close_payout", "Can close payouts whose outcome is unknown"),
        ]

    def __str__(self):
        return f"Payout {self.originator_conversation_id} (KES {self.amount})"


class PayoutResult(InboxRow):
    """Every body posted to a payout result URL with the right token, stored raw and
    committed before it is acted on."""

    class Kind(models.TextChoices):
        RESULT = "result", "B2C result"
        TIMEOUT = "timeout", "B2C queue timeout"
        STATUS = "status", "Transaction Status result"
        BALANCE = "balance", "Account Balance result"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    conversation_id = models.CharField(max_length=100, blank=True)
    originator_conversation_id = models.CharField(max_length=100, blank=True)
    payout = models.ForeignKey(
        Payout, on_delete=models.SET_NULL, null=True, blank=True, related_name="results"
    )

    class Meta(InboxRow.Meta):
        indexes = [
            models.Index(
                fields=["received_at"],
                name="payoutresult_open",
                condition=Q(status__in=INBOX_OPEN),
            ),
            models.Index(fields=["conversation_id"], name="payoutresult_conversation"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.pk} ({self.get_status_display()})"
