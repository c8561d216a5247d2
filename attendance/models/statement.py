"""The M-Pesa statement as Safaricom's org portal exports it, imported by Finance, and what each
row was matched to in our books (services/payments/statement.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StatementImport(models.Model):
    """One uploaded statement file. Its rows join the others only where they are new, so
    importing the same statement (or overlapping ones) twice changes nothing."""

    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    rows_read = models.PositiveIntegerField(default=0)
    rows_new = models.PositiveIntegerField(default=0)
    first_at = models.DateTimeField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    short_code = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        verbose_name = "M-Pesa statement import"
        permissions = [("reconcile_statementimport", "Can import statements and reconcile")]

    def __str__(self):
        return f"{self.file_name} ({self.rows_new} new of {self.rows_read})"


class StatementRow(models.Model):
    class Kind(models.TextChoices):
        PAID_IN = "paid_in", "Money in"
        PAYOUT = "payout", "Payout (B2C)"
        CHARGE = "charge", "Charge"
        REVERSAL = "reversal", "Reversal"
        OTHER = "other", "Other (transfers, settlements)"

    class Match(models.TextChoices):
        STK = "stk", "M-Pesa prompt"
        PAYBILL = "paybill", "Paybill payment"
        PAYOUT = "payout", "Payout"
        REVERSAL = "reversal", "Reversal"
        NONE = "", "Nothing of ours"

    statement = models.ForeignKey(StatementImport, on_delete=models.PROTECT, related_name="rows")
    # sha256 of receipt, time, details and amounts: what makes a row the same row in two files
    # (a payout and its charge share a receipt, so the receipt alone is not enough).
    fingerprint = models.CharField(max_length=64, unique=True)
    receipt = models.CharField(max_length=20)
    completed_at = models.DateTimeField()
    details = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=30, blank=True)
    paid_in = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    withdrawn = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    balance = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    reason_type = models.CharField(max_length=80, blank=True)
    other_party = models.CharField(max_length=160, blank=True)
    linked_receipt = models.CharField(max_length=20, blank=True)
    account_number = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    matched = models.CharField(max_length=8, choices=Match.choices, blank=True)
    matched_id = models.PositiveBigIntegerField(null=True, blank=True)
    # What our books say moved, when it is not what the statement says.
    books_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-completed_at", "-id"]
        verbose_name = "M-Pesa statement row"
        indexes = [
            models.Index(fields=["receipt"], name="statement_receipt"),
            models.Index(fields=["completed_at", "kind"], name="statement_period"),
            # The reconciliation page's lists: rows that match nothing, in a period.
            models.Index(
                fields=["completed_at"],
                name="statement_unmatched",
                condition=models.Q(matched="") & ~models.Q(kind__in=["charge", "other"]),
            ),
        ]

    def __str__(self):
        return f"{self.receipt} {self.details}"

    @property
    def amount(self):
        return self.paid_in or self.withdrawn
