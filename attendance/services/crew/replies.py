"""Crew answering an invitation by text: "YES 1234", "no 1234 sick", or a bare "Yes".

An incoming SMS reaches here through the SMS inbox (`messaging/sms_inbox.py`), already stored
raw and committed, inside its savepoint. A reply is matched by the sender's number *and* the
invitation's code, so a text from another phone changes nothing; a bare YES/NO answers the
member's one open invitation, or asks which one. The wording of every answer is the
`crew_reply` SMS template's.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from attendance.models import EventCrew, MessageType, Profile, SmsCallback
from attendance.phones import mask_phone, normalise_phone
from attendance.services.core.inbox import Outcome
from attendance.services.messaging.sms import sms_create
from attendance.services.messaging.sms_inbox import sms_on_incoming
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
    if reply.code is None:
        assignment = _only_open_invitation(profile, row)
        if assignment is None:
            return Outcome.PROCESSED if row.detail.startswith("Answered") else Outcome.UNMATCHED
    else:
        assignment = _by_code(profile, row, reply.code)
        if assignment is None:
            return Outcome.UNMATCHED
    row.crew_assignment = assignment
    try:
        if reply.accept:
            crew_confirm(assignment=assignment)
            _answer(profile, assignment, "confirmed", call_time=assignment.expected_call_time)
        else:
            crew_decline(assignment=assignment, reason=reply.reason, via="sms")
            _answer(profile, assignment, "declined")
    except CrewError as refused:
        row.detail = f"Refused: {refused}"
        _answer(profile, assignment, "refused", reason=str(refused))
    logger.info("SMS reply from %s applied to assignment %s", mask_phone(phone), assignment.pk)
    return Outcome.PROCESSED


def _by_code(profile: Profile, row: SmsCallback, code: str) -> EventCrew | None:
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
            _answer(profile, None, "wrong_code", code=code)
        elif wrong + 1 == WRONG_CODE_LIMIT:
            _answer(profile, None, "too_many_codes")
    return assignment


def _recent_wrong_codes(profile: Profile) -> int:
    since = timezone.now() - timedelta(seconds=WRONG_CODE_WINDOW_SECONDS)
    return SmsCallback.objects.filter(
        kind=SmsCallback.Kind.INCOMING,
        user=profile.user,
        received_at__gte=since,
        detail__startswith=WRONG_CODE_PREFIX,
    ).count()


def _only_open_invitation(profile: Profile, row: SmsCallback) -> EventCrew | None:
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
        _answer(profile, None, "none_waiting")
    else:
        choices = [
            {"name": a.event.name, "starts_at": a.event.starts_at, "code": a.reply_code}
            for a in waiting[:3]
        ]
        _answer(profile, None, "which_one", choices=choices)
    row.detail = f"Answered: a bare reply with {len(waiting)} open invitation(s)."
    return None


def _answer(profile: Profile, assignment: EventCrew | None, reply: str, **context: Any) -> None:
    # By SMS whatever their channel: they texted us.
    if profile.sms_blocked_at is not None or not settings.SMS_ENABLED:
        return
    if assignment is not None:
        context["event_name"] = assignment.event.name
    sms_create(
        user=profile.user,
        phone_number=profile.phone_number,
        notification_type=MessageType.CREW_REPLY,
        context={"reply": reply, **context},
        event=assignment.event if assignment else None,
        crew_assignment=assignment,
    )


sms_on_incoming(crew_reply_apply)
