"""Crew pay: a timesheet line per completed assignment, approved per event, paid in pay runs.

Money moves only when Finance approves a pay run: one ledger entry per pay-run line (an
*earning* the first time a timesheet line is paid, an *adjustment* for a later correction),
made unique by the ledger's one-entry-per-source rule. A line is never paid by editing it: a
correction after payment is a new pay-run line carrying the difference.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import pgettext_lazy

ZERO = Decimal("0.00")


class TimesheetLine(models.Model):
    """What one completed assignment earns, worked out from its attendance, rate and allowances.

    open -> disputed (the member, within the window) -> open (the manager answers)
    open -> approved (an event manager) -> paid (Finance approves a pay run that holds it).
    A change to the amount of an approved or paid line sends it back to open.
    """

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("timesheet line status", "Awaiting approval")
        DISPUTED = "disputed", pgettext_lazy("timesheet line status", "Disputed")
        APPROVED = "approved", pgettext_lazy("timesheet line status", "Approved")
        PAID = "paid", pgettext_lazy("timesheet line status", "In an approved pay run")

    assignment = models.OneToOneField(
        "attendance.EventCrew", on_delete=models.PROTECT, related_name="timesheet"
    )
    # Copied from the assignment so that lists filter and sort on indexed columns of this table.
    event = models.ForeignKey(
        "attendance.Event", on_delete=models.PROTECT, related_name="timesheet_lines"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="timesheet_lines"
    )
    role_name = models.CharField(max_length=60)
    attendance_status = models.CharField(max_length=10)
    # How the check-in was proven, in words ("Venue QR", "Button (not proven)").
    proof = models.CharField(max_length=80, blank=True)
    # The event holds unproven check-ins: this line waits for a manager to accept it.
    held = models.BooleanField(default=False)
    hours = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    overtime_hours = models.DecimalField(max_digits=5, decimal_places=2, default=ZERO)
    rule = models.CharField(max_length=255, help_text="How the pay was worked out, in words.")
    # The same as phrases (services/pay/words.py), so the member reads it in their language.
    rule_words = models.JSONField(default=list, blank=True)
    base_pay = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    overtime_pay = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    allowances = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    adjustment = models.DecimalField(
        max_digits=10, decimal_places=2, default=ZERO, help_text="Set by a manager, with a reason."
    )
    amount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    # What approved pay runs have posted to the ledger for this line so far.
    paid_amount = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    dispute_reason = models.CharField(max_length=500, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    dispute_answer = models.CharField(max_length=500, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Who last set the amount: the "maker" who may not approve the pay run holding it.
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="timesheet_user_recent"),
            models.Index(fields=["event", "status"], name="timesheet_event_status"),
            models.Index(fields=["status", "-created_at"], name="timesheet_status_recent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="timesheet_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(
                    amount=F("base_pay") + F("overtime_pay") + F("allowances") + F("adjustment")
                ),
                name="timesheet_amount_adds_up",
            ),
        ]
        permissions = [("approve_timesheetline", "Can approve timesheet lines")]

    def __str__(self):
        return f"{self.role_name} at {self.event.name}: KES {self.amount}"

    @property
    def unpaid(self) -> Decimal:
        return self.amount - self.paid_amount


class TimesheetChange(models.Model):
    """One change to a timesheet line: who, when, why, and each field before and after."""

    class Kind(models.TextChoices):
        COMPUTED = "computed", "Worked out from attendance"
        RECALCULATED = "recalculated", "Worked out again from attendance"
        ADJUSTED = "adjusted", "Adjusted by a manager"
        DISPUTED = "disputed", "Disputed by the member"
        ANSWERED = "answered", "Dispute answered"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid in a pay run"
        ACCEPTED = "accepted", "Unproven check-in accepted"

    line = models.ForeignKey(TimesheetLine, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [before, after]}")
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["changed_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.changed_by or 'the system'}"


class PayRun(models.Model):
    """Approved timesheet lines of a period, approved together by Finance."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Awaiting approval"
        # Approved by Finance; each member's earnings are going on the ledger (a background
        # job, one member at a time), then it is approved.
        APPROVING = "approving", "Being approved"
        APPROVED = "approved", "Approved"

    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    total = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    to_pay = models.DecimalField(
        max_digits=12, decimal_places=2, default=ZERO, help_text="Owed to members after netting."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Statutory deductions are the month's: the month the run is approved in (Nairobi time),
    # fixed when approval begins so a job running past midnight on the 31st stays in it.
    pay_month = models.DateField(
        null=True, blank=True, help_text="The first day of the month its pay counts in."
    )
    # The statutory rate row in force when approval began: every member of the run is worked
    # out with it, even if the job runs past a new row's date.
    statutory_rates = models.ForeignKey(
        "attendance.StatutoryRates",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-period_end", "-id"]
        permissions = [("approve_payrun", "Can approve pay runs")]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")), name="payrun_period_order"
            ),
        ]

    def __str__(self):
        return f"Pay run {self.period_start:%d %b} to {self.period_end:%d %b %Y}"


