"""What Meta posts to our WhatsApp webhook: statuses of our messages and messages from members.

Every POST whose signature is right is committed first (WhatsAppWebhook) and processed by the
inbox machine (`services/core/inbox.py`). One POST may carry many updates; each is applied on
its own terms:

- a status moves its message forward only (sent < delivered < read); a repeat is a
  duplicate, an earlier step is stale, and `failed` is final unless the message was delivered
  first. The message is found by its id or, when the status overtook our saving of the id,
  by our reference (`biz_opaque_callback_data`). A failure that means WhatsApp cannot reach
  the member sends the message by their next channel, once (whatsapp.whatsapp_fall_back).
- a member's message is kept once per WhatsApp message id (WhatsAppInbound), opens their
  24-hour window (by the message's own time, however late Meta delivers it), and is read by
  the one registered reader (crew answers, `crew/replies.py`), so messaging never imports
  the domains that use it. "STOP" is the exception read here: it opts the member out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import (
    MessageChannel,
    Profile,
    WhatsAppInbound,
    WhatsAppMessage,
    WhatsAppWebhook,
)
from attendance.phones import mask_phone, normalise_phone
from attendance.services.core.batching import Burst, Kick, insert_committed
from attendance.services.core.inbox import Inbox, Outcome, Received, Unreadable, register
from attendance.whatsapp.client import FALL_BACK, NOT_ON_WHATSAPP
from attendance.whatsapp.webhook import (
    RANK,
    InboundMessage,
    MalformedWebhook,
    StatusUpdate,
    parse_webhook,
)

from .whatsapp import REFERENCE, whatsapp_block_member, whatsapp_fall_back, whatsapp_reply_text

logger = logging.getLogger(__name__)
K = WhatsAppWebhook.Kind
D = WhatsAppMessage.Delivery
# What members send to stop our WhatsApp messages (compared in lower case, trimmed).
STOP_WORDS = {"stop", "stop all", "unsubscribe", "acha", "sitisha", "simamisha"}
_reader: list[Callable[[WhatsAppInbound, Profile], Outcome]] = []


def whatsapp_on_incoming(reader: Callable[[WhatsAppInbound, Profile], Outcome]) -> None:
    """Register what reads a member's WhatsApp message (crew answers); called once, at import."""
    _reader[:] = [reader]


@shared_task(name="attendance.tasks.whatsapp_webhook_process_task", ignore_result=True)
def whatsapp_webhook_process_task(webhook_id: int) -> str:
    return whatsapp_webhooks.process(webhook_id)


@shared_task(
    name="attendance.tasks.whatsapp_webhooks_process_received_task",
    acks_late=True,
    ignore_result=True,
)
def whatsapp_webhooks_process_received_task() -> int:
    """The batch task (on a worker): every stored webhook not processed yet."""
    return whatsapp_burst.process_received()


class WhatsAppWebhooks(Inbox):
    model = WhatsAppWebhook
    label = "WhatsApp webhook"
    max_bytes_setting = "WHATSAPP_WEBHOOK_MAX_BYTES"
    max_attempts_setting = "WHATSAPP_WEBHOOK_MAX_ATTEMPTS"
    task = whatsapp_webhook_process_task
    links = ("message", "user")

    def store(self, row: WhatsAppWebhook) -> int:
        # Statuses come three per message sent: the busiest inbox after M-Pesa's, stored with
        # one INSERT outside the ORM and processed by one batch task per burst (batching.py).
        if row.status != WhatsAppWebhook.Status.RECEIVED:
            return super().store(row)
        params: list[Any] = [
            timezone.now(),
            row.raw_body,
            row.raw_bytes,
            row.remote_addr,
            row.status,
            row.kind,
            row.provider_id,
            row.sender,
            row.text,
            row.updates,
        ]
        return insert_committed(_INSERT, params)

    def queue(self, row_id: int) -> None:
        whatsapp_burst.queue(row_id)

    def identify(self, row: WhatsAppWebhook, body: bytes) -> None:
        try:
            parsed = parse_webhook(body)
        except MalformedWebhook as error:
            raise Unreadable(str(error)) from error
        row.updates = parsed.updates
        if parsed.statuses and parsed.messages:
            row.kind = K.MIXED
        elif parsed.statuses:
            row.kind = K.STATUS
        elif parsed.messages:
            row.kind = K.MESSAGE
        if parsed.statuses:
            first = parsed.statuses[0]
            row.provider_id, row.sender, row.text = first.wamid, first.recipient, first.status
        elif parsed.messages:
            message = parsed.messages[0]
            row.provider_id, row.sender = message.wamid, message.sender
            row.text = message.text or message.payload
        elif parsed.errors:
            row.text = "; ".join(parsed.errors)[:500]

    def apply(self, row: WhatsAppWebhook) -> Outcome:
        parsed = parse_webhook(row.body_bytes)
        outcomes = [_apply_status(row, status) for status in parsed.statuses]
        outcomes += [_apply_message(row, message) for message in parsed.messages]
        if parsed.errors:
            logger.error("WhatsApp reported errors: %s", "; ".join(parsed.errors)[:500])
        if len(outcomes) > 1:
            row.detail = (
                f"{len(outcomes)} updates: "
                + ", ".join(f"{outcomes.count(o)} {o.value}" for o in dict.fromkeys(outcomes))
                + (f". {row.detail}" if row.detail else "")
            )
        return _overall(outcomes)


