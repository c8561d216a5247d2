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
