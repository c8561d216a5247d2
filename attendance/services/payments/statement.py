"""Importing the M-Pesa statement, and matching each row to our books by receipt.

Rows are stored once each (a fingerprint of receipt, time, details and amounts): importing the
same statement twice, or two that overlap, adds nothing the second time. Rows are read,
matched and inserted in batches, so a year's statement (100,000 rows) takes flat memory.
Matching is by receipt only: a row of money in to an STK prompt or a Paybill payment, a payout
row to a payout, a reversal row to a completed reversal (by its own receipt, or the receipt of
the payment it reversed). The amount our books hold is kept when it differs. Rows that matched
nothing are matched again every minute by the beat (our books may have caught up: a Pull
row credited, a reversal completed), so the reconciliation page only reads.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import IO

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q

from attendance.models import (
    MpesaPayment,
    PaybillPayment,
    Payout,
    Reversal,
    StatementImport,
    StatementRow,
)
from attendance.mpesa.statement import (
    Statement,
    StatementLine,
    UnreadableStatement,
    read_statement,
    statement_rows,
)
from attendance.services.core.errors import ServiceError

from .paybill import paybill_seen

logger = logging.getLogger(__name__)
BATCH = 2000
K = StatementRow.Kind
M = StatementRow.Match


class StatementError(ServiceError):
    """A statement that cannot be imported, or a row that cannot be resolved as asked."""


@dataclass(frozen=True)
class Imported:
    statement: StatementImport
    already: bool  # the very same file was imported before


def statement_import(*, file: IO[bytes], name: str, by: User) -> Imported:
    """Import an uploaded statement (CSV or XLSX as the org portal exports it)."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    file.seek(0)
    sha256 = digest.hexdigest()
    earlier = StatementImport.objects.filter(sha256=sha256).first()
    statement = StatementImport.objects.create(file_name=name[:200], sha256=sha256, uploaded_by=by)
    info = Statement()
    try:
        lines = read_statement(statement_rows(file, name), info)
        for batch in _batches(lines):
            statement.rows_read += len(batch)
            statement.rows_new += _store(statement, batch)
            first, last = min(x.completed_at for x in batch), max(x.completed_at for x in batch)
            statement.first_at = min(filter(None, (statement.first_at, first)))
            statement.last_at = max(filter(None, (statement.last_at, last)))
    except UnreadableStatement as error:
        if not statement.rows_new:
            statement.delete()
        raise StatementError(f"{name}: {error}") from error
    statement.short_code = info.short_code[:20]
    statement.save()
    logger.info("Statement %s: %s rows, %s new", name, statement.rows_read, statement.rows_new)
    return Imported(statement, already=earlier is not None)


def _batches(lines: Iterable[StatementLine]) -> Iterator[list[StatementLine]]:
    iterator = iter(lines)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def _store(statement: StatementImport, batch: list[StatementLine]) -> int:
    """Insert the rows of a batch that are new; returns how many were."""
    by_print = {line.fingerprint: line for line in batch}
    known = set(
        StatementRow.objects.filter(fingerprint__in=by_print).values_list("fingerprint", flat=True)
    )
    rows = [
        StatementRow(
            statement=statement,
            fingerprint=fingerprint,
            receipt=line.receipt,
            completed_at=line.completed_at,
            details=line.details,
            status=line.status,
            paid_in=line.paid_in,
            withdrawn=line.withdrawn,
            balance=line.balance,
            reason_type=line.reason_type,
            other_party=line.other_party,
            linked_receipt=line.linked_receipt,
            account_number=line.account_number,
            kind=line.kind,
        )
        for fingerprint, line in by_print.items()
        if fingerprint not in known
    ]
    _match(rows)
    # ignore_conflicts: two people importing the same file at once still store each row once.
    StatementRow.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return len(rows)


