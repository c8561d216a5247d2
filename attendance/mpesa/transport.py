"""What every Daraja call shares once it is on the wire: the error callers branch on, and how
an HTTP answer or a transport failure becomes one.

Split from client.py so that the client reads as the calls it makes. The one judgement made
here is the one money depends on: whether a request that failed may still have reached
Daraja (`may_have_reached_customer`), in which case it must never be sent again, only asked
about.
"""

from __future__ import annotations

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

INVALID_TOKEN = "404.001.03"  # noqa: S105  (an error code, not a secret)
STILL_PROCESSING = "500.001.1001"
# Rate limits and internal errors: Daraja did not act on the request; later may work.
RETRYABLE_CODES = {"500.003.02", "500.003.03", "500.003.1001", "503.001.01"}


class DarajaError(Exception):
    """Daraja refused, did not answer, or could not be reached.

    `may_have_reached_customer`: Daraja may have acted on the request (an STK push may still
    prompt the phone), so it must never be sent again; only Daraja can say how it ended.
    `sent`: the request left this process (False: nothing reached Daraja). `retryable`: the
    same request may succeed later.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        http_status: int | None = None,
        retryable: bool = False,
        sent: bool = True,
        may_have_reached_customer: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.retryable = retryable
        self.sent = sent
        self.may_have_reached_customer = may_have_reached_customer

    def __str__(self):
        return f"{self.code}: {self.message}" if self.code else self.message


class DarajaValidationError(DarajaError, ValueError):
    """The request was refused before sending: fix the input."""

    def __init__(self, message: str):
        super().__init__(message, code="invalid_request", retryable=False, sent=False)


def invalid_token(data: dict) -> bool:
    # Each API has its own code for it (404.001.03 STK, 400.003.01 Transaction Status,
    # 401.002.01 Account Balance); the message is the same.
    return data.get("errorCode") == INVALID_TOKEN or (
        "invalid access token" in str(data.get("errorMessage", "")).lower()
    )


def answer_code(response: requests.Response) -> str:
    """ "200", or Daraja's error code (500.003.02 is the spike arrest), or the status."""
    if response.status_code == 200:
        return "200"
    try:
        data = response.json()
    except ValueError:
        return str(response.status_code)
    code = data.get("errorCode") if isinstance(data, dict) else None
    return str(code or response.status_code)


def transport_error(error: requests.RequestException) -> DarajaError:
    if isinstance(error, requests.ConnectTimeout):
        return DarajaError(
            "Daraja could not be reached (connection timed out).",
            code="unreachable",
            retryable=True,
            sent=False,
        )
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError):
            return DarajaError(
                "Daraja could not be reached (connection refused).",
                code="unreachable",
                retryable=True,
                sent=False,
            )
        return DarajaError(
            "The connection to Daraja broke; the request may have been received.",
            code="connection_lost",
            may_have_reached_customer=True,
        )
    if isinstance(error, requests.Timeout):
        return DarajaError(
            "Daraja did not answer in time; the request may still have been received.",
            code="timeout",
            may_have_reached_customer=True,
        )
    return DarajaError(
        f"Daraja request failed: {error}", code="http_error", may_have_reached_customer=True
    )


def json_of(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def error_from(response: requests.Response, data: dict, *, default: str) -> DarajaError:
    code = str(data.get("errorCode") or "")
    message = str(data.get("errorMessage") or data.get("ResponseDescription") or default)
    if not data:
        message = f"{default} (HTTP {response.status_code}, not a Daraja answer)"
    return DarajaError(
        message,
        code=code or f"http_{response.status_code}",
        http_status=response.status_code,
        retryable=code in RETRYABLE_CODES or response.status_code in (429, 503),
        # Daraja's own refusal prompts nobody. A 5xx that is not Daraja's answer (a gateway
        # in between timing out, say) cannot tell: Daraja may have taken the request.
        may_have_reached_customer=not data and response.status_code >= 500,
    )
