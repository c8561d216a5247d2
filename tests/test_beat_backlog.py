"""Beat jobs that cost what their backlog costs: every pending payment asked about, every
lost email queued again, reminders whose size does not grow with the event."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from attendance.models import EmailNotification, EventCrew, MpesaPayment
from attendance.services.crew.assignments import crew_confirm
from attendance.services.crew.followup import crew_send_reminders
from attendance.services.messaging.email import notification_sweep
from attendance.services.payments import payment_request_stk_push, payments_reconcile
from attendance.services.payments.reconciliation import RECONCILE_LOCK
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory


def _pending(daraja, count):
    payments = []
    for n in range(count):
        member = UserFactory(profile__phone_number=f"07130{n:05d}")
        payment, _ = payment_request_stk_push(
            payer=member, amount=100, purpose="x", requested_by=member
        )
        payments.append(payment)
    return payments


def test_one_run_asks_about_every_due_payment_not_a_fixed_two_hundred(db, daraja, settings):
    daraja.state.callback_delay = 3600  # nobody answers: all stay pending, all are asked
    settings.MPESA_QUERY_AFTER_SECONDS = 0
    settings.MPESA_PROMPT_LIMIT_PER_PHONE = 0
    settings.MPESA_RECONCILE_PER_SECOND = 5000
    payments = _pending(daraja, 260)
    counts = payments_reconcile(now=timezone.now() + timedelta(seconds=1))
    assert counts.get("pending", 0) == 260
    assert not MpesaPayment.objects.filter(last_queried_at__isnull=True).exists()
    # Asked again only once MPESA_QUERY_AFTER_SECONDS have passed since the last question.
    settings.MPESA_QUERY_AFTER_SECONDS = 60
    assert payments_reconcile(now=timezone.now() + timedelta(seconds=30)).get("pending", 0) == 0
    assert len(payments) == 260


def test_runs_never_overlap(db, daraja):
    assert cache.add(RECONCILE_LOCK, 1, timeout=60)  # a run is at work
    try:
        assert payments_reconcile() == {"skipped": 1}
    finally:
        cache.delete(RECONCILE_LOCK)
    assert "skipped" not in payments_reconcile()


@pytest.mark.parametrize("lost", [10, 1200])
def test_the_sweeper_queues_every_lost_email_in_one_run_with_a_flat_query_cost(
    db, lost, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    user = UserFactory()
    EmailNotification.objects.bulk_create(
        EmailNotification(
            recipient=user.email, notification_type="event_created", subject="x", message="x"
        )
        for _ in range(lost)
    )  # queued, but their tasks never reached the broker (queued_at empty)
    with (
        django_capture_on_commit_callbacks(execute=False) as tasks,
        django_assert_max_num_queries(6),
    ):
        assert notification_sweep()["queued"] == lost  # not at most 500 a minute
    assert len(tasks) == -(-lost // 25)  # in tasks of NOTIFICATION_BATCH_SIZE ids
    # Their tasks are now in the broker: the next run leaves them alone.
    with django_capture_on_commit_callbacks(execute=False):
        assert notification_sweep()["queued"] == 0


def test_a_reminder_for_a_big_event_does_not_carry_the_whole_roster(db):
    start = timezone.localtime() + timedelta(days=1)
    start = start.replace(hour=12, minute=0)
    event = EventFactory(starts_at=start, ends_at=start + timedelta(hours=8))
    crew = [EventCrewFactory(event=event, user=UserFactory()) for _ in range(120)]
    for assignment in crew:
        crew_confirm(assignment=assignment)
    reminded = crew_send_reminders(now=timezone.localtime().replace(hour=10))
    assert reminded == 120
    reminders = EmailNotification.objects.filter(notification_type="crew_reminder")
    assert reminders.count() == 120
    sizes = [len(r.html_message) for r in reminders]
    assert max(sizes) < 8000  # flat: not 120 names in each of 120 emails
    one = reminders.filter(user=crew[0].user).get()
    assert crew[1].user.get_full_name() not in one.message
    assert "/crew/assignments/" in one.message  # the roster is one tap away
    assert EventCrew.objects.filter(reminder_sent=True).count() == 120
