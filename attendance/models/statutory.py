"""Kenyan statutory deductions: each member's statutory profile, the dated rate table, and
what each pay run deducted (services/pay/statutory.py does the arithmetic).

A rate row in use is never edited: the law changes by a new row with a later date, so a past
payslip is always explained by the row it was worked out with.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

ZERO = Decimal("0.00")
KRA_PIN = RegexValidator(
    r"^[AP]\d{9}[A-Z]$",
    "A KRA PIN is 11 characters: A or P, nine digits, then a letter (A012345678Z).",
)
NSSF_NUMBER = RegexValidator(r"^\d{9,10}$", "An NSSF number is 9 or 10 digits.")
SHIF_NUMBER = RegexValidator(
    r"^[A-Z0-9-]{7,20}$", "A SHA / SHIF number is 7 to 20 letters, digits or dashes."
)
ID_NUMBER = RegexValidator(r"^\d{6,9}$", "A national ID number is 6 to 9 digits.")


def _money(verbose_name: str | None = None, **kwargs: Any) -> models.DecimalField:
    return models.DecimalField(
        verbose_name,
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(0)],
        **kwargs,
    )


def _rate(verbose_name: str | None = None, **kwargs: Any) -> models.DecimalField:
    """A rate in per cent, as the law writes it (2.75 for 2.75 %)."""
    kwargs.setdefault("help_text", "Per cent (2.75 for 2.75 %).")
    return models.DecimalField(
        verbose_name,
        max_digits=6,
        decimal_places=3,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        **kwargs,
    )


class StatutoryProfile(models.Model):
    """How the company engages a member, as its accountant decided, and their numbers.

    Finance only: never shown to other crew. A member without one is a casual employee whose
    main job is with us (the commonest case), with their numbers missing.
    """

    class Classification(models.TextChoices):
        EMPLOYEE = "employee", "Casual employee (PAYE, SHIF, housing levy, NSSF)"
        CONTRACTOR = "contractor", "Contractor (withholding tax on fees)"

    class FeeType(models.TextChoices):
        PROFESSIONAL = "professional", "Professional or management fee"
        CONTRACTUAL = "contractual", "Contractual fee"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="statutory"
    )
    kra_pin = models.CharField(
        "KRA PIN", max_length=11, blank=True, validators=[KRA_PIN], help_text="A012345678Z"
    )
    id_number = models.CharField("ID number", max_length=9, blank=True, validators=[ID_NUMBER])
    nssf_number = models.CharField(
        "NSSF number", max_length=10, blank=True, validators=[NSSF_NUMBER]
    )
    shif_number = models.CharField(
        "SHA / SHIF number", max_length=20, blank=True, validators=[SHIF_NUMBER]
    )
    classification = models.CharField(
        max_length=10, choices=Classification.choices, default=Classification.EMPLOYEE
    )
    classification_reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why, as the accountant decided (who directs the work, own equipment, ...).",
    )
    secondary_employment = models.BooleanField(
        default=False,
        help_text="Their main job is with another employer, who gives the personal relief: "
        "PAYE at the secondary rate with no relief.",
    )
    declared_on = models.DateField(
        null=True, blank=True, help_text="When the member signed their main-employer declaration."
    )
    fee_type = models.CharField(
        max_length=12,
        choices=FeeType.choices,
        default=FeeType.PROFESSIONAL,
        help_text="Contractors only: which withholding rate applies (the accountant decides).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "statutory profile"

    def __str__(self):
        return f"Statutory profile of {self.user}"

    @property
    def is_contractor(self) -> bool:
        return self.classification == self.Classification.CONTRACTOR

    def missing(self) -> list[str]:
        """The numbers Finance still needs for the returns."""
        needed = [("kra_pin", "KRA PIN")]
        if not self.is_contractor:
            needed += [("id_number", "ID number")]
            if not self.secondary_employment:
                needed += [("nssf_number", "NSSF number"), ("shif_number", "SHA / SHIF number")]
        return [label for name, label in needed if not getattr(self, name)]


class StatutoryRates(models.Model):
    """One dated row of the statutory rate table: the figures in force from `valid_from` until
    the next row's date. Seeded with the 2026 law (migration 0036); Finance adds a row when the
    law changes."""

    class Unit(models.TextChoices):
        CENT = "0.01", "To the cent"
        SHILLING = "1", "To the whole shilling"

    valid_from = models.DateField(unique=True)
    source = models.TextField(help_text="Where each figure comes from (Finance Act, notice).")
    confirmed = models.BooleanField(
        default=False, help_text="Finance has checked these figures against the law."
    )
    personal_relief = _money(help_text="A month, primary employment only.")
    secondary_rate = _rate(help_text="Per cent: PAYE on a secondary employment, on all of it.")
    secondary_nssf_and_shif = models.BooleanField(
        "Secondary employment pays NSSF and SHIF",
        default=False,
        help_text="Off: a secondary employment pays neither (how Odoo's Kenyan payroll reads "
        "it). Unconfirmed in law: the accountant decides.",
    )
    shif_rate = _rate()
    shif_minimum = _money()
    ahl_employee_rate = _rate("Housing levy, employee rate")
    ahl_employer_rate = _rate("Housing levy, employer rate")
    nssf_employee_rate = _rate("NSSF employee rate")
    nssf_employer_rate = _rate("NSSF employer rate")
    nssf_lower_limit = _money(help_text="Tier I is paid on pay up to this (LEL).")
    nssf_upper_limit = _money(help_text="Tier II is paid on pay between the limits (UEL).")
    pension_cap = _money(help_text="At most this much NSSF and pension reduces taxable pay.")
    nssf_reduces_taxable = models.BooleanField("NSSF reduces taxable pay", default=True)
    shif_reduces_taxable = models.BooleanField("SHIF reduces taxable pay", default=True)
    ahl_reduces_taxable = models.BooleanField("Housing levy reduces taxable pay", default=True)
    wht_professional_rate = _rate("Withholding tax, professional fees")
    wht_contractual_rate = _rate("Withholding tax, contractual fees")
    wht_threshold = _money(
        help_text="No withholding while a contractor's fees in the month are below this."
    )
    unit = models.CharField("Rounding", max_length=4, choices=Unit.choices, default=Unit.CENT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_from"]
        verbose_name = "statutory rates"
        verbose_name_plural = "statutory rates"

    def __str__(self):
        return f"Statutory rates from {self.valid_from:%d %b %Y}"


class PayeBand(models.Model):
    """A PAYE band of a rate row: `width` shillings of monthly taxable pay at `rate`; the last
    band has no width (everything above)."""

    rates = models.ForeignKey(StatutoryRates, on_delete=models.CASCADE, related_name="bands")
    position = models.PositiveSmallIntegerField()
    width = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Shillings in this band; empty for the top band.",
    )
    rate = _rate()

    class Meta:
        ordering = ["rates", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rates", "position"], name="paye_band_position")
        ]

    def __str__(self):
        return f"{self.rate} % on {self.width or 'the rest'}"


class StatutoryDeduction(models.Model):
    """One amount a pay run worked out for a member's month: kept from their pay (PAYE, SHIF,
    housing levy, NSSF, withholding tax; each the source of one ledger entry) or owed by the
    company on top (the employer shares). A run's amount is the month's figure less what
    earlier runs that month already took, so the rows of a month add up to the month."""

    class Kind(models.TextChoices):
        PAYE = "paye", _("PAYE")
        SHIF = "shif", _("SHIF")
        AHL = "ahl", _("Housing levy")
        NSSF = "nssf", _("NSSF")
        WHT = "wht", _("Withholding tax")
        EMPLOYER_NSSF = "employer_nssf", _("NSSF (employer)")
        EMPLOYER_AHL = "employer_ahl", _("Housing levy (employer)")

    WITHHELD = (Kind.NSSF, Kind.SHIF, Kind.AHL, Kind.PAYE, Kind.WHT)  # the law's order
    EMPLOYER = (Kind.EMPLOYER_NSSF, Kind.EMPLOYER_AHL)

    member = models.ForeignKey(
        "attendance.PayRunMember", on_delete=models.CASCADE, related_name="deductions"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="The first day of the month it counts in.")
    kind = models.CharField(max_length=13, choices=Kind.choices)
    # Negative when a later run this month lowered the month's figure (a correction cut pay).
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "kind"], name="deduction_once_per_slip"),
        ]
        indexes = [models.Index(fields=["month", "user"], name="deduction_month_user")]

    def __str__(self):
        return f"{self.get_kind_display()} KES {self.amount}"
