from django.db import models


class BeatRun(models.Model):
    """The last run of each periodic job, written by the job itself: what readiness and the
    "a job has not run" alert compare with its schedule.

    django-celery-beat's `last_run_at` says when the beat *sent* a job; only the job can say
    that it ran to the end.
    """

    task = models.CharField(max_length=200, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Since when the job is expected to run: a job that never ran is late from here on.
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task"]
        verbose_name = "periodic job run"

    def __str__(self):
        return self.task


class Alert(models.Model):
    """An alert sent to staff: at most one of each kind per ALERT_INTERVAL_SECONDS."""

    class Kind(models.TextChoices):
        PAYMENT_FAILURES = "payment_failures", "Many payments failing"
        DARAJA_PROBLEMS = "daraja_problems", "Daraja errors or rate limits"
        PAYMENTS_OVERDUE = "payments_overdue", "Payments pending past their timeout"
        EMAILS_FAILING = "emails_failing", "Emails failing"
        BEAT_STALE = "beat_stale", "A periodic job has not run"
        CALLBACKS_QUARANTINED = "callbacks_quarantined", "Callbacks set aside for a person"
        PAYOUTS_UNSETTLED = "payouts_unsettled", "Payouts M-Pesa has not settled"
        BOOKS_DIFFER = "books_differ", "M-Pesa and our books disagree"

    kind = models.CharField(max_length=40, choices=Kind.choices)
    fired_at = models.DateTimeField(auto_now_add=True)
    summary = models.CharField(max_length=255)
    details = models.JSONField(default=dict, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["kind", "-fired_at"], name="alert_kind_recent")]
        permissions = [
            ("view_dashboard", "Can see the business dashboard"),
            ("receive_alerts", "Receives operations alerts by email"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.summary}"
