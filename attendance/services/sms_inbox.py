"""What Africa's Talking sends us: delivery reports and replies, stored raw, then applied.

Every body that came with the right token is committed first (SmsCallback) and processed
after, by a task that is safe to repeat; the sweeper picks up what was left. Reports may come
twice or out of order: a message never moves back from a final state, nor to an earlier step.
A reply is matched by the sender's number *and* the invitation's code, so a text from another
phone changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attendance.models import EventCrew, MessageType, Profile, SmsCallback, SmsMessage
from attendance.phones import mask_phone, normalise_phone
from attendance.services.crew import CrewError, crew_confirm, crew_decline
from attendance.services.payments.inbox import body_as_text
from attendance.services.queueing import queue_after_commit
from attendance.services.sms import sms_block_member, sms_create, sms_fall_back
from attendance.sms.callbacks import (
    IncomingSms,
    MalformedSms,
    parse_delivery_report,
    parse_incoming,
    parse_reply,
)

logger = logging.getLogger(__name__)
C = SmsCallback.Status
MAX_ATTEMPTS = 5
# Wrong invitation codes from one member's number in an hour before we stop trying codes
# (and stop answering): 9,000 codes cannot be walked through at this pace.
WRONG_CODE_LIMIT = 5
WRONG_CODE_WINDOW_SECONDS = 3600
WRONG_CODE_PREFIX = "Wrong code"
# How far along a message is; a report for an earlier step than we know is stale.
_STEP = {"sent": 1, "submitted": 2, "buffered": 3, "absentsubscriber": 3}
_FINAL_STEP = 9


def _step(status: str) -> int:
    lowered = status.lower()
    if lowered in {"success", "failed", "rejected", "expired"}:
        return _FINAL_STEP
    return _STEP.get(lowered, 1)


def sms_callback_receive(
    *, kind: str, body: bytes, remote_addr: str | None, oversized: bool = False
) -> tuple[int, int]:
    """Store a body raw and commit it, then queue its processing. Returns (row id, status):
    200, or 400/413 for a body that is not a report / message (kept, never processed)."""
    raw, exact = body_as_text(body[: settings.SMS_CALLBACK_MAX_BYTES])
    row = SmsCallback(kind=kind, raw_body=raw, raw_bytes=exact, remote_addr=remote_addr)
    status = 200
    if oversized:
        row.status, status = C.MALFORMED, 413
        row.detail = f"Body larger than {settings.SMS_CALLBACK_MAX_BYTES} bytes (truncated)."
    else:
        try:
            if kind == SmsCallback.Kind.REPORT:
                report = parse_delivery_report(body)
                row.provider_id, row.sender = report.message_id, report.phone
                row.text = report.status
            else:
                incoming = parse_incoming(body)
                row.provider_id, row.sender = incoming.message_id, incoming.sender
                row.text = incoming.text
        except MalformedSms as error:
            row.status, row.detail, status = C.MALFORMED, str(error), 400
    with transaction.atomic():
        row.save()
        if row.status == C.RECEIVED:
            queue_after_commit(sms_callback_process_task, row.pk)
    return row.pk, status


@shared_task(name="attendance.tasks.sms_callback_process_task", ignore_result=True)
def sms_callback_process_task(callback_id: int) -> str:
    return sms_callback_process(callback_id=callback_id)


def sms_callback_process(*, callback_id: int) -> str:
    """Apply one stored report or reply; safe to repeat. Returns the row's status after."""
    with transaction.atomic():
        row = SmsCallback.objects.select_for_update().get(pk=callback_id)
        if row.status not in (C.RECEIVED, C.ERROR):
            return row.status
        row.attempts += 1
        try:
            with transaction.atomic():
                if row.kind == SmsCallback.Kind.REPORT:
                    row.status = _apply_report(row)
                else:
                    row.status = _apply_incoming(row)
        except Exception as error:  # a bug or the database: keep the row, retry, then stop
            logger.exception("SMS callback %s could not be processed", row.pk)
            row.status = C.ERROR if row.attempts < MAX_ATTEMPTS else C.UNMATCHED
            row.detail = f"{type(error).__name__}: {error}"[:500]
            if row.status == C.ERROR:
                queue_after_commit(sms_callback_process_task, row.pk, countdown=2**row.attempts)
        else:
            row.processed_at = timezone.now()
        row.save()
    return row.status


def _apply_report(row: SmsCallback) -> str:
    report = parse_delivery_report(row.raw_body.encode())
    message = (
        SmsMessage.objects.select_for_update().filter(provider_message_id=report.message_id).first()
    )
    if message is None:
        if row.attempts < MAX_ATTEMPTS:
            # The report can overtake our saving of AT's answer: look again shortly.
            raise LookupError(f"No SMS with messageId {report.message_id} (yet).")
        row.detail = "Names no message of ours: kept."
        return C.UNMATCHED
    row.message = message
    known = _step(message.delivery_status) if message.delivery_status else 0
    new = _step(report.status)
    if message.delivery_status.lower() == report.status.lower():
        return C.DUPLICATE
    if known == _FINAL_STEP or new < known:
        row.detail = f"Already {message.delivery_status}: {report.status} ignored."
        return C.STALE
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
    return C.PROCESSED


