"""Sending one web push: pywebpush encrypts the payload for the subscription (aes128gcm, RFC
8291) and signs a VAPID JWT for the push service's origin (RFC 8292); this turns the push
service's answer into what the outbox needs to know.

Pitfalls of pywebpush 2.5 this avoids (found by running it): its claims dict is changed in
place (a fresh one per push, or a second push service gets the first one's audience), and it
sends TTL 0 and waits forever unless told otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from pywebpush import WebPushException, webpush


class PushError(Exception):
    """The push service did not take the message. `gone`: the subscription is dead (404 or
    410: remove it); `permanent`: this message will never go as it stands; otherwise try
    again later (`retry_after` seconds when the service said)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        gone: bool = False,
        permanent: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status, self.gone, self.permanent = status, gone, permanent or gone
        self.retry_after = retry_after


@dataclass(frozen=True)
class PushClient:
    private_key: str  # base64url raw 32 bytes (keys.py)
    subject: str  # mailto: or https: contact for the push service's operator
    timeout: float = 10.0

    def send(
        self,
        subscription: dict,
        payload: dict,
        *,
        ttl: int,
        urgency: str = "normal",
        topic: str = "",
    ) -> int:
        """Push `payload` (JSON) to one subscription; the push service's status (201) or
        PushError."""
        headers = {"Urgency": urgency}
        if topic:
            headers["Topic"] = topic[:32]
        try:
            response = webpush(
                subscription_info=subscription,
                data=json.dumps(payload, separators=(",", ":")),
                vapid_private_key=self.private_key,
                vapid_claims={"sub": self.subject},
                ttl=max(0, int(ttl)),
                timeout=self.timeout,
                headers=headers,
            )
        except WebPushException as error:
            raise _classified(error) from error
        except requests.RequestException as error:
            raise PushError(f"Push service unreachable: {type(error).__name__}") from error
        return response.status_code


def _classified(error: WebPushException) -> PushError:
    status = getattr(error.response, "status_code", None)
    text = f"Push service answered {status}" if status else f"Push refused: {error.message}"
    if status in (404, 410):
        return PushError(text, status=status, gone=True)
    if status == 429 or (status is not None and status >= 500):
        return PushError(text, status=status, retry_after=_seconds(error.retry_after))
    # 400, 413: the message itself; 401, 403: our VAPID key; None: a stored key is unusable.
    return PushError(text, status=status, permanent=True, gone=status is None)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the outbox's backoff decides
