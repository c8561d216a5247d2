"""Is the system working: each periodic job's last run, readiness, Daraja's recent trouble.

`readiness()` is what `/api/ready/` answers (load balancers and operators); the alerts
(services/ops/alerts.py) look at the same facts, and the beat jobs record their own runs through
`beat_job`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from attendance.models import BeatRun, EmailNotification, MpesaPayment, Payout
from attendance.redis_client import redis_client
from attendance.services.ops.schedules import PERIODIC_TASKS
from soundfusion_attendance.queues import all_queues

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


# --- Periodic jobs ---------------------------------------------------------------------------


def beat_job(function: F) -> F:
    """Record the start, success or failure of a periodic job (under its task path)."""
    task_path = f"{function.__module__}.{function.__name__}"

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        _beat_write(task_path, last_started_at=timezone.now())
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            _beat_write(
                task_path,
                last_failed_at=timezone.now(),
                last_error=f"{type(error).__name__}: {error}"[:2000],
            )
            raise
        _beat_write(task_path, last_succeeded_at=timezone.now(), last_error="")
        return result

    return run  # type: ignore[return-value]


def _beat_write(task_path: str, **fields: Any) -> None:
    try:
        if not BeatRun.objects.filter(task=task_path).update(**fields):
            BeatRun.objects.get_or_create(task=task_path, defaults=fields)
    except DatabaseError:
        # The job's own work decides whether it failed; its bookkeeping never does.
        logger.exception("Could not record the run of %s", task_path)


@dataclass(frozen=True)
class JobLateness:
    name: str
    task: str
    every_seconds: int
    enabled: bool
    last_succeeded_at: datetime | None
    late_by_seconds: float  # > 0: overdue
    last_error: str

    @property
    def overdue(self) -> bool:
        return self.enabled and self.late_by_seconds > 0


def beat_jobs_lateness(now: datetime | None = None) -> list[JobLateness]:
    """Each periodic job against its schedule: late once two runs and the grace are missed."""
    from django_celery_beat.models import PeriodicTask

    now = now or timezone.now()
    paths = [task for task, _ in PERIODIC_TASKS.values()]
    runs = {run.task: run for run in BeatRun.objects.filter(task__in=paths)}
    enabled = dict(
        PeriodicTask.objects.filter(name__in=PERIODIC_TASKS).values_list("name", "enabled")
    )
    grace = settings.READY_BEAT_GRACE_SECONDS
    jobs = []
    for name, (task, every) in PERIODIC_TASKS.items():
        run = runs.get(task)
        late_by = beat_run_late_by(run, every, now, grace) if run else 0.0
        jobs.append(
            JobLateness(
                name=name,
                task=task,
                every_seconds=every,
                enabled=enabled.get(name, True),
                last_succeeded_at=run.last_succeeded_at if run else None,
                late_by_seconds=late_by,
                last_error=run.last_error if run else "",
            )
        )
    return jobs


def beat_run_late_by(run: BeatRun, every: int, now: datetime, grace: int) -> float:
    """Seconds past the point where the job counts as late (> 0: late)."""
    since = run.last_succeeded_at or run.created_at
    return (now - since).total_seconds() - (2 * every + grace)


def beat_run_schedule() -> dict[str, int]:
    """Task path -> seconds between runs, for the periodic jobs this project schedules."""
    return dict(PERIODIC_TASKS.values())


def beat_runs_ensure() -> None:
    """A row per periodic job, so that one that never runs becomes late (after migrate)."""
    for task, _ in PERIODIC_TASKS.values():
        BeatRun.objects.get_or_create(task=task)


# --- Daraja's trouble, counted per minute -----------------------------------------------------

# --- Readiness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def readiness(now: datetime | None = None) -> dict[str, Check]:
    """Everything the site needs to do its work, each checked cheaply (a few ms in all)."""
    now = now or timezone.now()
    checks = {"database": _check_database()}
    checks["redis"] = _check_redis()
    checks["broker"], checks["queue"] = _check_broker()
    if not checks["database"].ok:
        return checks  # the rest are read from the database
    checks["beat"] = _check_beat(now)
    checks["emails"] = _check_oldest_email(now)
    checks["payments"] = _check_oldest_payment(now)
    checks["payouts"] = _check_oldest_payout(now)
    return checks


def _check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return Check(True, connection.vendor)
    except DatabaseError as error:
        return Check(False, f"unreachable: {type(error).__name__}")


def _redis_client(url: str) -> Any:
    return redis_client(url, socket_connect_timeout=1, socket_timeout=1)


def _check_redis() -> Check:
    if not settings.REDIS_URL:
        return Check(True, "not used (cache in process)")
    try:
        _redis_client(settings.REDIS_URL).ping()
        return Check(True, "answers")
    except Exception as error:
        return Check(False, f"unreachable: {type(error).__name__}")


def _check_broker() -> tuple[Check, Check]:
    from celery import current_app

    if current_app.conf.task_always_eager:
        return Check(True, "not used (tasks run in process)"), Check(True, "no queue")
    url = settings.CELERY_BROKER_URL or ""
    if url.startswith("sentinel://"):
        url = settings.REDIS_URL  # the broker is the Redis the Sentinels name
    elif not url.startswith(("redis://", "rediss://")):
        return Check(True, f"{url.split(':')[0]} (not checked)"), Check(True, "not measured")
    try:
        client = _redis_client(url)
        # Every purpose queue (soundfusion_attendance/queues.py): work waiting anywhere counts.
        depth = sum(client.llen(queue) for queue in all_queues(current_app.conf.task_default_queue))
    except Exception as error:
        unreachable = Check(False, f"unreachable: {type(error).__name__}")
        return unreachable, Check(False, "unknown: the broker is unreachable")
    limit = settings.READY_MAX_QUEUE_DEPTH
    return Check(True, "answers"), Check(depth <= limit, f"{depth} tasks waiting (limit {limit})")


def _check_beat(now: datetime) -> Check:
    jobs = beat_jobs_lateness(now)
    late = [job for job in jobs if job.overdue]
    if late:
        return Check(False, "late: " + "; ".join(_lateness_text(job, now) for job in late))
    paused = [job.name for job in jobs if not job.enabled]
    detail = f"{len(jobs) - len(paused)} jobs on time"
    return Check(True, detail + (f"; paused in admin: {', '.join(paused)}" if paused else ""))


def _lateness_text(job: JobLateness, now: datetime) -> str:
    if job.last_succeeded_at is None:
        return f"{job.name} has never run"
    minutes = int((now - job.last_succeeded_at).total_seconds() // 60)
    return f"{job.name} last ran {minutes} min ago (every {job.every_seconds // 60 or 1} min)"


def _check_oldest_email(now: datetime) -> Check:
    # Queued and due: an email waiting for its retry time is not late.
    oldest = (
        EmailNotification.objects.filter(status=EmailNotification.Status.QUEUED)
        .filter(next_attempt_at__isnull=True)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    due = (
        EmailNotification.objects.filter(
            status=EmailNotification.Status.QUEUED, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    waiting = [t for t in (oldest, due) if t is not None]
    if not waiting:
        return Check(True, "none waiting")
    age = (now - min(waiting)).total_seconds()
    limit = settings.READY_MAX_EMAIL_WAIT_SECONDS
    return Check(age <= limit, f"oldest unsent for {int(age)} s (limit {limit} s)")


def _check_oldest_payment(now: datetime) -> Check:
    oldest = (
        MpesaPayment.objects.filter(status__in=MpesaPayment.OPEN)
        .order_by("initiated_at")
        .values_list("initiated_at", flat=True)
        .first()
    )
    if oldest is None:
        return Check(True, "none open")
    age = (now - oldest).total_seconds()
    # Past its timeout the reconciler should have settled or expired it.
    limit = settings.MPESA_PENDING_TIMEOUT_SECONDS + settings.READY_PAYMENT_GRACE_SECONDS
    return Check(age <= limit, f"oldest open for {int(age)} s (limit {limit} s)")


def payout_settle_limit_seconds() -> int:
    """By then the reconciler has asked about an open payout as often as it ever will."""
    return settings.PAYOUT_QUERY_AFTER_SECONDS * (settings.PAYOUT_REVIEW_AFTER_CHECKS + 1) + (
        settings.READY_PAYMENT_GRACE_SECONDS
    )


def _check_oldest_payout(now: datetime) -> Check:
    oldest = (
        Payout.objects.filter(status__in=Payout.OPEN, submitted_at__isnull=False)
        .order_by("submitted_at")
        .values_list("submitted_at", flat=True)
        .first()
    )
    if oldest is None:
        return Check(True, "none open")
    age, limit = (now - oldest).total_seconds(), payout_settle_limit_seconds()
    return Check(age <= limit, f"oldest unsettled for {int(age)} s (limit {limit} s)")


def unsettled_payouts(now: datetime | None = None) -> dict[str, int]:
    """Payouts flagged for a person, and open ones past the time the reconciler needs."""
    cutoff = (now or timezone.now()) - timedelta(seconds=payout_settle_limit_seconds())
    return {
        "review": Payout.objects.filter(needs_review=True)
        .exclude(status=Payout.Status.COMPLETED)
        .count(),
        "overdue": Payout.objects.filter(status__in=Payout.OPEN, submitted_at__lt=cutoff).count(),
    }


def overdue_payments_count(now: datetime | None = None) -> int:
    limit = settings.MPESA_PENDING_TIMEOUT_SECONDS + settings.READY_PAYMENT_GRACE_SECONDS
    cutoff = (now or timezone.now()) - timedelta(seconds=limit)
    return MpesaPayment.objects.filter(
        status__in=MpesaPayment.OPEN, initiated_at__lt=cutoff
    ).count()
