from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy

from .fields import KenyanPhoneField
from .inbox import INBOX_OPEN, InboxRow


class MpesaPayment(models.Model):
    """One M-Pesa prompt (STK push) and how it ended.

    The row is committed as `initiated` before Daraja is called, so a crash mid-call leaves a
    trace; it becomes `pending` when Daraja accepts the push, and `completed`, `failed` or
    `cancelled` when a callback or a status query settles it. A completed payment credits the
    ledger exactly once (`ledger_entry`); a payment whose amount or phone differs from the
    request is completed but flagged for review instead, with no credit until staff decide.
    """

    class Status(models.TextChoices):
        INITIATED = "initiated", pgettext_lazy("payment status", "Initiated")
        PENDING = "pending", pgettext_lazy("payment status", "Waiting for the customer")
        COMPLETED = "completed", pgettext_lazy("payment status", "Completed")
        FAILED = "failed", pgettext_lazy("payment status", "Failed")
        CANCELLED = "cancelled", pgettext_lazy("payment status", "Cancelled")

    OPEN = (Status.INITIATED, Status.PENDING)
    FINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="mpesa_payments"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who sent the prompt: the member themself, or staff collecting.",
    )
    phone_number = KenyanPhoneField()
    amount = models.DecimalField(max_digits=9, decimal_places=2)
    payment_purpose = models.CharField(max_length=100)
    account_reference = models.CharField(max_length=12)
    transaction_desc = models.CharField(max_length=13)
    # unique=True gives the lookup index callbacks and queries use.
    # NULL until Daraja answers; NULLs do not collide under the unique constraint, "" would.
    checkout_request_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    merchant_request_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INITIATED)
    receipt_number = models.CharField(max_length=20, blank=True)
    transaction_date = models.DateTimeField(null=True, blank=True)
    paid_amount = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    paid_phone_number = models.CharField(max_length=15, blank=True)
    result_code = models.CharField(max_length=20, blank=True)
    result_description = models.TextField(blank=True)
    settled_via = models.CharField(max_length=10, blank=True)  # callback, query, timeout
    initiated_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    last_queried_at = models.DateTimeField(null=True, blank=True)
    query_count = models.PositiveSmallIntegerField(default=0)
    ledger_entry = models.OneToOneField(
        "attendance.LedgerEntry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mpesa_payment",
    )
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-initiated_at", "-id"]
        verbose_name = "M-Pesa payment"
        # Payments are never added or changed by hand; these are what staff may do to them.
        permissions = [
            ("request_mpesapayment", "Can send M-Pesa prompts to members"),
            ("review_mpesapayment", "Can credit payments flagged for review"),
        ]
        indexes = [
            models.Index(fields=["user", "status"], name="mpesa_user_status"),
            models.Index(fields=["status", "initiated_at"], name="mpesa_status_initiated"),
            models.Index(fields=["-initiated_at"], name="mpesa_recent"),
            # The list sorted by status: newest first within each (admin IndexedSortChangeList).
            models.Index(fields=["status", "-initiated_at"], name="mpesa_status_recent"),
            models.Index(fields=["receipt_number"], name="mpesa_receipt"),
            # The prompt rate limits count recent prompts per requester and per phone.
            models.Index(fields=["requested_by", "initiated_at"], name="mpesa_requester_recent"),
            models.Index(fields=["phone_number", "initiated_at"], name="mpesa_phone_recent"),
            models.Index(fields=["amount", "-initiated_at"], name="mpesa_amount_recent"),
            # The reconciler's work: the open payments only, in the order it asks about them.
            models.Index(
                fields=["last_queried_at", "initiated_at"],
                name="mpesa_open",
                condition=Q(status__in=["initiated", "pending"]),
            ),
            # The review queue (dashboard, "needs review" filter): a handful among 200,000.
            models.Index(
                fields=["-initiated_at"], name="mpesa_review", condition=Q(needs_review=True)
            ),
        ]
        constraints = [
            # At most one prompt waiting on a phone: Daraja would refuse a second one anyway
            # ("unable to lock subscriber"), and the customer could not tell them apart.
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=Q(status__in=["initiated", "pending"]),
                name="mpesa_one_open_prompt_per_phone",
            ),
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="mpesa_idempotency_key_per_requester",
            ),
            models.UniqueConstraint(
                fields=["receipt_number"],
                condition=~Q(receipt_number=""),
                name="mpesa_receipt_once",
            ),
            models.CheckConstraint(condition=Q(amount__gte=1), name="mpesa_amount_positive"),
        ]

    def __str__(self):
        return f"KES {self.amount} from {self.user} ({self.get_status_display()})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL


class MpesaCallback(InboxRow):
    """Every request that reached the STK callback endpoint with the right token, stored raw.

    `status` says what processing made of it (`InboxStatus`, shared by every inbox).
    """

    checkout_request_id = models.CharField(max_length=64, blank=True)
    payment = models.ForeignKey(
        MpesaPayment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="callbacks",
    )

    class Meta(InboxRow.Meta):
        verbose_name = "M-Pesa callback"
        indexes = [
            models.Index(fields=["status", "received_at"], name="callback_status_received"),
            # The sweeper's work: rows not processed yet, failed ones being retried and
            # ones waiting for another look. Small whatever the history's size.
            models.Index(
                fields=["received_at"],
                name="callback_open",
                condition=Q(status__in=INBOX_OPEN),
            ),
            models.Index(fields=["checkout_request_id"], name="callback_checkout"),
            models.Index(fields=["-received_at"], name="callback_recent"),
        ]

    def __str__(self):
        return f"Callback {self.pk} ({self.get_status_display()})"
