"""End to end: real Celery worker processes on Redis, PostgreSQL row locks, a real SMTP server."""

import pytest

from attendance.models import EmailNotification
from attendance.services.messaging.email import notification_deliver_task
from tests.conftest import set_celery_eager
from tests.support.waiting import wait_until
from tests.support.workers import Workers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_two_workers_draining_the_same_notifications_deliver_each_once(
    smtp_server, smtp_worker_env
):
    rows = EmailNotification.objects.bulk_create(
        EmailNotification(
            recipient=f"crew{n}@example.com",
            notification_type=EmailNotification.Type.EVENT_UPDATED,
            subject=f"Message {n}",
            message="Call time moved.",
        )
        for n in range(1000)
    )
    set_celery_eager(False)
    try:
        with Workers(count=2, env=smtp_worker_env) as workers:
            # Every notification is queued twice, so both workers race for each one.
            for _ in range(2):
                for row in rows:
                    notification_deliver_task.apply_async(args=[row.pk], queue=workers.queue)
            delivered = wait_until(
                lambda: EmailNotification.objects.filter(status="sent").count() == 1000, timeout=180
            )
    finally:
        set_celery_eager(True)
    assert delivered, EmailNotification.objects.values("status").distinct()
    ids = smtp_server.handler.notification_ids()
    assert len(ids) == 1000
    assert len(set(ids)) == 1000
