import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from attendance.models import LedgerEntry, Profile
from attendance.services.ledger import LedgerError, ledger_balance_from_entries, ledger_post
from tests.support.factories import EventFactory, UserFactory


def test_a_new_user_gets_a_profile_with_zero_balance(db):
    user = UserFactory()
    assert Profile.objects.get(user=user).balance == Decimal("0.00")


def test_charges_raise_and_payments_lower_the_balance(crew, staff):
    ledger_post(
        user=crew, kind="charge", amount=Decimal("1500"), description="Lost mic", created_by=staff
    )
    entry = ledger_post(user=crew, kind="payment", amount=Decimal("400.50"), description="Cash")
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("1099.50")
    assert entry.amount == Decimal("-400.50")
    assert entry.balance_after == Decimal("1099.50")
    assert ledger_balance_from_entries(crew) == crew.profile.balance


def test_adjustments_are_signed(crew):
    ledger_post(user=crew, kind="adjustment", amount=Decimal("-250"), description="Overtime owed")
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("-250.00")


@pytest.mark.parametrize(
    ("kind", "amount"),
    [("charge", "0"), ("payment", "-5"), ("adjustment", "0"), ("charge", "1.005"), ("bogus", "5")],
)
def test_invalid_postings_are_refused_and_change_nothing(crew, kind, amount):
    with pytest.raises(LedgerError):
        ledger_post(user=crew, kind=kind, amount=Decimal(amount), description="x")
    crew.profile.refresh_from_db()
    assert crew.profile.balance == 0
    assert not LedgerEntry.objects.exists()


def test_one_source_credits_the_ledger_at_most_once_per_kind(crew):
    event = EventFactory()
    ledger_post(user=crew, kind="charge", amount=Decimal("100"), description="a", source=event)
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_post(user=crew, kind="charge", amount=Decimal("100"), description="a", source=event)
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("100.00")


def test_saving_a_profile_loaded_before_a_posting_keeps_the_posting(crew):
    # An admin edits the phone number while a payment is credited: the admin's profile was
    # loaded before the credit, and its save must not put the old balance back.
    stale = Profile.objects.get(user=crew)
    ledger_post(user=crew, kind="charge", amount=Decimal("500"), description="Broken stand")
    stale.phone_number = "254712000111"
    stale.save()
    crew.profile.refresh_from_db()
    assert crew.profile.phone_number == "254712000111"
    assert crew.profile.balance == Decimal("500.00") == ledger_balance_from_entries(crew)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_balance_equals_sum_of_entries_under_concurrent_postings():
    user = UserFactory()
    threads, errors = 8, []
    per_thread = 25
    barrier = threading.Barrier(threads)

    def post(n):
        try:
            barrier.wait()
            for i in range(per_thread):
                kind = "charge" if (n + i) % 3 else "payment"
                ledger_post(user=user, kind=kind, amount=Decimal("10.25"), description=f"t{n}-{i}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=post, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert errors == []
    profile = Profile.objects.get(user=user)
    entries = LedgerEntry.objects.filter(user=user)
    assert entries.count() == threads * per_thread
    assert profile.balance == ledger_balance_from_entries(user)
    charges = sum(1 for n in range(threads) for i in range(per_thread) if (n + i) % 3)
    payments = threads * per_thread - charges
    assert profile.balance == Decimal("10.25") * (charges - payments)
    # Every row's balance_after is a distinct step: no two postings read the same balance.
    running = sorted(entries.values_list("id", "amount", "balance_after"))
    total = Decimal(0)
    for _, amount, after in running:
        total += amount
        assert after == total


def test_several_entries_post_in_order_under_one_lock_and_a_repeat_posts_none(crew):
    from attendance.services.ledger import Posting, ledger_post_many

    first, second = EventFactory(), EventFactory()  # any rows can be an entry's source
    postings = [
        Posting(kind="deduction", amount=Decimal("300.00"), description="SHIF", source=first),
        Posting(kind="adjustment", amount=Decimal("-45.50"), description="back", source=second),
    ]
    entries = ledger_post_many(user=crew, postings=postings)
    assert [(e.amount, e.balance_after) for e in entries] == [
        (Decimal("300.00"), Decimal("300.00")),
        (Decimal("-45.50"), Decimal("254.50")),
    ]
    crew.profile.refresh_from_db()
    assert crew.profile.balance == ledger_balance_from_entries(crew) == Decimal("254.50")
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_post_many(user=crew, postings=postings)
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("254.50") and LedgerEntry.objects.count() == 2
    with pytest.raises(LedgerError):
        ledger_post_many(user=crew, postings=[Posting("deduction", Decimal(-1), "x", first)])
