"""Paybill notices: the inbox adapter for C2B validations, confirmations and Pull rows.

Every body is stored raw and committed first (`services/core/inbox.py`). A confirmation and a
Pull row are processed the same way (`paybill.paybill_record`), so whichever arrives first
settles the payment and the other is a duplicate. A validation is answered at once, inside
Daraja's few seconds, and moves no money: only a confirmation (or Pull, or the statement)
says the payment happened.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from attendance.account_codes import account_code_normalise
from attendance.models import PaybillNotice, PaybillPayment, Profile
from attendance.models.inbox import INBOX_OPEN
from attendance.mpesa.paybill import (
    MalformedPaybill,
    PaybillTransaction,
    parse_paybill_body,
    parse_pull_row,
)
from attendance.services.core.batching import Burst, Kick, insert_committed
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, clip, register

from .paybill import paybill_record

logger = logging.getLogger(__name__)
K = PaybillNotice.Kind
ACCEPT = {"ResultCode": "0", "ResultDesc": "Accepted"}


@shared_task(name="attendance.tasks.paybill_notice_process_task", ignore_result=True)
def paybill_notice_process_task(notice_id: int) -> str:
    """One notice again after a failure or a wait (first looks go by the batch task)."""
    return paybill_notices.process(notice_id)


@shared_task(
    name="attendance.tasks.paybill_notices_process_received_task",
    acks_late=True,
    ignore_result=True,
)
def paybill_notices_process_received_task() -> int:
    return paybill_burst.process_received()


_NOTICE_INSERT = (
    f"INSERT INTO {PaybillNotice._meta.db_table} "  # noqa: S608 - a constant table name
    "(received_at, raw_body, raw_bytes, remote_addr, status, detail, attempts, kind, receipt, "
    "bill_ref) VALUES (%s, %s, %s, %s, %s, '', 0, %s, %s, %s) RETURNING id"
)


def _transaction(kind: str, body: bytes) -> PaybillTransaction:
    if kind == K.PULL:
        return parse_pull_row(json.loads(body))
    return parse_paybill_body(body)


class PaybillNotices(Inbox):
    model = PaybillNotice
    label = "Paybill notice"
    max_bytes_setting = "MPESA_CALLBACK_MAX_BYTES"
    max_attempts_setting = "MPESA_CALLBACK_MAX_ATTEMPTS"
    task = paybill_notice_process_task
    links = ("payment",)
    # A payment waiting for the member's open prompt of the same amount: the prompt is
    # settled (or expired, MPESA_PENDING_TIMEOUT_SECONDS) well within these looks.
    look_again_after = {
        1: timedelta(minutes=2),
        2: timedelta(minutes=10),
        3: timedelta(minutes=20),
    }

    def identify(self, row: PaybillNotice, body: bytes) -> None:
        try:
            txn = _transaction(row.kind, body)
        except (MalformedPaybill, ValueError, RecursionError) as error:
            raise Unreadable(str(error)) from error
        row.receipt, row.bill_ref = txn.receipt, txn.bill_ref
        if row.kind == K.VALIDATION:
            row.status = PaybillNotice.Status.NOTED  # answered at once; moves no money

    def store(self, row: PaybillNotice) -> int:
        """A confirmation storm is a payment storm: one raw INSERT (core/batching.py)."""
        if row.status != PaybillNotice.Status.RECEIVED:
            return super().store(row)
        params = [
            timezone.now(),
            row.raw_body,
            row.raw_bytes,
            row.remote_addr,
            row.status,
            row.kind,
            row.receipt,
            row.bill_ref,
        ]
        return insert_committed(_NOTICE_INSERT, params)

    def queue(self, row_id: int) -> None:
        paybill_burst.queue(row_id)

    def apply(self, row: PaybillNotice) -> Outcome:
        txn = _transaction(row.kind, row.body_bytes)
        source = (
            PaybillPayment.Source.PULL if row.kind == K.PULL else PaybillPayment.Source.CONFIRMATION
        )
        last_look = row.attempts not in self.look_again_after
        payment, changed = paybill_record(txn, source=source, last_look=last_look)
        row.payment = payment
        row.detail = f"{payment.get_status_display()}. {payment.detail}".strip()
        if payment.status == PaybillPayment.Status.WAITING_STK:
            return Outcome.NOT_YET
        return Outcome.PROCESSED if changed else Outcome.DUPLICATE


paybill_notices = register(PaybillNotices())
paybill_burst = Burst(
    model=PaybillNotice,
    kick=Kick("mpesa:paybill:kick"),
    process=paybill_notices.process_guarded,
    task=lambda: paybill_notices_process_received_task,
    label="Paybill notice",
)


def paybill_confirmation_receive(*, body: bytes, remote_addr: str | None) -> Received:
    """Store a confirmation raw and commit it, then queue its processing."""
    return paybill_notices.receive(body=body, remote_addr=remote_addr, kind=K.CONFIRMATION)


def paybill_validate(*, body: bytes, remote_addr: str | None) -> dict:
    """Store a validation request, then answer it: accept, or reject an account number that
    names no member when MPESA_C2B_REJECT_UNKNOWN is on (C2B00012: the payer's SMS says the
    account is invalid). Only a confirmation credits anyone."""
    answer, why = _validation_answer(body)
    # The answer goes in with the body: one INSERT on the path M-Pesa waits on.
    paybill_notices.receive(body=body, remote_addr=remote_addr, kind=K.VALIDATION, detail=clip(why))
    return answer


def _validation_answer(body: bytes) -> tuple[dict, str]:
    reject = settings.MPESA_C2B_REJECT_UNKNOWN
    try:
        txn = parse_paybill_body(body)
    except MalformedPaybill as error:
        if reject:
            return {"ResultCode": "C2B00016", "ResultDesc": "Rejected"}, f"Rejected: {error}"
        return ACCEPT, f"Accepted unread: {error}"
    code = account_code_normalise(txn.bill_ref)
    if code and Profile.objects.filter(account_code=code).exists():
        return ACCEPT, f"Accepted: account {code}."
    if reject:
        return (
            {"ResultCode": "C2B00012", "ResultDesc": "Rejected"},
            f"Rejected: account number {txn.bill_ref!r} names no member.",
        )
    return ACCEPT, f"Accepted for staff: account number {txn.bill_ref!r} names no member."


def paybill_pull_store(rows: list[dict]) -> list[Received]:
    """Store Pull rows as notices, one per receipt we have no payment for yet, and queue
    them. Known receipts are skipped: Pull returns the same rows hour after hour."""
    receipts = {str(row.get("transactionId", "")) for row in rows if isinstance(row, dict)}
    known = set(
        PaybillPayment.objects.filter(receipt__in=receipts).values_list("receipt", flat=True)
    )
    pending = set(
        PaybillNotice.objects.filter(
            receipt__in=receipts - known, kind=K.PULL, status__in=INBOX_OPEN
        ).values_list("receipt", flat=True)
    )
    stored = []
    for row in rows:
        receipt = str(row.get("transactionId", "")) if isinstance(row, dict) else ""
        if receipt and (receipt in known or receipt in pending):
            continue
        body = json.dumps(row, separators=(",", ":")).encode()
        stored.append(paybill_notices.receive(body=body, remote_addr=None, kind=K.PULL))
        pending.add(receipt)
    return stored


def paybill_notices_process_pending() -> int:
    """The sweeper's part: notices whose processing was lost, failed or is due a look."""
    return paybill_notices.sweep()