def _overall(outcomes: list[Outcome]) -> Outcome:
    if not outcomes:
        return Outcome.NOTED
    for outcome in (Outcome.PROCESSED, Outcome.STALE, Outcome.DUPLICATE):
        if outcome in outcomes:
            return outcome
    return outcomes[0]


_INSERT = (
    f"INSERT INTO {WhatsAppWebhook._meta.db_table} "  # noqa: S608 - a constant table name
    "(received_at, raw_body, raw_bytes, remote_addr, status, kind, provider_id, sender, text, "
    "updates, detail, attempts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', 0) "
    "RETURNING id"
)
whatsapp_webhooks = register(WhatsAppWebhooks())
whatsapp_burst = Burst(
    model=WhatsAppWebhook,
    kick=Kick("whatsapp:webhooks:kick"),
    process=whatsapp_webhooks.process_guarded,
    task=lambda: whatsapp_webhooks_process_received_task,
    label="WhatsApp webhook",
)


def whatsapp_webhook_receive(*, body: bytes, remote_addr: str | None) -> Received:
    """Store a signed body raw and commit it, then queue its processing (Inbox.receive)."""
    return whatsapp_webhooks.receive(body=body, remote_addr=remote_addr)


def whatsapp_webhook_process(*, webhook_id: int) -> str:
    return whatsapp_webhooks.process(webhook_id)


def whatsapp_webhooks_process_pending(*, now: datetime | None = None) -> int:
    return whatsapp_webhooks.sweep(now=now)


# --- Statuses -------------------------------------------------------------------------------


def _message_for(status: StatusUpdate) -> WhatsAppMessage | None:
    match = Q(provider_message_id=status.wamid)
    if status.reference.startswith(REFERENCE) and status.reference[len(REFERENCE) :].isdigit():
        match |= Q(pk=int(status.reference[len(REFERENCE) :]))
    return WhatsAppMessage.objects.select_for_update().filter(match).order_by("pk").first()


def _apply_status(row: WhatsAppWebhook, status: StatusUpdate) -> Outcome:
    message = _message_for(status)
    if message is None:
        row.detail = f"Names no message of ours ({status.wamid[:60]})."
        return Outcome.UNMATCHED
    row.message = row.message or message
    row.user_id = row.user_id or message.user_id
    if message.provider_message_id and message.provider_message_id != status.wamid:
        return Outcome.STALE  # an earlier try's id: the row has moved on
    known = message.delivery_status
    fields = ["delivery_status", "reported_at"]
    if not message.provider_message_id:
        # The status overtook our saving of Meta's answer (or the answer never came).
        message.provider_message_id = status.wamid
        fields.append("provider_message_id")
        if message.status == WhatsAppMessage.Status.QUEUED:
            # A retry is waiting after a lost answer: the message went out, so it must not.
            message.status, message.sent_at = WhatsAppMessage.Status.SENT, status.at
            message.next_attempt_at = None
            fields += ["status", "sent_at", "next_attempt_at"]
    if status.pricing and not message.pricing:
        message.pricing = status.pricing[:60]
        fields.append("pricing")
    if known == status.status:
        if len(fields) > 2:
            message.save(update_fields=fields[2:])
        return Outcome.DUPLICATE
    if status.status == D.FAILED:
        if known in (D.DELIVERED, D.READ):
            return Outcome.STALE  # it reached them; a late failure changes nothing
        message.delivery_status, message.reported_at = D.FAILED, timezone.now()
        message.error_code, message.error_title = status.error_code, status.error_title
        message.save(update_fields=[*fields, "error_code", "error_title"])
        if status.error_code in NOT_ON_WHATSAPP and message.user_id:
            whatsapp_block_member(
                user_id=message.user_id, reason=f"({status.error_code}) {status.error_title}"
            )
        if status.error_code not in FALL_BACK:
            logger.error(
                "WhatsApp %s failed: (%s) %s", message.pk, status.error_code, status.error_title
            )
        # Whatever the reason, the member did not get it: the next channel carries it.
        whatsapp_fall_back(message)
        return Outcome.PROCESSED
    if known == D.FAILED or RANK.get(status.status, 0) <= RANK.get(known, 0):
        if len(fields) > 2:
            message.save(update_fields=fields[2:])
        return Outcome.STALE
    message.delivery_status, message.reported_at = status.status, timezone.now()
    if status.status == D.DELIVERED or (status.status == D.READ and not message.delivered_at):
        message.delivered_at = status.at
        fields.append("delivered_at")
    if status.status == D.READ:
        message.read_at = status.at
        fields.append("read_at")
    if status.status not in D.values:
        message.delivery_status = D.READ  # "played" (a voice note): read, for our purposes
    message.save(update_fields=fields)
    return Outcome.PROCESSED


