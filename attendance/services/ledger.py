from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Model, Sum

from attendance.models import LedgerEntry, Profile
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.errors import ServiceError

_SIGN: dict[str, Decimal] = {
    LedgerEntry.Kind.CHARGE: Decimal(1),
    LedgerEntry.Kind.PAYMENT: Decimal(-1),
    LedgerEntry.Kind.EARNING: Decimal(-1),
    LedgerEntry.Kind.DEDUCTION: Decimal(1),
    LedgerEntry.Kind.PAYOUT: Decimal(1),
}
CENT = Decimal("0.01")


class LedgerError(ServiceError):
    """An entry the ledger refuses (an amount it cannot take); the message says why."""


def ledger_delta(*, kind: str, amount: Decimal | int | str) -> Decimal:
    """How an entry of `kind` and `amount` moves the balance; LedgerError if it cannot."""
    amount = Decimal(amount)
    if amount != amount.quantize(CENT):
        raise LedgerError("Amounts are in shillings and cents.")
    if kind in _SIGN:
        if amount <= 0:
            raise LedgerError(
                "A charge, payment, earning, deduction or payout must be a positive amount."
            )
        return amount * _SIGN[kind]
    if kind == LedgerEntry.Kind.ADJUSTMENT:
        if amount == 0:
            raise LedgerError("An adjustment cannot be zero.")
        return amount
    raise LedgerError(f"Unknown ledger kind {kind!r}.")


def ledger_post(
    *,
    user: User,
    kind: str,
    amount: Decimal | int | str,
    description: str,
    created_by: User | None = None,
    source: Model | None = None,
    receipt: str = "",
) -> LedgerEntry:
    """Change a member's balance and record why, atomically.

    `amount` is positive for charges and payments (a charge raises what the member owes, a
    payment lowers it) and signed for adjustments. The profile row is locked first, so that
    concurrent postings serialise and `Profile.balance` always equals the sum of the member's
    entries. A `source` may produce at most one entry of each kind: a second attempt raises
    IntegrityError from the database, which callers treat as "already posted"; so does a
    payment whose M-Pesa `receipt` was already credited (`receipt_credited` says whether).

    Raises LedgerError for a zero, negative (charge/payment) or sub-cent amount.
    """
    delta = ledger_delta(kind=kind, amount=amount)
    with transaction.atomic():
        # The lock is what keeps balance == sum(entries) under concurrent postings: the
        # second poster waits here and then reads the first one's balance.
        profile = Profile.objects.select_for_update().get(user=user)
        profile.balance += delta
        profile.save(update_fields=["balance", "updated_at"])
        return LedgerEntry.objects.create(
            user=user,
            kind=kind,
            amount=delta,
            balance_after=profile.balance,
            description=description[:255],
            created_by=created_by,
            source_type=ContentType.objects.get_for_model(source) if source is not None else None,
            source_id=source.pk if source is not None else None,
            receipt=receipt,
        )


@dataclass(frozen=True)
class Posting:
    """One entry of `ledger_post_many`: the same fields as `ledger_post`'s."""

    kind: str
    amount: Decimal
    description: str
    source: Model


def ledger_post_many(
    *, user: User, postings: list[Posting], created_by: User | None = None
) -> list[LedgerEntry]:
    """Several entries for one member at once, in order, under one lock of their balance:
    what `ledger_post` does for each, in five queries whatever their number (a pay run's
    deductions). The one-entry-per-source rule holds as there: a second attempt raises
    IntegrityError and posts none of them."""
    if not postings:
        return []
    deltas = [ledger_delta(kind=p.kind, amount=p.amount) for p in postings]
    # No savepoint of its own: a refused posting fails the caller's transaction, which is
    # what a pay run's member wants (two fewer round trips each).
    with transaction.atomic(savepoint=False):
        profile = Profile.objects.select_for_update().get(user=user)
        entries = []
        for posting, delta in zip(postings, deltas, strict=True):
            profile.balance += delta
            entries.append(
                LedgerEntry(
                    user=user,
                    kind=posting.kind,
                    amount=delta,
                    balance_after=profile.balance,
                    description=posting.description[:255],
                    created_by=created_by,
                    source_type=ContentType.objects.get_for_model(posting.source),
                    source_id=posting.source.pk,
                )
            )
        profile.save(update_fields=["balance", "updated_at"])
        return LedgerEntry.objects.bulk_create(entries)


def ledger_credit_payment(
    *,
    user: User,
    amount: Decimal | int | str,
    description: str,
    receipt: str,
    source: Model,
    created_by: User | None = None,
) -> LedgerEntry | None:
    """Credit money M-Pesa received, once per receipt: None when this receipt was credited
    already (the same money reached us another way: a prompt's callback, a Paybill
    confirmation, a Pull row), which the database decides, concurrency included."""
    try:
        with transaction.atomic():
            return ledger_post(
                user=user,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=amount,
                description=description,
                created_by=created_by,
                source=source,
                receipt=receipt,
            )
    except IntegrityError:
        if not receipt_credited(receipt):
            raise  # another constraint: not a receipt credited twice
        return None


def receipt_credited(receipt: str) -> bool:
    """Has money with this M-Pesa receipt been credited to anyone already?"""
    return (
        bool(receipt)
        and LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT, receipt=receipt).exists()
    )


def ledger_balance_from_entries(user: User) -> Decimal:
    """The balance recomputed from the entries: what `Profile.balance` must equal."""
    total = LedgerEntry.objects.filter(user=user).aggregate(total=Sum("amount"))["total"]
    return total or Decimal("0.00")


def ledger_add_by_hand(
    *,
    user: User,
    kind: str,
    amount: Decimal | int | str,
    description: str,
    by: User,
    source: Model | None = None,
) -> LedgerEntry:
    """A charge, payment or adjustment staff enter themselves: posted and audited together."""
    with transaction.atomic():
        entry = ledger_post(
            user=user,
            kind=kind,
            amount=amount,
            description=description,
            created_by=by,
            source=source,
        )
        audit_record(
            AuditEvent.LEDGER_ENTRY_ADDED,
            actor=by,
            target=entry,
            before={"balance": entry.balance_after - entry.amount},
            after={"balance": entry.balance_after},
            details={"member": user.get_username(), "kind": kind, "description": description},
        )
    return entry
