from django.conf import settings
from django.db import models
from django.db.models import Q


class BulkJob(models.Model):
    """Work on many rows at once (prompts to 500 members, invitations, an export), run in the
    background and followed on a progress page.

    A row, not just a Celery task: it survives a worker restart (a beat job resumes a job
    whose worker stopped beating), says how far it got, and keeps one outcome per member in
    BulkJobItem. Items are claimed one at a time, like emails, so two workers never do one.
    """

    class Kind(models.TextChoices):
        PROMPT_PAYMENTS = "prompt_payments", "M-Pesa payment prompts"
        CHECK_PAYMENTS = "check_payments", "M-Pesa status checks"
        SEND_INVITATIONS = "send_invitations", "Crew invitations"
        SEND_REMINDERS = "send_reminders", "Crew reminders"
        CONFIRM_CREW = "confirm_crew", "Crew marked confirmed"
        SEND_BRIEFING = "send_briefing", "Setup briefings"
        RESEND_EMAILS = "resend_emails", "Failed emails sent again"
        RESEND_SMS = "resend_sms", "Failed SMS sent again"
        EXPORT_PAYMENTS = "export_payments", "Payments export (CSV)"
        EXPORT_ATTENDANCE = "export_attendance", "Attendance export (CSV)"
        EXPORT_PAYROLL = "export_payroll", "Payroll export (XLSX)"
        APPROVE_PAY_RUN = "approve_pay_run", "Pay run approval"
        SUBMIT_PAYOUTS = "submit_payouts", "M-Pesa payouts"

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to start"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Stopped by an error"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Refreshed while a worker runs the job; a running job whose beat stopped is resumed.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    # What a job that first works out its items is doing ("Asking M-Pesa for the balance"),
    # then what it found: shown above the progress bar.
    stage = models.CharField(max_length=300, blank=True)
    # Who, what kind, which targets and parameters, hashed: a second press of the same button
    # within JOB_REPEAT_WINDOW_SECONDS lands on the first job instead of starting another.
    fingerprint = models.CharField(max_length=64, blank=True)
    # Not a column: bulk_job_create sets it when a repeated press got an earlier job back.
    repeated = False

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "background job"
        indexes = [
            models.Index(fields=["-created_at"], name="bulkjob_recent"),
            models.Index(fields=["fingerprint", "-created_at"], name="bulkjob_fingerprint"),
            models.Index(
                fields=["heartbeat_at"],
                name="bulkjob_unfinished",
                condition=Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.done + self.failed + self.skipped}/{self.total})"

    @property
    def remaining(self) -> int:
        return max(self.total - self.done - self.failed - self.skipped, 0)

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class BulkJobItem(models.Model):
    """One member (or assignment, or email) of a bulk job, and how it went for them."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Not done"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    target_id = models.PositiveBigIntegerField(help_text="The profile, assignment or email")
    label = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    outcome = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When a claimed item is considered abandoned (its worker died); when a retry is due.
    claimed_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    result_id = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        verbose_name = "background job item"
        constraints = [
            models.UniqueConstraint(fields=["job", "target_id"], name="bulkjobitem_once_per_job"),
        ]
        indexes = [
            models.Index(fields=["job", "status", "position"], name="bulkjobitem_next"),
            models.Index(fields=["job", "updated_at"], name="bulkjobitem_changed"),
        ]

    def __str__(self):
        return f"{self.label}: {self.get_status_display()}"
