"""Alerts to staff when something goes wrong that a member would otherwise report first.

A periodic job (`alerts_check`, every minute) looks at each condition below; one that holds
sends an email through the outbox to everyone who receives alerts (the permission "Receives
operations alerts by email", superusers, and the addresses in ALERT_EMAILS), at most once per
kind every ALERT_INTERVAL_SECONDS. Each alert is kept (admin: Alerts) and shown on the
dashboard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from attendance.models import Alert, EmailNotification, MpesaPayment
from attendance.models.inbox import InboxRow, InboxStatus
from attendance.services.core.pacing import daraja_problems
from attendance.services.messaging.email import notification_create
from attendance.services.ops.health import (
    beat_jobs_lateness,
    overdue_payments_count,
    unsettled_payouts,
)
from attendance.services.payments.books import books_check
from attendance.services.people.roles import staff_with_permission

logger = logging.getLogger(__name__)
Kind = Alert.Kind
LOCK = "alerts-check-running"


@dataclass(frozen=True)
class Problem:
    summary: str
    link: str  # the admin page that shows it
    details: dict[str, Any] = field(default_factory=dict)


def _payment_failures(now: datetime) -> Problem | None:
    since = now - timedelta(hours=1)
    counts = MpesaPayment.objects.filter(initiated_at__gte=since).aggregate(
        completed=Count("id", filter=Q(status=MpesaPayment.Status.COMPLETED)),
        failed=Count("id", filter=Q(status=MpesaPayment.Status.FAILED)),
        cancelled=Count("id", filter=Q(status=MpesaPayment.Status.CANCELLED)),
    )
    finished = counts["completed"] + counts["failed"] + counts["cancelled"]
    if finished < settings.ALERT_PAYMENT_MIN_COUNT:
        return None
    rate = (counts["failed"] + counts["cancelled"]) / finished
    if rate < settings.ALERT_PAYMENT_FAILURE_RATE:
        return None
    return Problem(
        f"{rate:.0%} of the last hour's {finished} payments did not go through "
        f"({counts['failed']} failed, {counts['cancelled']} cancelled)",
        "/admin/attendance/mpesapayment/?status__exact=failed",
        {**counts, "rate": round(rate, 3)},
    )


def _daraja_problems(now: datetime) -> Problem | None:
    minutes = settings.ALERT_DARAJA_WINDOW_MINUTES
    counts = daraja_problems(minutes, now)
    total = counts["error"] + counts["rate_limited"]
    if total < settings.ALERT_DARAJA_PROBLEMS:
        return None
    return Problem(
        f"Daraja answered {counts['error']} errors and {counts['rate_limited']} rate-limit "
        f"refusals in the last {minutes} minutes",
        "/admin/attendance/mpesapayment/?status__exact=failed",
        {**counts, "minutes": minutes},
    )


def _payments_overdue(now: datetime) -> Problem | None:
    count = overdue_payments_count(now)
    if not count:
        return None
    return Problem(
        f"{count} payment(s) still open past their timeout: the reconciler is not settling them",
        "/admin/attendance/mpesapayment/?status__exact=pending",
        {"count": count},
    )


def _emails_failing(now: datetime) -> Problem | None:
    since = now - timedelta(hours=1)
    failed = EmailNotification.objects.filter(
        created_at__gte=since, status=EmailNotification.Status.FAILED
    ).count()
    retrying = EmailNotification.objects.filter(
        status=EmailNotification.Status.QUEUED, failed_attempts__gt=0, next_attempt_at__isnull=False
    ).count()
    if failed + retrying < settings.ALERT_EMAIL_FAILURES:
        return None
    return Problem(
        f"{failed} email(s) failed in the last hour and {retrying} are being retried",
        "/admin/attendance/emailnotification/?status__exact=failed",
        {"failed": failed, "retrying": retrying},
    )


def _beat_stale(now: datetime) -> Problem | None:
    late = [job for job in beat_jobs_lateness(now) if job.overdue]
    if not late:
        return None
    return Problem(
        "Not running on time: " + ", ".join(job.name for job in late),
        "/admin/django_celery_beat/periodictask/",
        {job.task: job.last_error or "no error recorded" for job in late},
    )


def _callbacks_quarantined(now: datetime) -> Problem | None:
    counts = {
        model._meta.model_name: (str(model._meta.verbose_name), count)
        for model in apps.get_app_config("attendance").get_models()
        if issubclass(model, InboxRow)
        and (count := model.objects.filter(status=InboxStatus.QUARANTINED).count())
    }
    if not counts:
        return None
    model_name, _ = next(iter(counts.items()))
    words = ", ".join(f"{count} {label.lower()}(s)" for label, count in counts.values())
    return Problem(
        f"Could not be processed and wait for a person: {words}",
        f"/admin/attendance/{model_name}/?status__exact=quarantined",
        dict(counts.values()),
    )


def _payouts_unsettled(now: datetime) -> Problem | None:
    counts = unsettled_payouts(now)
    if not (counts["review"] or counts["overdue"]):
        return None
    return Problem(
        f"{counts['review']} payout(s) wait for a person and {counts['overdue']} have had no "
        "answer from M-Pesa for too long: check their receipts before paying anyone again",
        "/admin/attendance/payout/?needs_review__exact=1",
        counts,
    )


def _books_differ(now: datetime) -> Problem | None:
    found = books_check(now)
    if not (found["unattributed"] or found["not_listed_by_pull"]):
        return None
    parts = []
    if found["unattributed"]:
        parts.append(
            f"{found['unattributed']} Paybill payment(s) M-Pesa received that no member's "
            "balance holds yet (the unattributed queue)"
        )
    if found["not_listed_by_pull"]:
        parts.append(
            f"{found['not_listed_by_pull']} prompt payment(s) with a receipt that Pull "
            "Transactions never listed: check them on the statement"
        )
    return Problem(
        "; ".join(parts),
        "/admin/attendance/paybillpayment/?status__exact=unattributed"
        if found["unattributed"]
        else "/admin/attendance/statementimport/reconcile/",
        found,
    )


CONDITIONS: dict[str, Callable[[datetime], Problem | None]] = {
    Kind.PAYMENT_FAILURES: _payment_failures,
    Kind.DARAJA_PROBLEMS: _daraja_problems,
    Kind.PAYMENTS_OVERDUE: _payments_overdue,
    Kind.EMAILS_FAILING: _emails_failing,
    Kind.BEAT_STALE: _beat_stale,
    Kind.CALLBACKS_QUARANTINED: _callbacks_quarantined,
    Kind.PAYOUTS_UNSETTLED: _payouts_unsettled,
    Kind.BOOKS_DIFFER: _books_differ,
}


def alerts_check(now: datetime | None = None) -> list[Alert]:
    """Fire every alert whose condition holds and that has not fired within the interval."""
    now = now or timezone.now()
    if not cache.add(LOCK, 1, timeout=120):
        return []  # another run is at it
    try:
        fired = []
        for kind, condition in CONDITIONS.items():
            try:
                problem = condition(now)
            except Exception:  # one broken condition must not silence the others
                logger.exception("Alert condition %s failed", kind)
                continue
            if problem is not None and _quiet_long_enough(kind, now):
                fired.append(_fire(kind, problem))
        return fired
    finally:
        cache.delete(LOCK)


def _quiet_long_enough(kind: str, now: datetime) -> bool:
    since = now - timedelta(seconds=settings.ALERT_INTERVAL_SECONDS)
    return not Alert.objects.filter(kind=kind, fired_at__gt=since).exists()


def alert_recipients() -> list[tuple[str, User | None]]:
    """(address, user) of everyone who receives alerts, each address once."""
    found: dict[str, User | None] = {}
    for user in staff_with_permission("receive_alerts").exclude(email=""):
        found.setdefault(user.email.lower(), user)
    for address in settings.ALERT_EMAILS:
        found.setdefault(address.lower(), None)
    return list(found.items())


def _fire(kind: str, problem: Problem) -> Alert:
    with transaction.atomic():
        recipients = alert_recipients()
        alert = Alert.objects.create(
            kind=kind,
            summary=problem.summary[:255],
            details={**problem.details, "link": problem.link},
            recipients=len(recipients),
        )
        for address, user in recipients:
            notification_create(
                recipient=address,
                user=user,
                notification_type=EmailNotification.Type.ALERT,
                context={"alert": alert, "link": problem.link, "every": _interval_text()},
            )
    logger.warning("Alert %s: %s", kind, problem.summary)
    return alert


def _interval_text() -> str:
    minutes = max(1, settings.ALERT_INTERVAL_SECONDS // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"
