"""Reading what Meta posts to our WhatsApp webhook: the signature first, then the body.

Wire knowledge only: no models. A POST is trusted only when `X-Hub-Signature-256` is the
HMAC-SHA256 of its raw bytes keyed with the app secret; the body is then read defensively (one
POST may batch up to 1,000 statuses and messages, in any order, any of them again). Anything
not well-formed raises MalformedWebhook with the reason, never another exception.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])
RANK = {"sent": 1, "delivered": 2, "read": 3, "played": 3}


class MalformedWebhook(ValueError):
    """Not a body we can read; the message says why."""


def signature_for(body: bytes, secret: str) -> str:
    """The header value Meta sends with `body`: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, header: str, secret: str) -> bool:
    """Is `header` Meta's signature of these exact bytes? Constant time; no secret, no trust."""
    if not secret or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature_for(body, secret).encode(), header.strip().encode())


@dataclass(frozen=True)
class StatusUpdate:
    wamid: str
    status: str  # sent, delivered, read, failed (played for voice notes)
    at: datetime
    recipient: str
    reference: str  # biz_opaque_callback_data, when we sent one
    error_code: int | None
    error_title: str
    pricing: str

    @property
    def rank(self) -> int:
        return RANK.get(self.status, 0)


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    sender: str  # wa_id: digits, no +
    at: datetime
    kind: str  # text, button, interactive, other
    text: str
    payload: str  # a button's payload, or a reply button's id
    context_id: str  # the wamid of our message it answers


@dataclass(frozen=True)
class WebhookBody:
    statuses: tuple[StatusUpdate, ...]
    messages: tuple[InboundMessage, ...]
    errors: tuple[str, ...]

    @property
    def updates(self) -> int:
        return len(self.statuses) + len(self.messages) + len(self.errors)


def _text(value: object, limit: int) -> str:
    return str(value if value is not None else "").translate(_CONTROL)[:limit]


def _when(value: object) -> datetime:
    try:
        return datetime.fromtimestamp(int(str(value)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise MalformedWebhook(f"timestamp {value!r} is not Unix seconds.") from error


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def parse_webhook(body: bytes) -> WebhookBody:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedWebhook("Not JSON.") from error
    if not isinstance(data, dict) or data.get("object") != "whatsapp_business_account":
        raise MalformedWebhook("Not a WhatsApp Business Account webhook.")
    statuses: list[StatusUpdate] = []
    messages: list[InboundMessage] = []
    errors: list[str] = []
    for entry in _dicts(data.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                errors.append(f"{_text(change.get('field'), 60)} (not read)")
                continue
            statuses += [_status(item) for item in _dicts(value.get("statuses"))]
            messages += [_message(item) for item in _dicts(value.get("messages"))]
            errors += [
                f"({_text(e.get('code'), 10)}) {_text(e.get('title'), 200)}"
                for e in _dicts(value.get("errors"))
            ]
    return WebhookBody(tuple(statuses), tuple(messages), tuple(errors))


def _status(item: dict) -> StatusUpdate:
    wamid = _text(item.get("id"), 200)
    status = _text(item.get("status"), 20).lower()
    if not wamid or not status:
        raise MalformedWebhook("A status without id or status.")
    errors = _dicts(item.get("errors"))
    code = errors[0].get("code") if errors else None
    pricing: dict = item["pricing"] if isinstance(item.get("pricing"), dict) else {}
    return StatusUpdate(
        wamid=wamid,
        status=status,
        at=_when(item.get("timestamp")),
        recipient=_text(item.get("recipient_id"), 20),
        reference=_text(item.get("biz_opaque_callback_data"), 120),
        error_code=code if isinstance(code, int) else None,
        error_title=_text(errors[0].get("title") or errors[0].get("message"), 300)
        if errors
        else "",
        pricing=" / ".join(
            _text(pricing.get(key), 30) for key in ("type", "category") if pricing.get(key)
        ),
    )


def _message(item: dict) -> InboundMessage:
    wamid = _text(item.get("id"), 200)
    sender = _text(item.get("from"), 20)
    if not wamid or not sender:
        raise MalformedWebhook("A message without id or sender.")
    kind = _text(item.get("type"), 20)
    text = payload = ""
    if kind == "text" and isinstance(item.get("text"), dict):
        text = _text(item["text"].get("body"), 4096)
    elif kind == "button" and isinstance(item.get("button"), dict):
        text = _text(item["button"].get("text"), 100)
        payload = _text(item["button"].get("payload"), 256)
    elif kind == "interactive" and isinstance(item.get("interactive"), dict):
        reply = item["interactive"].get("button_reply") or item["interactive"].get("list_reply")
        if isinstance(reply, dict):
            text = _text(reply.get("title"), 100)
            payload = _text(reply.get("id"), 256)
    else:
        kind = "other"
    context: dict = item["context"] if isinstance(item.get("context"), dict) else {}
    return InboundMessage(
        wamid=wamid,
        sender=sender,
        at=_when(item.get("timestamp")),
        kind=kind,
        text=text,
        payload=payload,
        context_id=_text(context.get("id"), 200),
    )
