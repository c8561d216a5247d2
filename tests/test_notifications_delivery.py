from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from attendance.models import EmailNotification
from attendance.services.crew.events import event_save
from attendance.services.messaging.email import (
    Attachment,
    notification_create,
    notification_deliver,
    notification_deliver_task,
    notification_sweep,
)
from attendance.tasks import notifications_sweep_task
from tests.support.admin_forms import EVENT_INLINES, management_forms
from tests.support.factories import EventFactory, UserFactory
from tests.support.smtp import SmtpServer

Status = EmailNotification.Status


def _notify(user, event, **kwargs):
    return notification_create(
        recipient=user.email,
        user=user,
        event=event,
        notification_type=EmailNotification.Type.EVENT_CREATED,
        context={"event": event},
        **kwargs,
    )


@pytest.fixture
def manager(db):
    return UserFactory(first_name="Daniel", email="daniel@example.com")


@pytest.fixture
def event(db):
    return EventFactory(name="Koroga Festival", venue="Two Rivers")


def test_delivered_message_has_subject_html_and_text_parts(
    smtp_server, manager, event, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = _notify(
            manager,
            event,
            attachments=(Attachment("event.ics", "BEGIN:VCALENDAR", "text/calendar"),),
        )
    row.refresh_from_db()
    assert row.status == Status.SENT and row.sent_at
    [message] = smtp_server.messages
    assert message["Subject"] == row.subject
    assert "Koroga Festival" in message["Subject"]
    assert message["To"] == "daniel@example.com"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "Koroga Festival" in parts["text/plain"].get_payload(decode=True).decode()
    html = parts["text/html"].get_payload(decode=True).decode()
    assert "Koroga Festival" in html and "Sound" in html
    assert "BEGIN:VCALENDAR" in parts["text/calendar"].get_payload(decode=True).decode()
    # What is stored is what was sent.
    sent_text = parts["text/plain"].get_payload(decode=True).decode().replace("\r\n", "\n")
    assert row.message == sent_text


def test_temporary_smtp_failures_are_retried_until_accepted(
    smtp_server, manager, event, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    smtp_server.handler.data_replies = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    with django_capture_on_commit_callbacks(execute=True):
        row = _notify(manager, event)
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert row.failed_attempts == 2
    assert "451" in row.last_error
    assert len(smtp_server.messages) == 1


def test_backoff_grows_exponentially(settings):
    from attendance.services.core.outbox import outbox_backoff

    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    assert [outbox_backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert outbox_backoff(30) == 3600


def test_rejected_recipient_fails_at_once_with_the_reason(
    smtp_server, manager, event, django_capture_on_commit_callbacks
):
    smtp_server.handler.rcpt_reply = "550 5.1.1 No such user here"
    with django_capture_on_commit_callbacks(execute=True):
        row = _notify(manager, event)
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert row.failed_attempts == 1
    assert "550" in row.last_error and "No such user" in row.last_error
    assert smtp_server.messages == []


def test_gives_up_after_the_configured_attempts(
    smtp_port_down, manager, event, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 0
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    with django_capture_on_commit_callbacks(execute=True):
        row = _notify(manager, event)
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert row.failed_attempts == 3
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()


def test_smtp_down_then_back_delivers_every_queued_email_once(
    smtp_port_down, event, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 30
    users = UserFactory.create_batch(100)
    with django_capture_on_commit_callbacks(execute=True):
        for user in users:
            _notify(user, event)
    assert EmailNotification.objects.filter(status=Status.QUEUED, failed_attempts=1).count() == 100

    server = SmtpServer(port=smtp_port_down).start()
    try:
        # The retries were due 30 s on; the sweeper waits NOTIFICATION_REQUEUE_AFTER_SECONDS
        # (120) past that for their own tasks before it queues them again itself.
        with time_machine.travel(timezone.now() + timedelta(minutes=3), tick=True):
            with django_capture_on_commit_callbacks(execute=True):
                notifications_sweep_task.apply()
            # A second sweep (two beats, or the next minute) must not send anything again.
            with django_capture_on_commit_callbacks(execute=True):
                notifications_sweep_task.apply()
    finally:
        server.stop()
    ids = server.handler.notification_ids()
    assert len(ids) == 100
    assert len(set(ids)) == 100
    assert EmailNotification.objects.filter(status=Status.SENT).count() == 100


def test_a_rolled_back_transaction_sends_nothing(
    smtp_server, manager, event, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _notify(manager, event)
        raise RuntimeError("the admin action failed half way")
    assert callbacks == []
    assert not EmailNotification.objects.exists()
    assert smtp_server.messages == []


def test_a_template_error_fails_the_row_at_once(manager, event):
    row = notification_create(
        recipient=manager.email, notification_type="no_such_template", context={}, user=manager
    )
    assert row.status == Status.FAILED
    assert "Template error" in row.last_error


def test_delivering_twice_sends_once(smtp_server, manager, event):
    row = EmailNotification.objects.create(
        recipient=manager.email, notification_type="event_created", subject="s", message="m"
    )
    assert notification_deliver(notification_id=row.pk).outcome == "sent"
    assert notification_deliver(notification_id=row.pk).outcome == "skipped"
    assert notification_deliver_task.apply(args=[row.pk]).get() == "skipped"
    assert len(smtp_server.messages) == 1


def test_sweeper_requeues_rows_of_a_dead_worker(
    smtp_server, manager, django_capture_on_commit_callbacks
):
    row = EmailNotification.objects.create(
        recipient=manager.email,
        notification_type="event_created",
        subject="s",
        message="m",
        status=Status.SENDING,
    )
    EmailNotification.objects.filter(pk=row.pk).update(
        claimed_at=timezone.now() - timedelta(hours=1),
        created_at=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = notification_sweep()
    assert result == {"reclaimed": 1, "queued": 1}
    row.refresh_from_db()
    assert row.status == Status.SENT


def test_admin_resend_of_a_failed_notification_delivers_it_once(
    smtp_server, staff_client, manager, django_capture_on_commit_callbacks
):
    row = EmailNotification.objects.create(
        recipient=manager.email,
        notification_type="event_created",
        subject="Retry me",
        message="m",
        status=Status.FAILED,
        failed_attempts=5,
        last_error="SMTP 451",
    )
    sent = EmailNotification.objects.create(
        recipient=manager.email,
        notification_type="event_created",
        subject="Done",
        message="m",
        status=Status.SENT,
    )
    for _ in range(2):  # a double click
        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                "/admin/attendance/emailnotification/",
                {"action": "resend_failed", "_selected_action": [row.pk, sent.pk]},
                follow=True,
            )
        assert response.status_code == 200
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert [m["Subject"] for m in smtp_server.messages] == ["Retry me"]


def test_event_changes_email_the_crew_with_what_changed(
    smtp_server, event, django_capture_on_commit_callbacks
):
    from attendance.services.attendance import attendance_expect

    member = UserFactory(email="crew@example.com")
    attendance_expect(event=event, user=member)
    event.venue = "KICC Tsavo Ballroom"
    with django_capture_on_commit_callbacks(execute=True):
        changes = event_save(event=event)
    assert [c["label"] for c in changes] == ["Venue"]
    [message] = smtp_server.messages
    assert message["To"] == "crew@example.com"
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    body = text.get_payload(decode=True).decode()
    assert "Two Rivers -> KICC Tsavo Ballroom" in body


def test_event_created_in_admin_alerts_its_managers(
    smtp_server, staff_client, manager, django_capture_on_commit_callbacks
):
    start = timezone.localtime() + timedelta(days=3)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/attendance/event/add/",
            {
                "name": "Jazz night",
                "client": "Alliance",
                "status": "planned",
                "managers": [manager.pk],
                "starts_at_0": start.strftime("%Y-%m-%d"),
                "starts_at_1": "19:00:00",
                "ends_at_0": start.strftime("%Y-%m-%d"),
                "ends_at_1": "23:00:00",
                "call_time_0": start.strftime("%Y-%m-%d"),
                "call_time_1": "16:00:00",
                "venue": "Alliance Française",
                **management_forms(*EVENT_INLINES),
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    [message] = smtp_server.messages
    assert "Jazz night" in message["Subject"]
    assert message["To"] == manager.email