def _apply_incoming(row: SmsCallback) -> str:
    incoming = parse_incoming(row.raw_body.encode())
    # Every stored copy of this message, locked in one order: two deliveries of one reply
    # processed at once are taken one after the other, and the second sees the first done.
    copies = SmsCallback.objects.select_for_update().filter(
        kind=SmsCallback.Kind.INCOMING, provider_id=incoming.message_id
    )
    if any(c.status == C.PROCESSED for c in copies.order_by("pk") if c.pk != row.pk):
        return C.DUPLICATE
    try:
        phone = normalise_phone(incoming.sender)
    except ValidationError:
        row.detail = "Not a Kenyan mobile number: kept for staff."
        return C.UNMATCHED
    profile = Profile.objects.select_related("user").filter(phone_number=phone).first()
    if profile is None:
        row.detail = "From a number that is no member's: kept for staff."
        return C.UNMATCHED
    row.user = profile.user
    reply = parse_reply(incoming.text)
    if reply is None:
        row.detail = "Not a YES/NO answer: kept for staff."
        return C.UNMATCHED
    if reply.code is None:
        assignment = _only_open_invitation(incoming, profile, row)
        if assignment is None:
            return C.PROCESSED if row.detail.startswith("Answered") else C.UNMATCHED
    else:
        wrong = _recent_wrong_codes(profile)
        if wrong >= WRONG_CODE_LIMIT:
            # Someone may be guessing codes with this number (the callback token is all it
            # takes to forge a sender): nothing is decided and nobody is texted until the
            # hour has passed; staff see the rows.
            row.detail = f"{WRONG_CODE_PREFIX} limit reached: code {reply.code} not tried."
            return C.UNMATCHED
        assignment = (
            EventCrew.objects.select_related("event", "role", "user")
            .filter(user=profile.user, reply_code=reply.code, invitation_sent=True)
            .order_by("-invitation_sent_at")
            .first()
        )
        if assignment is None:
            row.detail = (
                f"{WRONG_CODE_PREFIX}: no invitation with code {reply.code} for this number."
            )
            if wrong + 1 < WRONG_CODE_LIMIT:
                _answer(
                    incoming, profile, None, f"no invitation of yours has the code {reply.code}."
                )
            elif wrong + 1 == WRONG_CODE_LIMIT:
                _answer(
                    incoming,
                    profile,
                    None,
                    "too many wrong codes: answer with the link in your invitation for now.",
                )
            return C.UNMATCHED
    row.crew_assignment = assignment
    event = assignment.event
    try:
        if reply.accept:
            crew_confirm(assignment=assignment)
            when = timezone.localtime(assignment.expected_call_time)
            answer = f"confirmed, {event.name}, call {when:%a} {when.day} {when:%b %H:%M}."
        else:
            crew_decline(assignment=assignment, reason=reply.reason, via="sms")
            answer = f"declined {event.name}. Thank you for telling us."
    except CrewError as refused:
        answer = f"{event.name}: {refused}"
        row.detail = f"Refused: {refused}"
    _answer(incoming, profile, assignment, answer)
    logger.info("SMS reply from %s applied to assignment %s", mask_phone(phone), assignment.pk)
    return C.PROCESSED


def _recent_wrong_codes(profile: Profile) -> int:
    since = timezone.now() - timedelta(seconds=WRONG_CODE_WINDOW_SECONDS)
    return SmsCallback.objects.filter(
        kind=SmsCallback.Kind.INCOMING,
        user=profile.user,
        received_at__gte=since,
        detail__startswith=WRONG_CODE_PREFIX,
    ).count()


def _only_open_invitation(
    incoming: IncomingSms, profile: Profile, row: SmsCallback
) -> EventCrew | None:
    """A bare YES/NO: the member's one invitation waiting for an answer, or None after
    texting them what to send (each open invitation with its code, or that none waits)."""
    waiting = list(
        EventCrew.objects.select_related("event", "role", "user")
        .filter(
            user=profile.user,
            status=EventCrew.Status.INVITED,
            invitation_sent=True,
            event__starts_at__gt=timezone.now(),
        )
        .order_by("event__starts_at")[:4]
    )
    if len(waiting) == 1:
        return waiting[0]
    if not waiting:
        answer = "no invitation is waiting for your answer."
    else:
        choices = "; ".join(
            f"{a.event.name[:18]} {timezone.localtime(a.event.starts_at):%a %-d %b} {a.reply_code}"
            for a in waiting[:3]
        )
        answer = f"which one? Reply YES or NO with its code: {choices}"
    _answer(incoming, profile, None, answer)
    row.detail = f"Answered: a bare reply with {len(waiting)} open invitation(s)."
    return None


def _answer(
    incoming: IncomingSms, profile: Profile, assignment: EventCrew | None, answer: str
) -> None:
    # By SMS whatever their channel: they texted us.
    if profile.sms_blocked_at is not None or not settings.SMS_ENABLED:
        return
    sms_create(
        user=profile.user,
        phone_number=profile.phone_number,
        notification_type=MessageType.CREW_REPLY,
        context={"answer": answer},
        event=assignment.event if assignment else None,
        crew_assignment=assignment,
    )


def sms_callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The sweeper's part: callbacks whose processing was lost or failed, oldest first."""
    now = now or timezone.now()
    ids = list(
        SmsCallback.objects.filter(
            status__in=[C.RECEIVED, C.ERROR], received_at__lte=now - timedelta(seconds=5)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:1000]
    )
    for callback_id in ids:
        sms_callback_process(callback_id=callback_id)
    return len(ids)
