"""When crew can work: the dates a member has said they cannot."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Unavailability(models.Model):
    """A date or range of dates (Nairobi, both ends included) a member cannot work."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="unavailability"
    )
    starts_on = models.DateField("from")
    ends_on = models.DateField("to")
    reason = models.CharField(max_length=200, blank=True, help_text="Seen by managers only.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_on", "pk"]
        verbose_name = "unavailable dates"
        verbose_name_plural = "unavailable dates"
        indexes = [models.Index(fields=["user", "ends_on"], name="unavailable_user_ends")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="unavailable_range_in_order"
            ),
        ]

    def __str__(self):
        if self.starts_on == self.ends_on:
            return f"{self.starts_on:%a %d %b %Y}"
        return f"{self.starts_on:%a %d %b} to {self.ends_on:%a %d %b %Y}"


class ReplacementRequest(models.Model):
    """A confirmed member asks to be replaced, perhaps naming a colleague who has the role;
    a manager approves (the colleague, or the next standby, is invited) or refuses."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a manager"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"
        WITHDRAWN = "withdrawn", "Withdrawn"

    assignment = models.ForeignKey(
        "attendance.EventCrew", on_delete=models.CASCADE, related_name="replacement_requests"
    )
    proposed = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="colleague proposed",
    )
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # One open request per assignment: a second tap is the same request.
            models.UniqueConstraint(
                fields=["assignment"],
                condition=Q(status="pending"),
                name="replacement_one_pending",
            ),
        ]

    def __str__(self):
        return f"Replace {self.assignment}"
