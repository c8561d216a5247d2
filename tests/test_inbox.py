"""The one inbox machine (issue 27): what every inbox now shares, proven on each of them.

Before, the three inboxes differed: the SMS inbox called a row that failed five times
"unmatched" (an operator filtering for unmatched saw rows that were in fact failing), its
attempts were a constant, and only the STK inbox skipped a row another worker held.
"""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.utils import timezone

from attendance.models import (
    Alert,
    MpesaCallback,
    PaybillNotice,
    PayoutResult,
    ReversalResult,
    SmsCallback,
    WhatsAppWebhook,
)
from attendance.models.inbox import InboxStatus as S
from attendance.services.core.inbox import INBOXES, Outcome, inbox_for
from tests.support.auth import log_in_staff
from tests.support.factories import (
    MpesaCallbackFactory,
    PaybillNoticeFactory,
    PayoutResultFactory,
    ReversalResultFactory,
    SmsCallbackFactory,
    UserFactory,
    WhatsAppWebhookFactory,
)

# Each inbox, with a factory of its rows and the setting that bounds its attempts.
INBOX_ROWS = {
    "stk": (MpesaCallback, MpesaCallbackFactory, "MPESA_CALLBACK_MAX_ATTEMPTS"),
    "payouts": (PayoutResult, PayoutResultFactory, "PAYOUT_RESULT_MAX_ATTEMPTS"),
    "sms": (SmsCallback, SmsCallbackFactory, "SMS_CALLBACK_MAX_ATTEMPTS"),
    "paybill": (PaybillNotice, PaybillNoticeFactory, "MPESA_CALLBACK_MAX_ATTEMPTS"),
    "reversals": (ReversalResult, ReversalResultFactory, "PAYOUT_RESULT_MAX_ATTEMPTS"),
    "whatsapp": (WhatsAppWebhook, WhatsAppWebhookFactory, "WHATSAPP_WEBHOOK_MAX_ATTEMPTS"),
}


def _row(factory, fields=None):
    return factory(raw_body='{"x": 1}', **(fields or {}))


@pytest.fixture(params=sorted(INBOX_ROWS))
def kind(request):
    return request.param


def test_every_inbox_model_is_registered_with_the_machine():
    assert set(INBOXES) == {
        MpesaCallback,
        PayoutResult,
        SmsCallback,
        PaybillNotice,
        ReversalResult,
        WhatsAppWebhook,
    }


@pytest.mark.django_db
def test_a_failing_row_is_retried_as_many_times_as_its_setting_says_then_quarantined(
    kind, monkeypatch, settings
):
    model, factory, setting = INBOX_ROWS[kind]
    setattr(settings, setting, 3)
    inbox = inbox_for(model)

    def broken(row):
        raise RuntimeError("a bug in the rules")

    monkeypatch.setattr(inbox, "apply", broken)
    row = _row(factory)
    statuses = []
    for look in range(4):
        # Each retry once its backoff has passed: the sweeper takes it, as in production.
        later = timezone.now() + timedelta(hours=look + 1)
        inbox.sweep(now=later)
        row.refresh_from_db()
        statuses.append((row.status, row.attempts))
    # Quarantined, never "unmatched" (the SMS inbox's label for this before).
    assert statuses == [(S.ERROR, 1), (S.ERROR, 2), (S.QUARANTINED, 3), (S.QUARANTINED, 3)]
    assert "RuntimeError: a bug in the rules" in row.detail


@pytest.mark.django_db
def test_what_a_failing_row_wrote_is_undone_and_the_row_still_records_the_failure(
    kind, monkeypatch
):
    model, factory, _ = INBOX_ROWS[kind]
    inbox = inbox_for(model)

    def writes_then_fails(row):
        Alert.objects.create(kind="half-done", summary="written before the failure")
        row.detail = "changed in memory"
        raise ValueError("the body broke a rule")

    monkeypatch.setattr(inbox, "apply", writes_then_fails)
    row = _row(factory)
    with transaction.atomic():  # as a task or a request would be, inside a transaction
        assert inbox.process(row.pk) == S.ERROR
    assert not Alert.objects.filter(kind="half-done").exists()  # the savepoint undid it
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.ERROR, 1)
    assert row.detail == "ValueError: the body broke a rule"


@pytest.mark.django_db
def test_not_yet_waits_on_the_inbox_schedule_then_is_unmatched(kind, monkeypatch):
    model, factory, _ = INBOX_ROWS[kind]
    inbox = inbox_for(model)
    monkeypatch.setattr(inbox, "apply", lambda row: Outcome.NOT_YET)
    row = _row(factory)
    looks = len(inbox.look_again_after)
    for _ in range(looks):
        assert inbox.process(row.pk) == S.WAITING
    assert inbox.process(row.pk) == S.UNMATCHED
    assert inbox.process(row.pk) == S.UNMATCHED  # done: not looked at again by itself


# Row locks: PostgreSQL's (SQLite locks the whole database, so the skip cannot be shown).
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_holds_is_skipped_not_waited_for(kind, monkeypatch):
    """The claim is a row lock that others skip, in every inbox (two of three blocked)."""
    model, factory, _ = INBOX_ROWS[kind]
    inbox = inbox_for(model)
    monkeypatch.setattr(inbox, "apply", lambda row: Outcome.PROCESSED)
    row = _row(factory)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            model.objects.select_for_update().get(pk=row.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert inbox.process(row.pk) == "skipped"
    finally:
        release.set()
        holder.join()
    assert inbox.process(row.pk) == S.PROCESSED


@pytest.mark.django_db
def test_one_admin_pattern_filter_read_and_process_a_quarantined_row_again(
    kind, client, monkeypatch
):
    model, factory, _ = INBOX_ROWS[kind]
    inbox = inbox_for(model)
    row = _row(factory, {"status": S.QUARANTINED, "attempts": 5, "detail": "KeyError: x"})
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=[
                f"view_{model._meta.model_name}",
                "submit_payout",
                "assign_paybillpayment",
                "request_reversal",
            ]
        )
    )
    log_in_staff(client, staff)
    url = f"/admin/attendance/{model._meta.model_name}/"
    page = client.get(url, {"status__exact": "quarantined"}).content.decode()
    assert "Quarantined: failed repeatedly, a person must look" in page
    detail = client.get(f"{url}{row.pk}/change/").content.decode()
    assert "KeyError: x" in detail and "{&quot;x&quot;: 1}" in detail  # reason and raw body

    monkeypatch.setattr(inbox, "apply", lambda row: Outcome.PROCESSED)
    response = client.post(
        url, {"action": "process_again", "_selected_action": [row.pk]}, follow=True
    )
    assert "Processed again: 1 processed." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (S.PROCESSED, 1)