class PayRunLine(models.Model):
    """What one pay run pays for one timesheet line: its amount, or a later correction's
    difference. The ledger entry's source, so each is posted exactly once."""

    pay_run = models.ForeignKey(PayRun, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(TimesheetLine, on_delete=models.PROTECT, related_name="pay_run_lines")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    is_correction = models.BooleanField(default=False)
    # This line's share of the member's statutory deductions and of the employer's costs
    # (housing levy and NSSF employer shares) in the run, split by pay: the payroll export's
    # columns add up by line, and summed by event the employer costs are its labour cost.
    withheld = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)
    employer_cost = models.DecimalField(max_digits=10, decimal_places=2, default=ZERO)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pay_run", "line"], name="payrunline_once_per_run"),
        ]
        indexes = [models.Index(fields=["pay_run", "user"], name="payrunline_run_user")]

    def __str__(self):
        # Ids only: admin prints this on every row of a pay run's page.
        return f"KES {self.amount} for timesheet line {self.line_id}"


class PayRunMember(models.Model):
    """A member's payslip in an approved pay run: gross earned, statutory deductions, net, set
    against what they owed, to pay."""

    pay_run = models.ForeignKey(PayRun, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payslips"
    )
    earned = models.DecimalField("gross", max_digits=12, decimal_places=2)
    withheld = models.DecimalField(
        "statutory deductions", max_digits=12, decimal_places=2, default=ZERO
    )
    net = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    employer_cost = models.DecimalField(max_digits=12, decimal_places=2, default=ZERO)
    classification = models.CharField(max_length=10, blank=True)
    secondary = models.BooleanField(default=False)
    statutory_rates = models.ForeignKey(
        "attendance.StatutoryRates",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The rate row the deductions were worked out with.",
    )
    # How the deductions were worked out, a step per item: each a list of phrases
    # (services/pay/words.py) read in the reader's language; older rows hold English text.
    working = models.JSONField(default=list, blank=True)
    balance_before = models.DecimalField(max_digits=12, decimal_places=2)
    balance_after = models.DecimalField(max_digits=12, decimal_places=2)
    deducted = models.DecimalField("set against what they owed", max_digits=12, decimal_places=2)
    to_pay = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pay_run", "user"], name="payrunmember_once"),
        ]

    def __str__(self):
        return f"Payslip {self.pk} (pay run {self.pay_run_id})"


class PublicHoliday(models.Model):
    """A day off the Public Holidays Act's list that the government gazetted (a state funeral,
    a census day): paid as a public holiday. The Act's own days come from the `holidays`
    library (services/pay/holidays.py), so only the extras are kept here."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=100)
    gazette_notice = models.CharField(
        max_length=100, blank=True, help_text="The Kenya Gazette notice that declared it."
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date"]
        verbose_name = "gazetted public holiday"

    def __str__(self):
        return f"{self.name} ({self.date:%d %b %Y})"
