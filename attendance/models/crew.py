from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy


def _money(label: str, help_text: str = "", **kwargs: Any) -> models.DecimalField:
    return models.DecimalField(
        label, max_digits=10, decimal_places=2, help_text=help_text, **kwargs
    )


class CrewRole(models.Model):
    """A job on an event: FOH engineer, stagehand, driver... Admins can add their own."""

    name = models.CharField(max_length=60, unique=True)
    description = models.CharField(max_length=255, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=100)
    # Pay (KES): a day rate, an hourly rate, or both (the better of the two for the member).
    day_rate = _money("day rate", "Paid per show.", null=True, blank=True)
    hourly_rate = _money("hourly rate", null=True, blank=True)
    minimum_hours = models.DecimalField(
        "minimum call (hours)",
        max_digits=4,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Hourly pay is for at least this many hours.",
    )
    overtime_after_hours = models.DecimalField(
        "overtime after (hours)", max_digits=4, decimal_places=2, null=True, blank=True
    )
    overtime_multiplier = models.DecimalField(
        max_digits=3, decimal_places=2, default=Decimal("1.5")
    )
    # Kenya's wage orders pay the weekly rest day and public holidays at twice the rate.
    sunday_multiplier = models.DecimalField(
        "Sunday multiplier",
        max_digits=3,
        decimal_places=2,
        default=Decimal("2"),
        help_text="Pay for a show on a Sunday is the usual pay times this (1 for none).",
    )
    holiday_multiplier = models.DecimalField(
        "public holiday multiplier",
        max_digits=3,
        decimal_places=2,
        default=Decimal("2"),
        help_text="The same for a Kenyan public holiday, or a day Finance adds as gazetted.",
    )

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(day_rate__isnull=True) | Q(day_rate__gte=0))
                & (Q(hourly_rate__isnull=True) | Q(hourly_rate__gte=0))
                & Q(minimum_hours__gte=0, overtime_multiplier__gte=1),
                name="crewrole_rates_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(sunday_multiplier__gte=1, holiday_multiplier__gte=1),
                name="crewrole_day_multipliers_at_least_1",
            ),
        ]

    def __str__(self):
        return self.name


class EventRoleRequirement(models.Model):
    """How many people of one role an event needs, so staffing shows filled/needed."""

    event = models.ForeignKey(
        "attendance.Event", on_delete=models.CASCADE, related_name="role_requirements"
    )
    role = models.ForeignKey(CrewRole, on_delete=models.PROTECT, related_name="+")
    needed = models.PositiveSmallIntegerField(default=1)
    kit = models.CharField(
        "kit to bring",
        max_length=300,
        blank=True,
        help_text="On this role's call sheet, e.g. 'IEMs, black clothing, torch'.",
    )

    class Meta:
        ordering = ["role__sort_order", "role__name"]
        verbose_name = "crew needed"
        verbose_name_plural = "crew needed"
        constraints = [
            models.UniqueConstraint(fields=["event", "role"], name="requirement_one_per_role"),
        ]

    def __str__(self):
        return f"{self.role}: {self.needed} needed"


