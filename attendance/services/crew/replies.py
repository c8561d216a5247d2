"""Crew answering an invitation by text or WhatsApp: "YES 1234", "no 1234 sick", a bare
"Yes", or a tap on the invitation's Confirm / Decline buttons.

An incoming SMS reaches here through the SMS inbox (`messaging/sms_inbox.py`), a WhatsApp
message through the WhatsApp inbox (`messaging/whatsapp_inbox.py`), already stored raw and
committed, inside its savepoint. A reply is matched by the sender's number *and* the
invitation's code (or the button's invitation, which must be the sender's), so a message from
another phone changes nothing; a bare YES/NO answers the member's one open invitation, or asks
which one. The wording of every answer is the `crew_reply` template's, sent back the way the
member wrote (SMS, or WhatsApp inside the window they just opened).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from attendance.models import EventCrew, MessageType, Profile, SmsCallback, WhatsAppInbound
from attendance.phones import mask_phone, normalise_phone
from attendance.services.core.inbox import Outcome
from attendance.services.messaging.sms import sms_create
from attendance.services.messaging.sms_inbox import sms_on_incoming
from attendance.services.messaging.whatsapp import whatsapp_reply_text
from attendance.services.messaging.whatsapp_inbox import whatsapp_on_incoming
from attendance.sms.callbacks import parse_incoming, parse_reply

from .assignments import CrewError, crew_confirm, crew_decline

logger = logging.getLogger(__name__)
# Wrong invitation codes from one member's number in an hour before we stop trying codes
# (and stop answering): 9,000 codes cannot be walked through at this pace.
WRONG_CODE_LIMIT = 5
WRONG_CODE_WINDOW_SECONDS = 3600
WRONG_CODE_PREFIX = "Wrong code"


def crew_reply_apply(row: SmsCallback) -> Outcome:
    """Apply one stored incoming text as an answer to an invitation."""
    incoming = parse_incoming(row.body_bytes)
    try:
        phone = normalise_phone(incoming.sender)
    except ValidationError:
        row.detail = "Not a Kenyan mobile number: kept for staff."
        return Outcome.UNMATCHED
    profile = Profile.objects.select_related("user").filter(phone_number=phone).first()
    if profile is None:
        row.detail = "From a number that is no member's: kept for staff."
        return Outcome.UNMATCHED
    # Two deliveries of one text processed at once are taken one after the other (the
    # member's row is the lock), and the second sees the first done.
    Profile.objects.select_for_update().filter(pk=profile.pk).first()
    copies = SmsCallback.objects.filter(
        kind=SmsCallback.Kind.INCOMING, provider_id=incoming.message_id
    ).exclude(pk=row.pk)
    if copies.filter(status=SmsCallback.Status.PROCESSED).exists():
        return Outcome.DUPLICATE
    row.user = profile.user
    reply = parse_reply(incoming.text)
    if reply is None:
        row.detail = "Not a YES/NO answer: kept for staff."
        return Outcome.UNMATCHED
    outcome = _reply_apply(profile, row, reply, via="sms")
    logger.info("SMS reply from %s: %s", mask_phone(phone), outcome.value)
    return outcome


def crew_whatsapp_reply_apply(inbound: WhatsAppInbound, profile: Profile) -> Outcome:
    """Apply one WhatsApp message from a member: a tap on an invitation's button (its payload
    names the invitation, which must be theirs), or a typed YES/NO like a text."""
    if inbound.kind in (WhatsAppInbound.Kind.BUTTON, WhatsAppInbound.Kind.INTERACTIVE):
        pressed = _button(inbound, profile)
        if pressed is None:
            return Outcome.UNMATCHED
        assignment, accept = pressed
        inbound.crew_assignment = assignment
        if assignment.status == (
            EventCrew.Status.CONFIRMED if accept else EventCrew.Status.DECLINED
        ):
            # A second tap on the same button (or Meta's repeat of it): answered already.
            inbound.detail = "The same answer again: nothing more to do."
            return Outcome.DUPLICATE
        return _decide(profile, inbound, assignment, accept, reason="", via="whatsapp")
    reply = parse_reply(inbound.text) if inbound.text else None
    if reply is None:
        inbound.detail = "Not a YES/NO answer: kept for staff."
        return Outcome.UNMATCHED
    return _reply_apply(profile, inbound, reply, via="whatsapp")


_BUTTON_WORDS = {"confirm": True, "nitakuja": True, "decline": False, "siwezi": False}


def _button(inbound: WhatsAppInbound, profile: Profile) -> tuple[EventCrew, bool] | None:
    """The invitation and the answer a tap means, or None (with the reason in `detail`). The
    payload is ours (`crew:<id>:yes`); without it, the label and the message it answers."""
    parts = inbound.payload.split(":")
    if len(parts) == 3 and parts[0] == "crew" and parts[1].isdigit() and parts[2] in ("yes", "no"):
        pk, accept = int(parts[1]), parts[2] == "yes"
        match = EventCrew.objects.filter(pk=pk)
    elif inbound.text.strip().lower() in _BUTTON_WORDS and inbound.context_id:
        accept = _BUTTON_WORDS[inbound.text.strip().lower()]
        match = EventCrew.objects.filter(whatsapp_messages__provider_message_id=inbound.context_id)
    else:
        inbound.detail = "A button that is not one of ours: kept for staff."
        return None
    assignment = (
        match.select_related("event", "role", "user")
        .filter(user=profile.user, invitation_sent=True)
        .first()
    )
    if assignment is None:
        # Someone else's invitation (or one withdrawn): nothing changes, nobody is told.
        inbound.detail = "A button for an invitation that is not this member's: nothing done."
        return None
    return assignment, accept


def _reply_apply(profile: Profile, row: Any, reply: Any, *, via: str) -> Outcome:
    if reply.code is None:
        assignment = _only_open_invitation(profile, row, via=via)
        if assignment is None:
            return Outcome.PROCESSED if row.detail.startswith("Answered") else Outcome.UNMATCHED
    else:
        assignment = _by_code(profile, row, reply.code, via=via)
        if assignment is None:
            return Outcome.UNMATCHED
    row.crew_assignment = assignment
    return _decide(profile, row, assignment, reply.accept, reason=reply.reason, via=via)


def _decide(
    profile: Profile, row: Any, assignment: EventCrew, accept: bool, *, reason: str, via: str
) -> Outcome:
    try:
        if accept:
            crew_confirm(assignment=assignment)
            _answer(
                profile, assignment, "confirmed", via=via, call_time=assignment.expected_call_time
            )
        else:
            crew_decline(assignment=assignment, reason=reason, via=via)
            _answer(profile, assignment, "declined", via=via)
    except CrewError as refused:
        row.detail = f"Refused: {refused}"
        _answer(profile, assignment, "refused", via=via, reason=str(refused))
    return Outcome.PROCESSED


def _by_code(profile: Profile, row: Any, code: str, *, via: str) -> EventCrew | None:
    wrong = _recent_wrong_codes(profile)
    if wrong >= WRONG_CODE_LIMIT:
        # Someone may be guessing codes with this number (the callback token is all it takes
        # to forge a sender): nothing is decided and nobody is texted until the hour has
        # passed; staff see the rows.
        row.detail = f"{WRONG_CODE_PREFIX} limit reached: code {code} not tried."
        return None
    assignment = (
        EventCrew.objects.select_related("event", "role", "user")
        .filter(user=profile.user, reply_code=code, invitation_sent=True)
        .order_by("-invitation_sent_at")
        .first()
    )
    if assignment is None:
        row.detail = f"{WRONG_CODE_PREFIX}: no invitation with code {code} for this number."
        if wrong + 1 < WRONG_CODE_LIMIT:
            _answer(profile, None, "wrong_code", via=via, code=code)
        elif wrong + 1 == WRONG_CODE_LIMIT:
            _answer(profile, None, "too_many_codes", via=via)
    return assignment


def _recent_wrong_codes(profile: Profile) -> int:
    since = timezone.now() - timedelta(seconds=WRONG_CODE_WINDOW_SECONDS)
    by_sms = SmsCallback.objects.filter(
        kind=SmsCallback.Kind.INCOMING,
        user=profile.user,
        received_at__gte=since,
        detail__startswith=WRONG_CODE_PREFIX,
    ).count()
    by_whatsapp = WhatsAppInbound.objects.filter(
        user=profile.user, received_at__gte=since, detail__startswith=WRONG_CODE_PREFIX
    ).count()
    return by_sms + by_whatsapp


def _only_open_invitation(profile: Profile, row: Any, *, via: str) -> EventCrew | None:
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
        _answer(profile, None, "none_waiting", via=via)
    else:
        choices = [
            {"name": a.event.name, "starts_at": a.event.starts_at, "code": a.reply_code}
            for a in waiting[:3]
        ]
        _answer(profile, None, "which_one", via=via, choices=choices)
    row.detail = f"Answered: a bare reply with {len(waiting)} open invitation(s)."
    return None


def _answer(
    profile: Profile, assignment: EventCrew | None, reply: str, *, via: str, **context: Any
) -> None:
    # The way they wrote, whatever their channel: by WhatsApp in the window they just opened
    # (SMS if WhatsApp cannot), by SMS to a text.
    if assignment is not None:
        context["event_name"] = assignment.event.name
    if via == "whatsapp" and whatsapp_reply_text(
        profile=profile,
        notification_type=MessageType.CREW_REPLY,
        context={"reply": reply, **context},
        event=assignment.event if assignment else None,
        crew_assignment=assignment,
    ):
        return
    if profile.sms_blocked_at is not None or not settings.SMS_ENABLED:
        return
    sms_create(
        user=profile.user,
        phone_number=profile.phone_number,
        notification_type=MessageType.CREW_REPLY,
        context={"reply": reply, **context},
        event=assignment.event if assignment else None,
        crew_assignment=assignment,
    )


sms_on_incoming(crew_reply_apply)
whatsapp_on_incoming(crew_whatsapp_reply_apply)
