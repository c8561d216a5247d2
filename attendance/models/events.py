from datetime import timedelta
from urllib.parse import quote_plus

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Event(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        CONFIRMED = "confirmed", "Confirmed"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    client = models.CharField(max_length=200, blank=True)
    venue = models.CharField(max_length=255)
    venue_map_url = models.URLField(
        "map link", blank=True, help_text="Leave empty to link a map search for the venue."
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    call_time = models.DateTimeField(help_text="When crew must be at the venue.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLANNED)
    managers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="managed_events"
    )
    description = models.TextField(blank=True)
    special_instructions = models.TextField(blank=True)
    auto_replace = models.BooleanField(
        "replace from standby",
        default=True,
        help_text="When someone declines or drops out, invite the next member on standby for "
        "that role without waiting for a manager.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [
            models.Index(fields=["starts_at"], name="event_starts"),
            models.Index(fields=["status", "starts_at"], name="event_status_starts"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="event_ends_after_start",
                violation_error_message="The event must end after it starts.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.starts_at:%d %b %Y})"

    @property
    def map_link(self) -> str:
        if self.venue_map_url:
            return self.venue_map_url
        return "https://www.google.com/maps/search/?api=1&query=" + quote_plus(self.venue)

    @property
    def duration(self) -> timedelta:
        return self.ends_at - self.starts_at


class Attendance(models.Model):
    """One person at one event: when they arrived and left, judged against their call time."""

    class Status(models.TextChoices):
        EXPECTED = "expected", "Not checked in"
        PRESENT = "present", "Present"
        LATE = "late", "Late"
        ABSENT = "absent", "Absent"
        EXCUSED = "excused", "Excused"

    class Method(models.TextChoices):
        SELF = "self", "Self (portal button)"
        QR = "qr", "Venue QR code"
        ADMIN = "admin", "Recorded by staff"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attendances")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendances"
    )
    call_time = models.DateTimeField(
        null=True, blank=True, help_text="This person's own call time; empty: the event's."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.EXPECTED)
    check_in_at = models.DateTimeField(null=True, blank=True)
    check_out_at = models.DateTimeField(null=True, blank=True)
    check_in_method = models.CharField(max_length=5, choices=Method.choices, blank=True)
    check_out_method = models.CharField(max_length=5, choices=Method.choices, blank=True)
    hours_worked = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-event__starts_at", "user__username"]
        verbose_name_plural = "attendance"
        indexes = [
            models.Index(fields=["user", "status"], name="attendance_user_status"),
            models.Index(fields=["event", "status"], name="attendance_event_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="attendance_one_per_person"),
            models.CheckConstraint(
                condition=Q(check_out_at__isnull=True)
                | Q(check_in_at__isnull=False, check_out_at__gt=F("check_in_at")),
                name="attendance_out_after_in",
            ),
        ]

    def __str__(self):
        return f"{self.user} at {self.event.name}"

    @property
    def expected_call_time(self):
        return self.call_time or self.event.call_time

    @property
    def is_checked_in(self) -> bool:
        return self.check_in_at is not None and self.check_out_at is None


class AttendanceRemoval(models.Model):
    """An attendance record taken off an event's list: what it held, who removed it and why.

    Attendance is what crew are paid for, so a removed row leaves this trace (the row itself
    is gone, so nothing else can keep it).
    """

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attendance_removals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_removals"
    )
    record = models.JSONField(help_text="The record as it was: {field: value}")
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    removed_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=255)

    class Meta:
        ordering = ["-removed_at", "-id"]
        verbose_name = "removed attendance record"

    def __str__(self):
        return f"Attendance of {self.user} at {self.event.name}, removed"


class AttendanceCorrection(models.Model):
    """What staff changed on an attendance record, by whom and why."""

    attendance = models.ForeignKey(Attendance, on_delete=models.CASCADE, related_name="corrections")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    changes = models.JSONField(help_text="{field: [before, after]}")
    reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"Correction of {self.attendance_id} by {self.changed_by}"