class EventCrew(models.Model):
    """One person assigned to one event in one role, and where their answer stands.

    invited -> confirmed | declined (a member may change their mind until the event starts);
    confirmed -> completed once the event is over and they attended. Every change goes through
    attendance.services.crew.assignments, which also keeps the attendance list in step.
    """

    class Status(models.TextChoices):
        INVITED = "invited", pgettext_lazy("assignment status", "Invited")
        CONFIRMED = "confirmed", pgettext_lazy("assignment status", "Confirmed")
        DECLINED = "declined", pgettext_lazy("assignment status", "Declined")
        COMPLETED = "completed", pgettext_lazy("assignment status", "Completed")
        # Waiting for a place: invited in turn when someone drops out
        # (services/crew/assignments.py).
        STANDBY = "standby", pgettext_lazy("assignment status", "Standby")
        # The member offered themselves for an open role; the manager accepts or declines.
        OFFERED = "offered", pgettext_lazy("assignment status", "Offered")

    event = models.ForeignKey("attendance.Event", on_delete=models.CASCADE, related_name="crew")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crew_assignments"
    )
    role = models.ForeignKey(CrewRole, on_delete=models.PROTECT, related_name="assignments")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.INVITED)
    call_time = models.DateTimeField(
        null=True, blank=True, help_text="This person's own call time; empty: the event's."
    )
    notes = models.TextField("special instructions", blank=True)
    pickup_point = models.CharField(max_length=120, blank=True)
    pickup_at = models.DateTimeField("pickup time", null=True, blank=True)
    assigned_at = models.DateTimeField(auto_now_add=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Since when they wait on standby: the queue's order (first on standby, first invited).
    standby_since = models.DateTimeField(null=True, blank=True, editable=False)
    invitation_sent = models.BooleanField(default=False)
    invitation_sent_at = models.DateTimeField(null=True, blank=True)
    reminder_sent = models.BooleanField(default=False)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    # Set when the invitation goes out. The link code makes `/<code>/` (short enough for one
    # SMS, too long to guess); the reply code is what the member texts back ("YES 4821"),
    # short to type because the sender's number is matched too.
    link_code = models.CharField(max_length=12, unique=True, null=True, blank=True, editable=False)
    reply_code = models.CharField(max_length=4, blank=True, editable=False)
    # The SEQUENCE of this assignment's calendar entry (attendance/ics.py): raised with every
    # change that matters, so the member's calendar replaces its entry instead of adding one.
    calendar_sequence = models.PositiveIntegerField(default=0, editable=False)
    # Pay agreed for this assignment, entered by the event manager (KES).
    agreed_fee = _money(
        "agreed fee", "Replaces the role's rates for this assignment.", null=True, blank=True
    )
    transport_allowance = _money("transport", default=Decimal("0"), blank=True)
    meals_allowance = _money("meals", default=Decimal("0"), blank=True)
    per_diem = _money("per diem", default=Decimal("0"), blank=True)
    # The manager's word after the event (never shown to other crew).
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, choices=[(n, f"{n} / 5") for n in range(1, 6)]
    )
    rating_note = models.CharField(max_length=300, blank=True)
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    rated_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # No joins in the default ordering: it would be paid by every query that forgets an
        # order_by (pages and admin order by event date, role and name themselves).
        ordering = ["-assigned_at", "-id"]
        verbose_name = "event crew assignment"
        indexes = [
            models.Index(fields=["event", "status"], name="eventcrew_event_status"),
            models.Index(fields=["user", "status"], name="eventcrew_user_status"),
            # The reminder job looks for confirmed rows not yet reminded.
            models.Index(
                fields=["status"],
                name="eventcrew_to_remind",
                condition=Q(status="confirmed", reminder_sent=False),
            ),
            # The dashboard's confirmation rate: the invitations of the last 90 days.
            models.Index(fields=["invitation_sent_at"], name="eventcrew_invited_at"),
            # The admin list sorted by a column, ties by event (admin IndexedSortChangeList).
            *(
                models.Index(fields=[column, "-event", "-id"], name=f"eventcrew_by_{column}")
                for column in ("status", "invitation_sent", "confirmed_at")
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="eventcrew_one_per_person"),
            models.CheckConstraint(
                condition=~Q(status="confirmed") | Q(confirmed_at__isnull=False),
                name="eventcrew_confirmed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="eventcrew_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=(Q(agreed_fee__isnull=True) | Q(agreed_fee__gte=0))
                & Q(transport_allowance__gte=0, meals_allowance__gte=0, per_diem__gte=0),
                name="eventcrew_pay_not_negative",
            ),
        ]

    def __str__(self):
        return f"{self.user} as {self.role} at {self.event.name}"

    @property
    def status_key(self) -> str:
        """The status as lists show it: assigned but never sent an invitation is its own state,
        never called "invited" (the member knows nothing of it yet)."""
        if self.status == self.Status.INVITED and not self.invitation_sent:
            return "not_invited"
        return self.status

    @property
    def status_label(self) -> str:
        if self.status_key == "not_invited":
            return "Not invited yet"
        return self.get_status_display()

    @property
    def expected_call_time(self):
        return self.call_time or self.event.call_time

    @property
    def is_answerable(self) -> bool:
        return self.status in (self.Status.INVITED, self.Status.CONFIRMED, self.Status.DECLINED)
