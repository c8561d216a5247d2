"""What Africa's Talking sends us: delivery reports and incoming texts (the inbox adapter).

Every body that came with the right token is committed first (SmsCallback) and processed by
the inbox machine (`services/core/inbox.py`). Reports may come twice or out of order: a
message never moves back from a final state, nor to an earlier step. What an incoming text
means is for the domain that reads it (crew answers: `crew/replies.py`), which registers its
reader here, so messaging never imports the domains that use it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

from attendance.models import SmsCallback, SmsMessage
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register
from attendance.sms.callbacks import MalformedSms, parse_delivery_report, parse_incoming

from .sms import sms_block_member, sms_fall_back

C = SmsCallback.Status
K = SmsCallback.Kind
# How far along a message is; a report for an earlier step than we know is stale.
_STEP = {"sent": 1, "submitted": 2, "buffered": 3, "absentsubscriber": 3}
_FINAL_STEP = 9
_incoming: list[Callable[[SmsCallback], Outcome]] = []  # the one reader, once registered


def _step(status: str) -> int:
    lowered = status.lower()
    if lowered in {"success", "failed", "rejected", "expired"}:
        return _FINAL_STEP
    return _STEP.get(lowered, 1)


def sms_on_incoming(reader: Callable[[SmsCallback], Outcome]) -> None:
    """Register what reads an incoming text (crew replies); called once, at import."""
    _incoming[:] = [reader]


@shared_task(name="attendance.tasks.sms_callback_process_task", ignore_result=True)
def sms_callback_process_task(callback_id: int) -> str:
    return sms_callbacks.process(callback_id)


class SmsCallbacks(Inbox):
    model = SmsCallback
    label = "SMS callback"
    max_bytes_setting = "SMS_CALLBACK_MAX_BYTES"
    max_attempts_setting = "SMS_CALLBACK_MAX_ATTEMPTS"
    task = sms_callback_process_task
    links = ("message", "user", "crew_assignment")
    # A report that overtook our saving of AT's answer: 2, 4, 8 and 16 s later.
    look_again_after = {n: timedelta(seconds=2**n) for n in range(1, 5)}

    def identify(self, row: SmsCallback, body: bytes) -> None:
        try:
            if row.kind == K.REPORT:
                report = parse_delivery_report(body)
                row.provider_id, row.sender, row.text = (
                    report.message_id,
                    report.phone,
                    report.status,
                )
            else:
                incoming = parse_incoming(body)
                row.provider_id, row.sender = incoming.message_id, incoming.sender
                row.text = incoming.text
        except MalformedSms as error:
            raise Unreadable(str(error)) from error

    def apply(self, row: SmsCallback) -> Outcome:
        if row.kind == K.REPORT:
            return _apply_report(row)
        if not _incoming:  # a failure, so the row is retried once the reader is there
            raise LookupError("No reader of incoming texts is registered.")
        return _incoming[0](row)


sms_callbacks = register(SmsCallbacks())


def sms_callback_receive(*, kind: str, body: bytes, remote_addr: str | None) -> Received:
    """Store a body raw and commit it, then queue its processing (see Inbox.receive)."""
    return sms_callbacks.receive(body=body, remote_addr=remote_addr, kind=kind)


def sms_callback_process(*, callback_id: int) -> str:
    """Apply one stored report or reply; safe to repeat. Returns the row's status after."""
    return sms_callbacks.process(callback_id)


def _apply_report(row: SmsCallback) -> Outcome:
    report = parse_delivery_report(row.body_bytes)
    message = (
        SmsMessage.objects.select_for_update().filter(provider_message_id=report.message_id).first()
    )
    if message is None:
        # The report can overtake our saving of AT's answer: looked at again shortly.
        row.detail = f"Names no message of ours (messageId {report.message_id})."
        return Outcome.NOT_YET
    row.message = message
    known = _step(message.delivery_status) if message.delivery_status else 0
    new = _step(report.status)
    if message.delivery_status.lower() == report.status.lower():
        return Outcome.DUPLICATE
    if known == _FINAL_STEP or new < known:
        row.detail = f"Already {message.delivery_status}: {report.status} ignored."
        return Outcome.STALE
    message.delivery_status = report.status
    message.failure_reason = report.failure_reason
    message.reported_at = timezone.now()
    if report.delivered:
        message.delivered_at = message.reported_at
    message.save(update_fields=["delivery_status", "failure_reason", "reported_at", "delivered_at"])
    if report.final and not report.delivered:
        if report.blocks_number and message.user_id:
            sms_block_member(user_id=message.user_id, reason=report.failure_reason)
        if sms_fall_back(message):
            row.detail = "Not delivered: the email sent instead."
    return Outcome.PROCESSED


def sms_callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The sweeper's part: callbacks whose processing was lost or failed, oldest first."""
    return sms_callbacks.sweep(now=now)
