"""Exactly one beat is the rule; a second one by mistake does no double work (issue 30).

Two beat processes run for over a minute against one worker, in production settings, each
firing every periodic job at once when they start (their schedules say the jobs are due) and
again a minute later: the same job runs four times, twice at the very same moment. Work that
was waiting is done once: a reminder emailed once, a lost email sent once, a payment whose
callback was lost settled (and credited) once."""

import secrets
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from attendance.models import EmailNotification, EventCrew, LedgerEntry, MpesaPayment
from attendance.services.payments import payment_request_stk_push
from tests.support.cluster import Cluster
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.waiting import wait_until
from tests.support.workers import database_url_of_this_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(300),
]
REDIS_DB = 8


def test_two_beats_for_a_minute_do_no_double_work(daraja, smtp_server, smtp_worker_env):
    # A confirmed member of tomorrow's show: due a reminder.
    tomorrow = timezone.localtime() + timedelta(days=1)
    show = EventFactory(starts_at=tomorrow.replace(hour=18, minute=0))
    show.ends_at = show.starts_at + timedelta(hours=5)
    show.save()
    reminded = EventCrewFactory(
        event=show, status="confirmed", confirmed_at=timezone.now(), user__email="crew@example.com"
    )
    # An email whose task was lost (queued ten minutes ago, never sent): the sweeper's.
    lost = EmailNotification.objects.create(
        recipient="lost@example.com",
        notification_type="crew_reminder",
        subject="Lost and found",
        message="Sent once, whoever sweeps.",
    )
    EmailNotification.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    # A prompt whose callback Daraja lost (phone ending 0003): the reconciler's query settles it.
    payer = UserFactory(profile__phone_number="0712340003")
    payment, _ = payment_request_stk_push(
        payer=payer, amount=Decimal("150"), purpose="Balance payment", requested_by=payer
    )
    assert wait_until(lambda: daraja.state.answered(payment.checkout_request_id), timeout=10)
    MpesaPayment.objects.filter(pk=payment.pk).update(
        initiated_at=timezone.now() - timedelta(minutes=5)
    )

    # Every periodic job is due now, in both beats' eyes.
    for task in PeriodicTask.objects.exclude(interval=None).select_related("interval"):
        every = timedelta(seconds=task.interval.every)
        PeriodicTask.objects.filter(pk=task.pk).update(
            last_run_at=timezone.now() - every + timedelta(seconds=1)
        )

    import redis

    redis.Redis(db=REDIS_DB).flushdb()
    nodes = Cluster(
        {
            "DATABASE_URL": database_url_of_this_process(),
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "SECRET_KEY": secrets.token_urlsafe(50),
            **smtp_worker_env,
            "CREW_REMINDER_HOUR": "0",
            "MPESA_BASE_URL": daraja.url,
            "MPESA_CONSUMER_KEY": settings.MPESA_CONSUMER_KEY,
            "MPESA_CONSUMER_SECRET": settings.MPESA_CONSUMER_SECRET,
            "MPESA_BUSINESS_SHORT_CODE": settings.MPESA_BUSINESS_SHORT_CODE,
            "MPESA_PASS_KEY": settings.MPESA_PASS_KEY,
            "MPESA_QUERY_AFTER_SECONDS": "60",
        }
    )
    try:
        nodes.start_worker(concurrency=4)
        nodes.start_beat("beat-1")
        nodes.start_beat("beat-2")
        started = time.monotonic()

        def each_job_ran_four_times():
            ran = TaskResult.objects.filter(
                task_name="attendance.tasks.payments_reconcile_task", status="SUCCESS"
            ).count()
            return ran >= 4

        assert wait_until(each_job_ran_four_times, timeout=150, interval=1), nodes.logs()
        assert time.monotonic() - started >= 55  # a minute of two beats
    finally:
        nodes.stop()

    # Each job did run four times ...
    for name in (
        "attendance.tasks.crew_send_reminders_task",
        "attendance.tasks.notifications_sweep_task",
    ):
        assert TaskResult.objects.filter(task_name=name).count() >= 2, name
    # ... and the work was done once.
    reminders = EmailNotification.objects.filter(
        crew_assignment=reminded, notification_type="crew_reminder"
    )
    assert reminders.count() == 1
    assert EventCrew.objects.get(pk=reminded.pk).reminder_sent
    to = [m["To"] for m in smtp_server.messages]
    assert to.count("crew@example.com") == 1
    assert to.count("lost@example.com") == 1
    payment.refresh_from_db()
    assert payment.status == MpesaPayment.Status.COMPLETED
    credited = LedgerEntry.objects.filter(
        source_type=ContentType.objects.get_for_model(MpesaPayment), source_id=payment.pk
    )
    assert credited.count() == 1
