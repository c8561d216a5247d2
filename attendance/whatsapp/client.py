"""The WhatsApp Business Cloud API client: two POSTs (a template, a free text) and Meta's errors.

HTTP and wire format only, no models. Every failure comes out as `WhatsAppError` saying
whether another try may succeed (`permanent`), whether the message may have gone out anyway
(`unknown`), and whether WhatsApp cannot reach this member so their next channel should carry
the message (`fall_back`). Meta asks to branch on `error.code`, never on the wording.

Why not pywa: it is a whole bot framework (its own webhook routing and handler registry) on
httpx; the outbox needs two calls and the error codes, and every other provider here sits
behind a thin client of our own with the same error shape.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests

# Meta's error codes (Cloud API "Error codes"), by what the outbox should do with them.
# WhatsApp cannot carry this message to this member: the next channel should.
FALL_BACK = {
    131047,  # more than 24 hours since the member last wrote: free text not allowed
    131026,  # not a WhatsApp number, terms not accepted, or WhatsApp too old
    131049,  # not delivered "to maintain healthy ecosystem engagement"
    131050,  # the member stopped marketing messages
    131051,  # unsupported message type
}
# Not this member's fault and not ours: another try later may work.
TRANSIENT = {1, 2, 4, 80007, 130429, 131000, 131016, 131056, 133004}
# The number itself is no good for WhatsApp: stop using it until the member chooses again.
NOT_ON_WHATSAPP = {131026}
# Our account or templates are wrong: an operator must act (nothing retried).
NEEDS_OPERATOR = {0, 3, 10, 190, 200, 368, 131031, 131042, 132000, 132001, 132015, 132016}
RE_ENGAGEMENT = 131047


class WhatsAppError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        unknown: bool = False,
        code: int | None = None,
        title: str = "",
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.unknown = unknown
        self.code = code
        self.title = title
        self.http_status = http_status

    @property
    def fall_back(self) -> bool:
        return self.code in FALL_BACK

    @property
    def not_on_whatsapp(self) -> bool:
        return self.code in NOT_ON_WHATSAPP

    @property
    def needs_operator(self) -> bool:
        return self.code in NEEDS_OPERATOR or (self.code or 0) // 1000 == 132


def error_is_transient(code: int | None, http_status: int | None = None) -> bool:
    if code in TRANSIENT:
        return True
    return code is None and http_status is not None and http_status >= 500


@dataclass(frozen=True)
class WhatsAppAccepted:
    message_id: str  # the wamid: statuses on the webhook name it
    wa_id: str
    message_status: str  # "accepted", "held_for_quality_assessment", or "" for free text


class WhatsAppClient:
    """One phone number's sender. Thread-safe: one `requests.Session` per thread."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        phone_number_id: str,
        access_token: str,
        timeout: tuple[float, float] = (3.05, 10.05),
    ):
        self.url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/messages"
        self.access_token = access_token
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.access_token}"
            session.headers["Content-Type"] = "application/json"
        return session

    def send_template(
        self,
        *,
        to: str,
        name: str,
        language: str,
        params: list[tuple[str, str]],
        payloads: tuple[str, ...] = (),
        reference: str = "",
    ) -> WhatsAppAccepted:
        """Send an approved template with named body parameters and quick-reply payloads."""
        return self.send(
            to=to, content=template_content(name, language, params, payloads), reference=reference
        )

    def send_text(self, *, to: str, body: str, reference: str = "") -> WhatsAppAccepted:
        """Send free text: only allowed inside the member's 24-hour window."""
        return self.send(to=to, content=text_content(body), reference=reference)

    def send(self, *, to: str, content: dict, reference: str = "") -> WhatsAppAccepted:
        """POST one message (`content` is `{"type": ..., <type>: {...}}`). `reference` comes
        back on every status webhook as `biz_opaque_callback_data`: our row, found even when
        a status overtakes our saving of the message id. Raises WhatsAppError."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            **content,
        }
        if reference:
            payload["biz_opaque_callback_data"] = reference
        try:
            response = self._session().post(self.url, json=payload, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as error:
            raise WhatsAppError(f"Could not connect: {error}", permanent=False) from error
        except requests.exceptions.ReadTimeout as error:
            # The request went out; Meta may have accepted it. A status webhook naming our
            # reference settles it before any other try (services/messaging/whatsapp.py).
            raise WhatsAppError("No answer in time", permanent=False, unknown=True) from error
        except requests.exceptions.ConnectionError as error:
            raise WhatsAppError(f"Connection failed: {error}", permanent=False) from error
        return _read_answer(response)


def template_content(
    name: str, language: str, params: list[tuple[str, str]], payloads: tuple[str, ...] = ()
) -> dict:
    components: list[dict] = []
    if params:
        components.append(
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "parameter_name": key, "text": value} for key, value in params
                ],
            }
        )
    for index, payload in enumerate(payloads):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": index,
                "parameters": [{"type": "payload", "payload": payload}],
            }
        )
    return {
        "type": "template",
        "template": {"name": name, "language": {"code": language}, "components": components},
    }


def text_content(body: str) -> dict:
    return {"type": "text", "text": {"preview_url": False, "body": body}}


def _read_answer(response: requests.Response) -> WhatsAppAccepted:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.ok and isinstance(data, dict):
        messages = data.get("messages") or []
        contacts = data.get("contacts") or []
        if messages and isinstance(messages[0], dict) and messages[0].get("id"):
            return WhatsAppAccepted(
                message_id=str(messages[0]["id"])[:200],
                wa_id=str((contacts[0] if contacts else {}).get("wa_id", "")),
                message_status=str(messages[0].get("message_status", "")),
            )
        # Accepted but without an id: it may go out, and we could never match its statuses.
        raise WhatsAppError(
            f"HTTP {response.status_code} without a message id", permanent=True, unknown=True
        )
    error = (data or {}).get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        raise WhatsAppError(
            f"HTTP {response.status_code}: {response.text[:200]}",
            permanent=not error_is_transient(None, response.status_code)
            and response.status_code != 429,
            http_status=response.status_code,
        )
    code = error.get("code")
    code = code if isinstance(code, int) else None
    details = (
        (error.get("error_data") or {}).get("details", "")
        if isinstance(error.get("error_data"), dict)
        else ""
    )
    title = str(error.get("message", ""))[:300]
    return_error = WhatsAppError(
        f"({code}) {title}{': ' + str(details)[:300] if details else ''}",
        permanent=not error_is_transient(code, response.status_code),
        code=code,
        title=title,
        http_status=response.status_code,
    )
    raise return_error
