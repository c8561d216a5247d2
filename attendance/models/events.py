from datetime import timedelta
from urllib.parse import quote_plus

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import pgettext_lazy

# The beat looks this far ahead for "role still short" alerts.
SHORT_ALERT_MAX_HOURS = 72


class Event(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", pgettext_lazy("event status", "Planned")
        CONFIRMED = "confirmed", pgettext_lazy("event status", "Confirmed")
        COMPLETED = "completed", pgettext_lazy("event status", "Completed")
        CANCELLED = "cancelled", pgettext_lazy("event status", "Cancelled")

    name = models.CharField(max_length=200)
    client = models.CharField(max_length=200, blank=True)
    venue = models.CharField(max_length=255)
    venue_map_url = models.URLField(
        "map link", blank=True, help_text="Leave empty to link a map search for the venue."
    )
    # Where the venue is, for check-in by location (both empty: check-in by location is off).
    venue_latitude = models.DecimalField(
        "latitude", max_digits=9, decimal_places=6, null=True, blank=True
    )
    venue_longitude = models.DecimalField(
        "longitude", max_digits=9, decimal_places=6, null=True, blank=True
    )
    venue_radius_m = models.PositiveIntegerField(
        "radius (metres)",
        default=300,
        help_text="A phone within this distance of the venue proves its owner is there.",
    )
    plain_check_in = models.BooleanField(
        "allow the plain check-in button",
        default=True,
        help_text="Crew may check in with the button without proof of presence (flagged). "
        "Off: they scan the venue's QR code or share their location.",
    )
    hold_unproven = models.BooleanField(
        "hold unproven check-ins for review",
        default=False,
        help_text="A timesheet line whose check-in was not proven waits for a manager to "
        "accept it before it can be approved.",
    )
    # Call-time messages (services/crew/showday.py); 0 or empty turns one off.
    leave_now_hours = models.PositiveSmallIntegerField(
        "'leave now' (hours before call)",
        default=2,
        help_text="Confirmed crew get a 'leave now' message with the map and call sheet. 0: off.",
    )
    late_alert_minutes = models.PositiveSmallIntegerField(
        "not checked in alert (minutes after call)",
        default=15,
        help_text="Crew not checked in by then are asked 'are you coming?', and the managers "
        "are told, with a button to offer the place to standby. 0: off.",
    )
    short_alert_hours = models.CharField(
        "role still short alerts (hours before call)",
        max_length=20,
        default="24,3",
        blank=True,
        help_text="Managers hear which roles are still short this many hours before call "
        "(comma-separated). Empty: off.",
    )
    check_out_reminder = models.BooleanField(
        "remind crew who forget to check out",
        default=True,
        help_text="An hour after the end, crew still checked in are asked to check out.",
    )
    # The arrivals board's read-only wall display link (like a calendar feed's): empty until a
    # manager turns it on; a new one turns the old link off.
    wall_token = models.CharField(max_length=43, null=True, blank=True, unique=True, editable=False)
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

    @property
    def short_alert_list(self) -> list[int]:
        """The hours before call of the 'role still short' alerts, largest first."""
        hours = {int(part) for part in self.short_alert_hours.split(",") if part.strip().isdigit()}
        return sorted((h for h in hours if 0 < h <= SHORT_ALERT_MAX_HOURS), reverse=True)

    @property
    def venue_position(self):
        """(latitude, longitude), or None where the venue's position is not set."""
        if self.venue_latitude is None or self.venue_longitude is None:
            return None
        return (self.venue_latitude, self.venue_longitude)


class Attendance(models.Model):
    """One person at one event: when they arrived and left, judged against their call time."""

    class Status(models.TextChoices):
        EXPECTED = "expected", pgettext_lazy("attendance status", "Not checked in")
        PRESENT = "present", pgettext_lazy("attendance status", "Present")
        LATE = "late", pgettext_lazy("attendance status", "Late")
        ABSENT = "absent", pgettext_lazy("attendance status", "Absent")
        EXCUSED = "excused", pgettext_lazy("attendance status", "Excused")

    class Method(models.TextChoices):
        SELF = "self", pgettext_lazy("check-in", "Self (portal button)")
        QR = "qr", pgettext_lazy("check-in", "Venue QR code")
        LOCATION = "gps", pgettext_lazy("check-in", "Location at the venue")
        ADMIN = "admin", pgettext_lazy("check-in", "Recorded by staff")

    class Arrival(models.TextChoices):
        ON_MY_WAY = "on_way", pgettext_lazy("check-in", "On my way")
        CANT_COME = "cant", pgettext_lazy("check-in", "Can't make it")

    class Flag(models.TextChoices):
        """Why a check-in or check-out is not proven. Never a refusal: see venue_location."""

        PLAIN = "plain", pgettext_lazy("check-in", "Button, no proof")
        NO_FIX = "no_fix", pgettext_lazy("check-in", "Location refused or unavailable")
        WEAK_FIX = "weak_fix", pgettext_lazy("check-in", "Location too imprecise")
        OUTSIDE = "outside", pgettext_lazy("check-in", "Location away from the venue")

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
    # Empty when the check-in (check-out) was proven, or was not made by the member.
    check_in_flag = models.CharField(max_length=8, choices=Flag.choices, blank=True)
    check_out_flag = models.CharField(max_length=8, choices=Flag.choices, blank=True)
    # How far from the venue the phone said it was (the position itself is not kept).
    check_in_distance_m = models.PositiveIntegerField(null=True, blank=True)
    # A check-in made at the venue with no signal arrives later: when it reached us.
    check_in_sent_at = models.DateTimeField(null=True, blank=True)
    check_out_distance_m = models.PositiveIntegerField(null=True, blank=True)
    hours_worked = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    # The member's answer to "are you coming?" on the day.
    arrival_answer = models.CharField(max_length=8, choices=Arrival.choices, blank=True)
    arrival_answer_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-event__starts_at", "user__username"]
        verbose_name_plural = "attendance"
        indexes = [
            models.Index(fields=["user", "status"], name="attendance_user_status"),
            models.Index(fields=["event", "status"], name="attendance_event_status"),
            # The admin list sorted by a column, ties by event (admin IndexedSortChangeList):
            # a page is read from the index, not sorted from a year of joined rows.
            *(
                models.Index(fields=[column, "-event", "-id"], name=f"attendance_by_{name}")
                for column, name in (
                    ("status", "status"),
                    ("check_in_at", "in"),
                    ("check_out_at", "out"),
                    ("hours_worked", "hours"),
                    ("check_in_method", "method"),
                )
            ),
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

    @property
    def check_in_proven(self) -> bool:
        return self.check_in_method in PROVEN and not self.check_in_flag

    @property
    def check_in_proof(self) -> str:
        proof = proof_in_words(self.check_in_method, self.check_in_flag, self.check_in_distance_m)
        if self.check_in_sent_at and proof:
            sent = timezone.localtime(self.check_in_sent_at)
            proof += f", made with no signal, sent {sent:%H:%M}"
        return proof

    @property
    def check_out_proof(self) -> str:
        return proof_in_words(self.check_out_method, self.check_out_flag, self.check_out_distance_m)


# The plain button (SELF) proves nothing, whenever it was pressed.
PROVEN = (Attendance.Method.QR, Attendance.Method.LOCATION, Attendance.Method.ADMIN)


def proof_in_words(method: str, flag: str, distance_m: int | None) -> str:
    """E.g. "Venue QR", "Location, 40 m from the venue", "Button, location refused (not proven)"."""
    if not method:
        return ""
    away = f", {_distance(distance_m)} from the venue" if distance_m is not None else ""
    if method == Attendance.Method.QR:
        return "Venue QR"
    if method == Attendance.Method.ADMIN:
        return "Recorded by staff"
    if method == Attendance.Method.LOCATION and not flag:
        return f"Location{away}"
    reasons: dict[str, str] = {
        Attendance.Flag.NO_FIX: ", location refused or unavailable",
        Attendance.Flag.WEAK_FIX: f", location too imprecise{away}",
        Attendance.Flag.OUTSIDE: away,
    }
    reason = reasons.get(flag, "")
    return f"Button{reason} (not proven)"


def _distance(metres: int) -> str:
    return f"{metres} m" if metres < 1000 else f"{metres / 1000:.1f} km"


class RefusedCheckIn(models.Model):
    """A check-in made with no signal and sent later that did not prove presence at the time it
    claimed (a venue code not valid then, a time in the future or too long ago): refused, and
    kept here for the event manager."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="refused_check_ins")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="refused_check_ins"
    )
    code = models.CharField(max_length=80, blank=True)
    claimed_at = models.DateTimeField(help_text="When the phone says the check-in was made.")
    received_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = "refused offline check-in"
        indexes = [models.Index(fields=["event", "-received_at"], name="refused_checkin_event")]

    def __str__(self):
        return f"{self.user} at {self.event.name}: {self.reason}"


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
