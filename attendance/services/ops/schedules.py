"""Periodic tasks live in the database (django-celery-beat): admins can see and pause them."""

from django.db import transaction

# name -> (task path, every N seconds)
PERIODIC_TASKS = {
    "Send queued emails whose task was lost": ("attendance.tasks.notifications_sweep_task", 60),
    "SMS: send queued texts whose task was lost, apply stored reports and replies": (
        "attendance.tasks.sms_sweep_task",
        60,
    ),
    "M-Pesa: process stored callbacks left unprocessed": (
        "attendance.tasks.callbacks_process_pending_task",
        60,
    ),
    "M-Pesa: query pending payments, expire unanswered ones": (
        "attendance.tasks.payments_reconcile_task",
        60,
    ),
    "M-Pesa Paybill: process stored notices and reversal results, match statement rows again": (
        "attendance.tasks.paybill_notices_process_pending_task",
        60,
    ),
    # Pull keeps 48 hours; each run asks for the last MPESA_PULL_HOURS.
    "M-Pesa Paybill: pull recent transactions, credit any whose confirmation was lost": (
        "attendance.tasks.paybill_pull_task",
        900,
    ),
    "M-Pesa payouts: settle stored results, ask about payouts with no result": (
        "attendance.tasks.payouts_reconcile_task",
        60,
    ),
    "Background jobs: resume those whose worker stopped": (
        "attendance.tasks.bulk_jobs_resume_task",
        60,
    ),
    "Operations: alert staff to payments, Daraja, emails or jobs in trouble": (
        "attendance.tasks.alerts_check_task",
        60,
    ),
    "Show day: leave now, are you coming?, roles still short, forgotten check-outs": (
        "attendance.tasks.show_day_task",
        60,
    ),
    # Hourly, so a worker that was down at the reminder hour still catches up the same day.
    "Crew: remind confirmed crew the day before": (
        "attendance.tasks.crew_send_reminders_task",
        3600,
    ),
}


def schedules_ensure() -> None:
    """Create or update the periodic tasks (idempotent; runs after every migrate).

    An admin's choice to disable a task is kept; the schedule and task path follow the code.
    """
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    with transaction.atomic():
        for name, (task, seconds) in PERIODIC_TASKS.items():
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=seconds, period=IntervalSchedule.SECONDS
            )
            PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": task, "interval": interval}
            )