# --- Messages from members -------------------------------------------------------------------


def _profile_for(sender: str) -> Profile | None:
    try:
        phone = normalise_phone("+" + sender if not sender.startswith("+") else sender)
    except ValidationError:
        return None
    return (
        Profile.objects.select_related("user")
        .filter(Q(whatsapp_number=phone) | Q(whatsapp_number="", phone_number=phone))
        .order_by("-whatsapp_number")
        .first()
    )


def _apply_message(row: WhatsAppWebhook, message: InboundMessage) -> Outcome:
    profile = _profile_for(message.sender)
    if profile is not None:
        # The member's row is the lock: two deliveries of one message, or two taps, are
        # taken one after the other (and the profile read after the lock is the current one).
        profile = (
            Profile.objects.select_for_update(of=("self",))
            .select_related("user")
            .get(pk=profile.pk)
        )
    try:
        with transaction.atomic():
            inbound = WhatsAppInbound.objects.create(
                wamid=message.wamid,
                wa_number=message.sender,
                kind=message.kind,
                text=message.text,
                payload=message.payload,
                context_id=message.context_id,
                sent_at=message.at,
                webhook=row,
                user=profile.user if profile else None,
            )
    except IntegrityError:
        return Outcome.DUPLICATE
    if profile is None:
        inbound.detail = "From a number that is no member's: kept for staff."
        inbound.save(update_fields=["detail"])
        row.detail = inbound.detail
        return Outcome.UNMATCHED
    row.user = row.user or profile.user
    if profile.whatsapp_last_inbound_at is None or message.at > profile.whatsapp_last_inbound_at:
        profile.whatsapp_last_inbound_at = message.at
        Profile.objects.filter(pk=profile.pk).update(whatsapp_last_inbound_at=message.at)
    if message.kind == "text" and message.text.strip().lower() in STOP_WORDS:
        whatsapp_opt_out(profile=profile)
        inbound.detail = "STOP: opted out of WhatsApp."
        inbound.save(update_fields=["detail"])
        return Outcome.PROCESSED
    if not _reader:
        raise LookupError("No reader of WhatsApp messages is registered.")
    outcome = _reader[0](inbound, profile)
    inbound.save(update_fields=["detail", "crew_assignment"])
    logger.info("WhatsApp from %s: %s", mask_phone(message.sender), outcome.value)
    return outcome


def whatsapp_opt_out(*, profile: Profile) -> None:
    """The member said STOP: no more WhatsApp until they choose it again on their Account page.
    Their messages go by SMS (or email) from now on; one last WhatsApp says so (their window
    is open: they just wrote)."""
    whatsapp_reply_text(
        profile=profile, notification_type="crew_reply", context={"reply": "whatsapp_stopped"}
    )
    now = timezone.now()
    channel = profile.message_channel
    if channel == MessageChannel.WHATSAPP:
        channel = MessageChannel.DEFAULT
    Profile.objects.filter(pk=profile.pk).update(
        whatsapp_opted_out_at=now, message_channel=channel, updated_at=now
    )
