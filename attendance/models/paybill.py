"""Money paid to the company's Paybill or Till from the SIM menu (Daraja's C2B), not by a prompt
we sent: one row per M-Pesa receipt, and the inbox of what Safaricom told us about them.

A payment is known from its confirmation, from Pull Transactions (which also finds the ones
whose confirmation was lost), or later from the statement. Whichever comes first creates the
row; the receipt (TransID) is unique, so the others find it and change nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .inbox import INBOX_OPEN, InboxRow


class PaybillPayment(models.Model):
    class Status(models.TextChoices):
        # Credited to the member the account number (or the v1 hash) names.
        CREDITED = "credited", "Credited"
        # The same money as one of our STK prompts: credited there, never here.
        STK = "stk", "Credited as an M-Pesa prompt"
        # A prompt of the same member and amount is still open: settled when it is.
        WAITING_STK = "waiting_stk", "Waiting for the matching prompt to settle"
        # Nobody named (or named ambiguously): waits for Finance in the unattributed queue.
        UNATTRIBUTED = "unattributed", "Unattributed: Finance must assign it"
        # Finance says it is not for us (a wrong account number): may be reversed.
        NOT_OURS = "not_ours", "Not ours"
        # M-Pesa gave the money back to the payer (a reversal completed).
        REVERSED = "reversed", "Reversed to the payer"

    class Source(models.TextChoices):
        CONFIRMATION = "confirmation", "Confirmation"
        PULL = "pull", "Pull Transactions"
        STATEMENT = "statement", "The M-Pesa statement"

    class AttributedBy(models.TextChoices):
        CODE = "code", "Account code"
        HASH = "hash", "Phone number hash (v1)"
        STAFF = "staff", "Assigned by staff"

    receipt = models.CharField(max_length=20, unique=True)  # TransID
    transaction_type = models.CharField(max_length=30, blank=True)  # Pay Bill, Buy Goods
    paid_at = models.DateTimeField(null=True, blank=True)
    amount = models.DecimalField(max_digits=11, decimal_places=2)
    short_code = models.CharField(max_length=12, blank=True)
    # What the payer typed as the account number, as sent (up to 20 characters on the wire).
    bill_ref = models.CharField("account number typed", max_length=40, blank=True)
    # Masked (v2), a SHA-256 digest (v1) or whatever Pull gives: never a phone number to us.
    msisdn = models.CharField("MSISDN (masked or hashed)", max_length=80, blank=True)
    payer_name = models.CharField(max_length=120, blank=True)
    org_balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    source = models.CharField(max_length=12, choices=Source.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    detail = models.CharField(max_length=255, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="paybill_payments",
    )
    attributed_by = models.CharField(max_length=6, choices=AttributedBy.choices, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    stk_payment = models.ForeignKey(
        "attendance.MpesaPayment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="paybill_twins",
    )
    ledger_entry = models.OneToOneField(
        "attendance.LedgerEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="paybill_payment",
    )
    received_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "Paybill payment"
        permissions = [
            ("assign_paybillpayment", "Can assign Paybill payments to members"),
        ]
        indexes = [
            models.Index(fields=["-received_at"], name="paybill_recent"),
            models.Index(fields=["status", "-received_at"], name="paybill_status"),
            models.Index(fields=["user", "-received_at"], name="paybill_user"),
            models.Index(fields=["paid_at"], name="paybill_paid_at"),
            # The queues Finance works (unattributed, waiting): small among a year of rows.
            models.Index(
                fields=["-received_at"],
                name="paybill_open",
                condition=Q(status__in=["unattributed", "waiting_stk"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="paybill_amount_positive"),
        ]

    def __str__(self):
        return f"{self.receipt}: KES {self.amount} ({self.get_status_display()})"


class PaybillNotice(InboxRow):
    """Every body that reached the Paybill endpoints with the right token, and every row
    Pull Transactions returned: stored raw, committed, then processed (the inbox machine)."""

    class Kind(models.TextChoices):
        VALIDATION = "validation", "Validation"
        CONFIRMATION = "confirmation", "Confirmation"
        PULL = "pull", "Pull Transactions row"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    receipt = models.CharField(max_length=20, blank=True)
    bill_ref = models.CharField("account number typed", max_length=40, blank=True)
    payment = models.ForeignKey(
        PaybillPayment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notices",
    )

    class Meta(InboxRow.Meta):
        verbose_name = "Paybill notice"
        indexes = [
            models.Index(fields=["-received_at"], name="paybill_notice_recent"),
            models.Index(fields=["receipt"], name="paybill_notice_receipt"),
            models.Index(
                fields=["received_at"],
                name="paybill_notice_open",
                condition=Q(status__in=INBOX_OPEN),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.receipt or self.pk}"


class Reversal(models.Model):
    """Finance's request that M-Pesa give a Paybill payment back to its payer (paid to the
    wrong account, or twice). Committed before Daraja is asked, at most one alive per receipt:
    the request carries no id of ours, so a second POST could only be answered "already
    reversed" (R000001), never prevented."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested (being sent)"
        SENT = "sent", "Sent, waiting for M-Pesa's result"
        UNKNOWN = "unknown", "Outcome unknown: check the statement"
        COMPLETED = "completed", "Reversed"
        FAILED = "failed", "Not reversed"

    ALIVE = (Status.REQUESTED, Status.SENT, Status.UNKNOWN, Status.COMPLETED)

    payment = models.ForeignKey(PaybillPayment, on_delete=models.PROTECT, related_name="reversals")
    receipt = models.CharField(max_length=20)  # the payment's, as sent to Daraja
    amount = models.DecimalField(max_digits=11, decimal_places=2)
    reason = models.CharField(max_length=200)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    originator_conversation_id = models.CharField(max_length=100, blank=True)
    conversation_id = models.CharField(max_length=100, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_description = models.CharField(max_length=255, blank=True)
    # The reversal's own M-Pesa receipt (a failure's placeholder is never stored).
    reversal_receipt = models.CharField(max_length=20, blank=True)
    ledger_entry = models.OneToOneField(
        "attendance.LedgerEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversal",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "Paybill reversal"
        permissions = [("request_reversal", "Can reverse Paybill payments")]
        indexes = [
            models.Index(fields=["originator_conversation_id"], name="reversal_originator"),
            models.Index(fields=["conversation_id"], name="reversal_conversation"),
            models.Index(fields=["reversal_receipt"], name="reversal_receipt"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["receipt"],
                condition=Q(status__in=["requested", "sent", "unknown", "completed"]),
                name="reversal_once_per_receipt",
            ),
        ]

    def __str__(self):
        return f"Reversal of {self.receipt} ({self.get_status_display()})"


class ReversalResult(InboxRow):
    """Every result (or queue timeout) Daraja posted about a reversal, stored raw first."""

    class Kind(models.TextChoices):
        RESULT = "result", "Result"
        TIMEOUT = "timeout", "Queue timeout"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    originator_conversation_id = models.CharField(max_length=100, blank=True)
    conversation_id = models.CharField(max_length=100, blank=True)
    reversal = models.ForeignKey(
        Reversal, on_delete=models.SET_NULL, null=True, blank=True, related_name="results"
    )

    class Meta(InboxRow.Meta):
        verbose_name = "Reversal result"
        indexes = [
            models.Index(fields=["-received_at"], name="reversal_result_recent"),
            models.Index(
                fields=["received_at"],
                name="reversal_result_open",
                condition=Q(status__in=INBOX_OPEN),
            ),
        ]

    def __str__(self):
        return f"Reversal {self.get_kind_display().lower()} {self.pk}"
