"""Email outbox throughput and admin queueing time.

1. 1,000 notifications delivered by real Celery workers (2 processes) through Redis to a local
   SMTP sink, against a plain smtplib loop (one connection) to the same sink in the same run.
   Target: at least 50% of the plain loop's throughput.
2. Queueing 1,000 failed notifications with the admin's "Resend failed notifications" action.
   Target: under 2 seconds.

Run: make bench (or .venv/bin/python bench/bench_notifications.py)
"""

import smtplib
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from common import REDIS, Timer, empty_tables, log_in_staff, setup_django

N = 1000
POOL = sys.argv[1] if len(sys.argv) > 1 else "prefork"


def main():
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from attendance.models import EmailNotification
    from attendance.services.messaging.email import EMAIL_OUTBOX, notification_deliver_task
    from soundfusion_attendance.celery import app
    from tests.support.smtp import free_port
    from tests.support.waiting import wait_until
    from tests.support.workers import Workers

    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    # The sink runs in its own process, so neither side shares an interpreter with it.
    port, received = free_port(), Path(tempfile.mkdtemp()) / "received.txt"
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("smtp_sink.py")), str(port), str(received)],
        stdout=subprocess.PIPE,
        text=True,
    )
    sink.stdout.readline()
    body = "Call time moved to 16:00. " * 20

    # Baseline: the plain smtplib loop.
    with Timer() as plain:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for n in range(N):
            message = EmailMessage()
            message["Subject"], message["From"], message["To"] = f"Plain {n}", "a@b.c", "d@e.f"
            message.set_content(body)
            message.add_alternative(f"<p>{body}</p>", subtype="html")
            smtp.send_message(message)
        smtp.quit()
    plain_rate = N / plain.seconds

    empty_tables(EmailNotification)
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    with Workers(count=2, concurrency=1, env=env, pool=POOL) as workers:
        warm = EmailNotification.objects.create(
            recipient="warm@example.com",
            notification_type="event_updated",
            subject="w",
            message="w",
        )
        notification_deliver_task.apply_async(args=[warm.pk], queue=workers.queue)
        notification_deliver_task.apply_async(args=[warm.pk], queue=workers.queue)
        assert wait_until(lambda: EmailNotification.objects.filter(status="sent").exists(), 60)
        time.sleep(1)  # let both workers finish starting
        rows = EmailNotification.objects.bulk_create(
            EmailNotification(
                recipient=f"crew{n}@example.com",
                notification_type="event_updated",
                subject=f"Outbox {n}",
                message=body,
                html_message=f"<p>{body}</p>",
            )
            for n in range(N)
        )
        app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
        with Timer() as outbox:
            # The application's own queueing path (batched tasks after commit).
            EMAIL_OUTBOX.queue([row.pk for row in rows])  # as the services queue after commit
            done = wait_until(
                lambda: EmailNotification.objects.filter(status="sent").count() == N + 1, 300, 0.05
            )
    assert done, "not all notifications were delivered"
    outbox_rate = N / outbox.seconds
    ids = [line for line in received.read_text().split() if line != "-"]
    duplicates = len(ids) - len(set(ids))

    # Admin action: queue 1,000 failed notifications again (tasks go to Redis, no worker).
    EmailNotification.objects.all().update(status="failed")
    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    log_in_staff(client, admin)
    first_page = list(EmailNotification.objects.values_list("pk", flat=True)[:100])
    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    # As an admin does it: filter on "failed", tick "select all 1,000", run the action.
    with Timer() as action:
        response = client.post(
            "/admin/attendance/emailnotification/?status__exact=failed",
            {"action": "resend_failed", "select_across": "1", "_selected_action": first_page},
        )
    assert response.status_code == 302, response.status_code
    queued = EmailNotification.objects.filter(status="queued").count()
    # Those tasks went to a queue whose workers are gone: drop them.
    app.control.purge()
    import redis

    redis.Redis.from_url(REDIS).delete(workers.queue)
    empty_tables(EmailNotification)
    sink.terminate()

    print(f"plain smtplib loop:          {plain_rate:8.0f} emails/s ({N} in {plain.seconds:.2f} s)")
    print(
        f"outbox, 2 Celery workers:    {outbox_rate:8.0f} emails/s ({N} in {outbox.seconds:.2f} s)"
    )
    print(f"ratio outbox/plain:          {outbox_rate / plain_rate:8.2f}  (target >= 0.50)")
    print(f"duplicates at the sink:      {duplicates:8d}")
    print(f"admin resend of {N} failed: {action.seconds:8.2f} s, {queued} queued (target < 2 s)")


if __name__ == "__main__":
    main()
