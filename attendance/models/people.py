from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from attendance.account_codes import account_code_for
from attendance.phones import format_phone

from .fields import KenyanPhoneField


def member_name(user: AbstractUser) -> str:
    """How a person is named everywhere: their full name, or their username when it is empty."""
    return user.get_full_name() or user.get_username()


class Department(models.TextChoices):
    AUDIO = "audio", "Audio"
    LIGHTING = "lighting", "Lighting"
    STAGING = "staging", "Staging"
    LOGISTICS = "logistics", "Logistics"
    DJ = "dj", "DJ"
    OFFICE = "office", "Office"


class MessageChannel(models.TextChoices):
    DEFAULT = "", "As the company sets it"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    BOTH = "both", "Email and SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    PUSH = "push", "App notifications"


class Language(models.TextChoices):
    """The language a member reads: the portal's and their messages' (admin stays English)."""

    ENGLISH = "en", "English"
    KISWAHILI = "sw", "Kiswahili"


def django_language(language: str) -> str:
    """The Django language (settings.LANGUAGES) for a member's choice: English is British
    English, whose formats are ours (24-hour, day before month)."""
    return "sw" if language == Language.KISWAHILI else "en-gb"


class Profile(models.Model):
    """What we know of a crew member beyond their login.

    `balance` is what the member owes the company (negative: the company owes them). It is
    never written directly: `attendance.services.ledger.ledger_post` changes it together with
    a LedgerEntry, so that it always equals the sum of the member's entries.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    phone_number = KenyanPhoneField(blank=True, db_index=True)
    department = models.CharField(max_length=20, choices=Department.choices, blank=True)
    skills = models.CharField(
        "skills and notes", max_length=255, blank=True, help_text="e.g. driving licence class"
    )
    # The crew roles this member can do: the staffing board ranks them first for those roles.
    roles = models.ManyToManyField(
        "attendance.CrewRole", blank=True, related_name="members", verbose_name="can do"
    )
    message_channel = models.CharField(
        "messages by",
        max_length=8,
        choices=MessageChannel.choices,
        blank=True,
        default=MessageChannel.DEFAULT,
    )
    # Set when Africa's Talking says the number cannot get our texts (opted out, invalid);
    # SMS stops until staff or the member clear it.
    sms_blocked_at = models.DateTimeField("SMS blocked", null=True, blank=True)
    sms_blocked_reason = models.CharField(max_length=60, blank=True)
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    # WhatsApp: the number the member chose (their M-Pesa number unless they gave another),
    # when they agreed to our messages there (Meta requires the opt-in, and we keep when),
    # and when they said STOP. Blocked: Meta says the number is not on WhatsApp (131026).
    whatsapp_number = KenyanPhoneField("WhatsApp number", blank=True)
    whatsapp_opted_in_at = models.DateTimeField("WhatsApp opt-in", null=True, blank=True)
    whatsapp_opted_out_at = models.DateTimeField("WhatsApp opt-out", null=True, blank=True)
    whatsapp_blocked_at = models.DateTimeField("WhatsApp blocked", null=True, blank=True)
    whatsapp_blocked_reason = models.CharField(max_length=120, blank=True)
    # When the member last wrote to us on WhatsApp (the message's own timestamp): for 24 hours
    # after it, free-form messages may go to them (Meta's customer-service window).
    whatsapp_last_inbound_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The secret of the member's calendar feed (/calendar/<token>.ics); empty: no feed. A new
    # one replaces it when they ask, and the old address is then a 404.
    calendar_token = models.CharField(
        max_length=43, unique=True, null=True, blank=True, editable=False
    )
    balance = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("0.00"), editable=False
    )
    # What the member types as the account number when paying our Paybill from the SIM menu
    # (attendance.account_codes): from the profile's id, set once it has one, never changed.
    account_code = models.CharField(
        max_length=12, unique=True, null=True, blank=True, editable=False
    )
    # When the member last changed their number (after proving it with a code): payouts to a
    # number this new wait for a second Finance approval (PAYOUT_NEW_NUMBER_HOLD_DAYS).
    phone_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__first_name", "user__last_name", "user__username"]
        constraints = [
            # A number is one member's: SMS replies are matched by number, and B2C payouts go
            # to it, so a shared number would answer and be paid for the wrong person.
            models.UniqueConstraint(
                fields=["phone_number"],
                condition=~models.Q(phone_number=""),
                name="profile_phone_one_owner",
                violation_error_message="This number is already on another member's account.",
            ),
        ]

    def __str__(self):
        return self.display_name

    def save(self, *args, **kwargs):
        # A full save writes every column, so a profile loaded before a ledger posting (an
        # admin editing the phone number while a payment is credited) would put the old
        # balance back. Only the ledger service writes it, naming it in update_fields.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "balance"
            ]
        super().save(*args, **kwargs)
        if self.account_code is None:
            self.account_code = account_code_for(self.pk)
            Profile.objects.filter(pk=self.pk).update(account_code=self.account_code)

    @property
    def display_name(self) -> str:
        return member_name(self.user)

    @property
    def phone_display(self) -> str:
        return format_phone(self.phone_number)


class PhoneVerification(models.Model):
    """A number a member wants to use, waiting for the code we texted to it.

    The number takes effect only when the code comes back: proof that the member holds that
    SIM. Only a hash of the code is kept; a code expires, and a few wrong tries end it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="phone_verifications"
    )
    phone_number = KenyanPhoneField()
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="phoneverif_user_recent")]

    def __str__(self):
        return f"{format_phone(self.phone_number)} for {self.user}"


class LedgerEntry(models.Model):
    """One change of a member's balance. Rows are never edited or deleted.

    `amount` is signed, as it moved the balance: a charge is positive (the member owes more),
    a payment negative. `source` links the row to what caused it (an M-Pesa payment, an
    event); the unique constraint makes a second credit for the same payment impossible at
    the database level, whatever the application code does.
    """

    class Kind(models.TextChoices):
        CHARGE = "charge", _("Charge")
        PAYMENT = "payment", _("Payment")
        ADJUSTMENT = "adjustment", _("Adjustment")
        # Pay for work (a pay run's approval): lowers what the member owes.
        EARNING = "earning", _("Earning")
        # PAYE, SHIF, housing levy, NSSF or withholding tax kept from pay (a StatutoryDeduction).
        DEDUCTION = "deduction", _("Statutory deduction")
        # Pay sent to the member by M-Pesa: brings a credit back toward zero.
        PAYOUT = "payout", _("Payout")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    balance_after = models.DecimalField(max_digits=12, decimal_places=2)
    description = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    source_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source_id = models.PositiveBigIntegerField(null=True, blank=True)
    source = GenericForeignKey("source_type", "source_id")
    # The M-Pesa receipt of money credited as a payment. One receipt is credited once,
    # whichever way it reached us (a prompt's callback, a Paybill confirmation, Pull
    # Transactions, staff): the database refuses a second credit.
    receipt = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="ledger_user_recent"),
            models.Index(fields=["created_at"], name="ledger_created"),
            models.Index(fields=["kind", "-created_at"], name="ledger_kind_recent"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "source_type", "source_id", "kind"],
                condition=Q(source_id__isnull=False),
                name="ledger_one_entry_per_source_kind",
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_not_zero"),
            models.UniqueConstraint(
                fields=["receipt"],
                condition=Q(kind="payment") & ~Q(receipt=""),
                name="ledger_receipt_credited_once",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} for {self.user}"
