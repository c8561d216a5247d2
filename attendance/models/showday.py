"""Show day: the call-time messages the beat sends, each recorded once
(services/crew/showday.py), and the run of show on the call sheet."""

from django.conf import settings
from django.db import models


class ShowDayNotice(models.Model):
    """One call-time message sent (or one check made) for an event.

    `key` names what it was about: the member's id for the member's own messages, the hours
    before call for a "role still short" check. Unique per event, kind and key, and written in
    the transaction that writes the message: two beat runs or two workers never send it twice.
    """

    class Kind(models.TextChoices):
        LEAVE_NOW = "leave_now", "Leave now"
        LATE = "late", "Not checked in (are you coming?)"
        CANT_COME = "cant_come", "Said they can't make it (to contacts)"
        ROLE_SHORT = "role_short", "Role still short"
        CHECK_OUT = "check_out", "Forgotten check-out"

    event = models.ForeignKey(
        "attendance.Event", on_delete=models.CASCADE, related_name="show_day_notices"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    key = models.CharField(max_length=20)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # What was found: "2 roles short", "nothing short", "no channel reaches them".
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["event", "kind", "key"], name="show_day_notice_once"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.event_id}/{self.key}"


class RunOfShowBlock(models.Model):
    """One block of an event's day on the call sheet: load-in, soundcheck, doors, show,
    load-out (or anything else), with its times."""

    event = models.ForeignKey(
        "attendance.Event", on_delete=models.CASCADE, related_name="run_of_show"
    )
    name = models.CharField(max_length=60, help_text="Load-in, Soundcheck, Doors, Show, Load-out…")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    notes = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["starts_at", "pk"]
        verbose_name = "run of show block"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="run_of_show_ends_after_start",
                violation_error_message="A block must end after it starts.",
            ),
        ]

    def __str__(self):
        return self.name
