"""Duplicate callback storm, on PostgreSQL, over real HTTP, from concurrent threads."""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial

import pytest
from django.conf import settings

from attendance.models import LedgerEntry, MpesaCallback, MpesaPayment, Profile
from attendance.services.ledger import ledger_balance_from_entries
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import failure_callback, post_body, success_callback

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_duplicate_storm_credits_each_payment_exactly_once(live_server):
    members = UserFactory.create_batch(20)
    payments = [
        PaymentFactory(user=members[n % 20], phone_number=f"2547120{n:05d}", amount=100 + n)
        for n in range(100)
    ]
    bodies = []
    for n, payment in enumerate(payments):
        success = success_callback(
            payment.checkout_request_id,
            amount=payment.amount,
            receipt=f"RCP{n:07d}",
            phone=int(payment.phone_number),
        )
        bodies += [success] * 9
        # One stray, reordered failure per payment: it must not undo the success.
        bodies.append(failure_callback(payment.checkout_request_id, 1037, "DS timeout"))
    random.Random(7).shuffle(bodies)
    url = f"{live_server.url}/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(partial(post_body, url), bodies))

    assert len(statuses) == 1000
    assert not [s for s in statuses if s >= 500]
    assert set(statuses) == {200}
    assert MpesaCallback.objects.count() == 1000
    # A failure processed before its success is overtaken by the success (the money moved).
    assert MpesaPayment.objects.filter(status="completed").count() == 100
    assert LedgerEntry.objects.filter(kind="payment").count() == 100
    assert MpesaCallback.objects.filter(status="processed").count() >= 100
    assert not MpesaCallback.objects.filter(status__in=["error", "received"]).exists()
    for profile in Profile.objects.filter(user__in=members).select_related("user"):
        assert profile.balance == ledger_balance_from_entries(profile.user)
    total = sum((p.amount for p in payments), Decimal(0))
    assert sum(p.balance for p in Profile.objects.filter(user__in=members)) == -total


def test_two_late_callbacks_racing_for_one_timed_out_push_match_it_once():
    """Two successes with unknown checkouts fit the same timed-out payment: one takes it."""
    import threading

    from django.db import connection
    from django.utils import timezone

    from attendance.services.payments import callback_process

    payment = PaymentFactory(
        status="failed", result_code="push_unanswered", checkout_request_id=None, amount=250
    )
    paid_at = int(timezone.localtime().strftime("%Y%m%d%H%M%S"))
    # Stored, not processed yet: the threads below process them side by side.
    callback_ids = [
        MpesaCallback.objects.create(
            raw_body=success_callback(f"ws_CO_LATE{n}", amount=250, paid_at=paid_at),
            checkout_request_id=f"ws_CO_LATE{n}",
        ).pk
        for n in range(2)
    ]
    start, outcomes = threading.Barrier(2), []

    def process(callback_id):
        try:
            start.wait()
            outcomes.append(callback_process(callback_id=callback_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=process, args=(pk,)) for pk in callback_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The loser matches nothing now; it is looked at again (waiting), then left unmatched.
    assert sorted(outcomes) == ["processed", "waiting"]
    payment.refresh_from_db()
    assert payment.status == "completed" and payment.needs_review
    assert payment.checkout_request_id in {"ws_CO_LATE0", "ws_CO_LATE1"}
    assert not LedgerEntry.objects.filter(kind="payment").exists()