def _match(rows: list[StatementRow]) -> list[StatementRow]:
    """Set what each row matches in our books (in memory). Returns the rows that changed."""
    receipts = {row.receipt for row in rows if row.kind in (K.PAID_IN, K.PAYOUT)}
    receipts |= {row.linked_receipt for row in rows if row.kind == K.REVERSAL}
    receipts.discard("")
    if not receipts and not any(row.kind == K.REVERSAL for row in rows):
        return []
    prompts = {
        receipt: (pk, paid or amount)
        for pk, receipt, paid, amount in MpesaPayment.objects.filter(
            receipt_number__in=receipts
        ).values_list("pk", "receipt_number", "paid_amount", "amount")
    }
    paybill = {
        receipt: (pk, amount)
        for pk, receipt, amount in PaybillPayment.objects.filter(receipt__in=receipts)
        .exclude(status=PaybillPayment.Status.STK)
        .values_list("pk", "receipt", "amount")
    }
    payouts = {
        receipt: (pk, Decimal(amount))
        for pk, receipt, amount in Payout.objects.filter(
            receipt_number__in=receipts, status=Payout.Status.COMPLETED
        ).values_list("pk", "receipt_number", "amount")
    }
    reversals = _reversals_of([row for row in rows if row.kind == K.REVERSAL])
    changed = []
    for row in rows:
        if row.kind == K.REVERSAL:
            found = (M.REVERSAL, reversals.get(row.receipt) or reversals.get(row.linked_receipt))
        elif row.kind == K.PAID_IN:
            found = (
                (M.STK, prompts.get(row.receipt))
                if row.receipt in prompts
                else (
                    M.PAYBILL,
                    paybill.get(row.receipt),
                )
            )
        elif row.kind == K.PAYOUT:
            found = (M.PAYOUT, payouts.get(row.receipt))
        else:
            continue
        kind, hit = found
        if hit is None:
            continue
        pk, amount = hit
        row.matched, row.matched_id = kind, pk
        row.books_amount = amount if amount != row.amount else None
        changed.append(row)
    return changed


def _reversals_of(rows: list[StatementRow]) -> dict[str, tuple[int, Decimal]]:
    """Completed reversals by their own receipt and by the receipt they reversed."""
    if not rows:
        return {}
    own = {row.receipt for row in rows}
    linked = {row.linked_receipt for row in rows if row.linked_receipt}
    found: dict[str, tuple[int, Decimal]] = {}
    for pk, receipt, original, amount in Reversal.objects.filter(
        Q(reversal_receipt__in=own) | Q(receipt__in=linked), status=Reversal.Status.COMPLETED
    ).values_list("pk", "reversal_receipt", "receipt", "amount"):
        if receipt:
            found[receipt] = (pk, amount)
        found[original] = (pk, amount)
    return found


def statement_rematch(limit: int = 2000) -> int:
    """Match again the rows that matched nothing, newest first (our books may have caught
    up). The beat's: served by the partial index on unmatched rows, so it costs what is
    unmatched, not the statement's size."""
    rows = StatementRow.objects.filter(matched="").exclude(kind__in=[K.CHARGE, K.OTHER])
    changed = _match(list(rows.order_by("-completed_at")[:limit]))
    StatementRow.objects.bulk_update(changed, ["matched", "matched_id", "books_amount"])
    return len(changed)


def statement_record_paybill(*, row: StatementRow, by: User) -> PaybillPayment:
    """A row of money in that our books never recorded (a confirmation lost beyond Pull's 48
    hours, say): record it as a Paybill payment, which credits the member its account number
    names or puts it in the unattributed queue. Once per receipt, like every Paybill payment."""
    if row.kind != K.PAID_IN:
        raise StatementError("Only money paid in can be recorded as a Paybill payment.")
    with transaction.atomic():
        row = StatementRow.objects.select_for_update().get(pk=row.pk)
        if row.matched:
            raise StatementError(f"{row.receipt} is in our books already.")
        payment = paybill_seen(
            receipt=row.receipt,
            amount=row.paid_in,
            paid_at=row.completed_at,
            bill_ref=row.account_number,
            source=PaybillPayment.Source.STATEMENT,
            payer_name=row.other_party,
            short_code=row.statement.short_code,
        )
        if payment.status == PaybillPayment.Status.STK and payment.stk_payment_id:
            row.matched, row.matched_id = M.STK, payment.stk_payment_id
        else:
            row.matched, row.matched_id = M.PAYBILL, payment.pk
        row.save(update_fields=["matched", "matched_id"])
    logger.info("Statement row %s recorded as Paybill payment %s by %s", row.pk, payment.pk, by)
    return payment


def unmatched_in(start: datetime, end: datetime) -> Q:
    """The rows of a period the reconciliation lists as "in the statement only"."""
    return Q(completed_at__gte=start, completed_at__lt=end, matched="") & ~Q(
        kind__in=[K.CHARGE, K.OTHER]
    )
