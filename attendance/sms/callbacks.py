"""Reading what Africa's Talking POSTs to us: delivery reports and incoming messages.

Wire knowledge only: no models. Neither is signed, so a body is hostile until read: anything
that is not well-formed raises MalformedSms with the reason, never another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,100}$")
# Final delivery states: a later report never moves a message out of one.
FINAL_STATUSES = {"success", "failed", "rejected", "expired"}
DELIVERED = "success"
# Statuses that say the number itself cannot get our texts (spellings differ between the send
# answer and the reports: compared in lower case).
BLOCKING_REASONS = {"userinblacklist", "userdoesnotexist", "usernotsubscribedtoproduct"}
# How people answer a yes/no text, in English and Kiswahili (ndio/ndiyo "yes", sawa/poa "ok",
# hapana "no", siwezi "I can't"). The invitation's 4-digit code is optional: a bare "Yes"
# answers the member's only open invitation (services/messaging/sms_inbox.py).
_YES = {
    "yes",
    "y",
    "yeah",
    "yep",
    "yes.",
    "ok",
    "okay",
    "sure",
    "confirm",
    "confirmed",
    "ndio",
    "ndiyo",
    "ndyo",
    "sawa",
    "poa",
    "nitakuja",
}
_NO = {"no", "n", "nope", "decline", "hapana", "siwezi", "sitaweza", "sitakuja"}
_REPLY = re.compile(
    r"^\s*([a-z]+)(?![a-z])[\s\W]*(?:([0-9]{4})(?![0-9]))?[\s\W]*(.*)$", re.I | re.S
)
# NUL cannot be stored in PostgreSQL text, and other control characters only hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: object, limit: int) -> str:
    """A wire value as storable, readable text: control characters (NUL included) removed."""
    return _CONTROL.sub("", str(value))[:limit]


class MalformedSms(ValueError):
    """Not a body we can read; the message says why."""


@dataclass(frozen=True)
class DeliveryReport:
    message_id: str
    status: str
    failure_reason: str
    phone: str
    network_code: str

    @property
    def final(self) -> bool:
        return self.status.lower() in FINAL_STATUSES

    @property
    def delivered(self) -> bool:
        return self.status.lower() == DELIVERED

    @property
    def blocks_number(self) -> bool:
        return self.failure_reason.lower() in BLOCKING_REASONS


@dataclass(frozen=True)
class IncomingSms:
    message_id: str
    sender: str
    to: str
    text: str
    link_id: str
    received: str


@dataclass(frozen=True)
class Reply:
    accept: bool
    code: str | None  # None: a bare answer, no invitation code
    reason: str


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=40)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedSms("Not a form body.") from error
    return {key: values[-1] for key, values in fields.items()}


def parse_delivery_report(body: bytes) -> DeliveryReport:
    form = _form(body)
    message_id = form.get("id", "")
    if not _ID.match(message_id) or message_id == "None":
        raise MalformedSms("id is missing or invalid.")
    status = clean_text(form.get("status", ""), 40).strip()
    if not status:
        raise MalformedSms("status is missing.")
    return DeliveryReport(
        message_id=message_id,
        status=status,
        failure_reason=clean_text(form.get("failureReason", ""), 60).strip(),
        phone=clean_text(form.get("phoneNumber", ""), 20).strip(),
        network_code=clean_text(form.get("networkCode", ""), 10).strip(),
    )


def parse_incoming(body: bytes) -> IncomingSms:
    form = _form(body)
    message_id = form.get("id", "")
    if not _ID.match(message_id):
        raise MalformedSms("id is missing or invalid.")
    sender = clean_text(form.get("from", ""), 20).strip()
    if not sender:
        raise MalformedSms("from is missing.")
    return IncomingSms(
        message_id=message_id,
        sender=sender,
        to=clean_text(form.get("to", ""), 20).strip(),
        text=clean_text(form.get("text", ""), 1600),
        link_id=clean_text(form.get("linkId", ""), 100),
        received=clean_text(form.get("date", ""), 40),
    )


def parse_reply(text: str) -> Reply | None:
    """`YES 4821`, `no 4821 sick`, `Ndiyo`, `Ok!`, `Hapana, ni mgonjwa`: the answer, the
    invitation's code when given, and a reason. None for anything else."""
    match = _REPLY.match(text)
    if not match:
        return None
    word, code, rest = match.groups()
    word = word.lower()
    if word not in _YES and word not in _NO:
        return None
    return Reply(accept=word in _YES, code=code, reason=" ".join(rest.split())[:500])
