"""The Africa's Talking SMS client: the official SDK, pointed where settings say.

HTTP and wire format only, no models. Every failure comes out as `SmsError` saying whether it
is worth retrying (`permanent`), whether the message may have gone out anyway (`unknown`), and,
for a refused recipient, AT's status (`UserInBlacklist`, `InvalidPhoneNumber`...), so the
outbox decides what to do without knowing AT's codes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from africastalking.Service import AfricasTalkingException
from africastalking.SMS import SMSService

# Recipient statusCode -> worth retrying? (Africa's Talking's SMS API documentation, "Send")
ACCEPTED = {100, 101, 102}
TRANSIENT = {405, 407, 500, 501}  # no credit (retry after a top-up), no route, AT-side errors
# What a refusal means for the member, not just this message.
BLOCKED_STATUSES = {"userinblacklist", "invalidphonenumber", "unsupportednumbertype"}


class SmsError(Exception):
    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        unknown: bool = False,
        status: str = "",
        status_code: int | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.unknown = unknown
        self.status = status
        self.status_code = status_code

    @property
    def blocks_number(self) -> bool:
        """The number cannot get our SMS at all (opted out, invalid): stop texting it."""
        return self.status.lower() in BLOCKED_STATUSES


@dataclass(frozen=True)
class SmsAccepted:
    message_id: str
    status_code: int
    status: str
    cost: Decimal | None
    currency: str


def parse_cost(value: object) -> tuple[Decimal | None, str]:
    """`"KES 0.8000"` -> (Decimal("0.8000"), "KES"); `"0"` -> (0, ""); junk -> (None, "")."""
    parts = str(value or "").split()
    try:
        if len(parts) == 2 and len(parts[0]) == 3:
            return Decimal(parts[1]), parts[0].upper()
        if len(parts) == 1:
            return Decimal(parts[0]), ""
    except InvalidOperation:
        pass
    return None, ""


class _SMSService(SMSService):
    # The SDK has no base URL setting: it builds `_baseUrl` in `_init_service`, which its
    # __init__ calls, so the override is set first (pinned SDK version; a test asserts the
    # simulator received the request).
    def __init__(self, username: str, api_key: str, base_url: str = ""):
        self._override = base_url
        self._local = threading.local()
        super().__init__(username, api_key)

    def _init_service(self) -> None:
        super()._init_service()
        if self._override:
            self._baseUrl = self._override.rstrip("/") + "/version1"
            self._contentUrl = self._baseUrl

    def _make_request(self, url, method, headers, data, params, callback=None, timeout=None):
        # The SDK opens a new connection (TCP and TLS) for every message; a worker sending a
        # burst keeps one open per thread instead. What the SDK does with the answer is kept
        # as it is: JSON only for exactly `application/json`, AfricasTalkingException(text)
        # for anything but 2xx.
        if callback is not None:
            raise ValueError("callbacks run in threads of their own: not here")
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        response = session.request(
            method, url, headers=headers, data=data, params=params, timeout=timeout
        )
        if not 200 <= response.status_code < 300:
            raise AfricasTalkingException(response.text)
        if response.headers.get("content-type") == "application/json":
            return response.json()
        return response.text


class SmsClient:
    def __init__(
        self,
        *,
        username: str,
        api_key: str,
        base_url: str = "",
        sender_id: str = "",
        timeout: tuple[float, float] = (3.05, 9.05),
    ):
        self.service = _SMSService(username, api_key, base_url)
        self.sender_id = sender_id or None
        self.timeout = timeout

    def send(self, *, to: str, message: str) -> SmsAccepted:
        """Send one text to one E.164 number (`+2547...`). Returns AT's acceptance.

        Raises SmsError: permanent for a refused recipient or configuration (credentials,
        sender ID), not permanent for AT-side errors and connection failures before the
        request went out, `unknown` when it went out and no answer came back (AT has no
        idempotency key: sending again might deliver twice).
        """
        try:
            answer: Any = self.service.send(
                message, [to], sender_id=self.sender_id, timeout=self.timeout
            )
        except ValueError as error:
            raise SmsError(
                str(error), permanent=True, status="InvalidPhoneNumber", status_code=403
            ) from error
        except AfricasTalkingException as error:
            answer = _refusal(str(error))
        except requests.exceptions.ReadTimeout as error:
            raise SmsError(
                "Africa's Talking did not answer in time: the message may have been sent.",
                permanent=True,
                unknown=True,
            ) from error
        except requests.exceptions.RequestException as error:
            raise SmsError(f"Could not reach Africa's Talking: {error}", permanent=False) from error
        return _accepted(answer)


def _refusal(text: str) -> Any:
    """A non-2xx answer: a JSON body with recipients is read like any answer."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("SMSMessageData"), dict):
        return data
    if "authentication is invalid" in text.lower():
        raise SmsError(
            "Africa's Talking refused the username or API key (a sandbox key needs the "
            "username 'sandbox'; a new key can take minutes to work).",
            permanent=True,
        )
    # Throttled, or an error page in front of AT: nothing was accepted, so trying again is safe.
    raise SmsError(f"Africa's Talking refused the request: {text[:200]}", permanent=False)


def _accepted(answer: Any) -> SmsAccepted:
    if not isinstance(answer, dict):
        # Not JSON (a proxy's page, a wrong content type): whether AT took it is not known.
        raise SmsError(
            f"Unreadable answer from Africa's Talking: {str(answer)[:200]}",
            permanent=True,
            unknown=True,
        )
    data = answer.get("SMSMessageData") or {}
    recipients = data.get("Recipients") if isinstance(data, dict) else None
    if not recipients or not isinstance(recipients, list) or not isinstance(recipients[0], dict):
        summary = str(data.get("Message", "")) if isinstance(data, dict) else ""
        if summary == "InvalidSenderId":
            raise SmsError(
                "The sender ID is not approved for this account (SMS_SENDER_ID).",
                permanent=True,
                status="InvalidSenderId",
                status_code=402,
            )
        raise SmsError(f"No recipient in the answer: {summary[:200]}", permanent=True, unknown=True)
    recipient = recipients[0]
    try:
        code = int(str(recipient.get("statusCode")))
    except (TypeError, ValueError):
        code = 0
    status = str(recipient.get("status", ""))[:40]
    message_id = str(recipient.get("messageId", ""))
    if code in ACCEPTED and message_id and message_id != "None":
        cost, currency = parse_cost(recipient.get("cost"))
        return SmsAccepted(message_id[:100], code, status, cost, currency)
    raise SmsError(
        f"Refused: {status or 'no status'} ({code})",
        permanent=code not in TRANSIENT,
        status=status,
        status_code=code,
    )
