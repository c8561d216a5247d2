"""A thin client for Safaricom's Daraja API: OAuth, M-Pesa Express (STK push), and the HTTP
machinery every call shares (B2C payouts and their queries: b2c.py).

It knows HTTP and the wire format and nothing about our models; MPESA_CRM_IMPLEMENTATION.md
says which Daraja facts it relies on. What it guarantees:

- one OAuth token per lifetime across all processes, kept in the shared cache and refreshed
  shortly before it expires, under a lock so that many workers do not fetch at once;
- a timeout on every call;
- an STK push is never sent twice once it may have reached Daraja (the one exception: Daraja
  said the token was invalid, which it decides before looking at the push);
- errors are `DarajaError` with Daraja's errorCode and message, and one flag callers branch
  on: `may_have_reached_customer` (the prompt may still reach the phone; for a payout, money
  may have moved). `sent` says whether the request left us at all, `retryable` whether the
  same request may succeed later.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import requests
from django.core.cache.backends.base import BaseCache

from attendance.phones import mask_phone, normalise_phone

from .callbacks import result_code_text
from .rate import FAMILY_OF_PATH, DarajaRate, app_fingerprint
from .transport import (
    STILL_PROCESSING,
    DarajaError,
    DarajaValidationError,
    answer_code,
    error_from,
    invalid_token,
    json_of,
    transport_error,
)

logger = logging.getLogger(__name__)

NAIROBI = ZoneInfo("Africa/Nairobi")
HOSTS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}
PAYBILL = "CustomerPayBillOnline"
MIN_AMOUNT, MAX_AMOUNT = 1, 250_000


@dataclass(frozen=True)
class DarajaConfig:
    base_url: str
    consumer_key: str
    consumer_secret: str
    short_code: str
    pass_key: str
    transaction_type: str = PAYBILL
    party_b: str = ""  # the till number for CustomerBuyGoodsOnline; the shortcode otherwise
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    token_margin_seconds: int = 120

    @property
    def receiving_party(self) -> str:
        return self.party_b or self.short_code


@dataclass(frozen=True)
class StkPushAccepted:
    merchant_request_id: str
    checkout_request_id: str
    response_description: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """`result_code` (text, as in the callback) is None while the customer has not answered."""

    result_code: str | None
    result_description: str

    @property
    def pending(self) -> bool:
        return self.result_code is None


def daraja_timestamp(now: datetime | None = None) -> str:
    """`YYYYMMDDHHmmss` in Kenyan time, 24-hour clock (a `%I` here breaks every afternoon)."""
    return (now or datetime.now(tz=NAIROBI)).astimezone(NAIROBI).strftime("%Y%m%d%H%M%S")


def daraja_password(short_code: str, pass_key: str, timestamp: str) -> str:
    return base64.b64encode(f"{short_code}{pass_key}{timestamp}".encode()).decode()


def whole_shillings(amount: object) -> int:
    """The amount as whole shillings within Daraja's limits; DarajaValidationError otherwise."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError) as error:
        raise DarajaValidationError("The amount must be a number of shillings.") from error
    if value != value.to_integral_value():
        raise DarajaValidationError("M-Pesa takes whole shillings only (no cents).")
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise DarajaValidationError(
            f"The amount must be between KES {MIN_AMOUNT} and KES {MAX_AMOUNT:,}."
        )
    return int(value)


class DarajaClient:
    def __init__(
        self,
        config: DarajaConfig,
        *,
        cache: BaseCache,
        session: requests.Session | None = None,
        rate: DarajaRate | None = None,
        observe: Callable[[str, str], None] | None = None,
    ):
        self.config = config
        self.cache = cache
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json"})
        # Shared by every process of the deployment when it lives in Redis (rate.py).
        self.rate = rate
        # Told each answer's API family and code (the metrics count them).
        self.observe = observe
        fingerprint = self._app = app_fingerprint(config.base_url, config.consumer_key)
        self._token_key = f"mpesa:token:{fingerprint}"
        self._lock_key = f"mpesa:token-lock:{fingerprint}"

    # --- OAuth ------------------------------------------------------------------------------
    def access_token(self, *, force_refresh: bool = False, stale: str | None = None) -> str:
        """A valid token, from the shared cache when possible.

        `stale`: a token Daraja has just refused; it is dropped only if the cache still holds
        it (another process may already have stored a fresh one). Raises DarajaError; when the
        shared cache itself is unreachable, one that says nothing was sent (`sent=False`):
        fetching a token per process instead could invalidate everyone else's.
        """
        try:
            return self._access_token(force_refresh=force_refresh, stale=stale)
        except DarajaError:
            raise
        except Exception as error:  # the cache backend (Redis) is down
            raise DarajaError(
                "The M-Pesa token store is unreachable; nothing was sent.",
                code="unavailable",
                retryable=True,
                sent=False,
            ) from error

    def _access_token(self, *, force_refresh: bool, stale: str | None) -> str:
        if stale is not None and self.cache.get(self._token_key) == stale:
            self.cache.delete(self._token_key)
        if not force_refresh:
            token = self.cache.get(self._token_key)
            if token:
                return token
        # One process fetches; the others wait for its token instead of stampeding Daraja
        # (a new token may invalidate the previous one).
        deadline = time.monotonic() + self.config.connect_timeout + self.config.read_timeout
        while not self.cache.add(self._lock_key, "1", timeout=30):
            time.sleep(0.05)
            token = self.cache.get(self._token_key)
            if token and not force_refresh:
                return token
            if time.monotonic() > deadline:
                break  # the lock holder died; fetch ourselves
        try:
            token = self.cache.get(self._token_key)
            if token and not force_refresh:
                return token
            token, lifetime = self._fetch_token()
            self.cache.set(
                self._token_key, token, timeout=max(lifetime - self.config.token_margin_seconds, 30)
            )
            return token
        finally:
            self.cache.delete(self._lock_key)

    def _fetch_token(self) -> tuple[str, int]:
        credentials = base64.b64encode(
            f"{self.config.consumer_key}:{self.config.consumer_secret}".encode()
        ).decode()
        response = self._send(
            "GET",
            "/oauth/v1/generate",
            params={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {credentials}"},
            safe_to_retry=True,
        )
        data = json_of(response)
        token = data.get("access_token")
        if response.status_code != 200 or not token:
            raise error_from(response, data, default="Daraja refused the credentials.")
        try:
            # The portal shows a number; live and mock servers send a string.
            lifetime = int(float(data.get("expires_in", 3599)))
        except (TypeError, ValueError):
            lifetime = 3599
        logger.info("Fetched a Daraja access token valid for %s s", lifetime)
        return token, lifetime

    # --- STK push and query -----------------------------------------------------------------
    def stk_push(
        self,
        *,
        phone: str,
        amount: int,
        account_reference: str,
        transaction_desc: str,
        callback_url: str,
    ) -> StkPushAccepted:
        """Send the payment prompt to `phone`. Never retried once it may have reached Daraja.

        Raises DarajaValidationError for bad input (nothing sent) and DarajaError otherwise.
        """
        try:
            phone = normalise_phone(phone)
        except Exception as error:
            raise DarajaValidationError(
                "M-Pesa needs a Safaricom number such as 0712 345 678."
            ) from error
        shillings = whole_shillings(amount)
        account_reference = account_reference.strip()
        transaction_desc = transaction_desc.strip()
        if not 1 <= len(account_reference) <= 12:
            raise DarajaValidationError("AccountReference must be 1 to 12 characters.")
        if not 1 <= len(transaction_desc) <= 13:
            raise DarajaValidationError("TransactionDesc must be 1 to 13 characters.")
        if not callback_url.startswith(("https://", "http://")) or " " in callback_url:
            raise DarajaValidationError("CallBackURL must be an absolute URL without spaces.")
        timestamp = daraja_timestamp()
        body = {
            "BusinessShortCode": self.config.short_code,
            "Password": daraja_password(self.config.short_code, self.config.pass_key, timestamp),
            "Timestamp": timestamp,
            "TransactionType": self.config.transaction_type,
            "Amount": shillings,
            "PartyA": phone,
            "PartyB": self.config.receiving_party,
            "PhoneNumber": phone,
            "CallBackURL": callback_url,
            "AccountReference": account_reference,
            "TransactionDesc": transaction_desc,
        }
        logger.info("STK push of KES %s to %s", shillings, mask_phone(phone))
        data = self._authorised_post("/mpesa/stkpush/v1/processrequest", body, safe_to_retry=False)
        if str(data.get("ResponseCode")) != "0" or not data.get("CheckoutRequestID"):
            # An accepted push whose id we cannot read, or an answer we cannot read at all,
            # may still prompt the phone; a ResponseCode other than "0" is a refusal.
            unreadable = not data or str(data.get("ResponseCode")) == "0"
            raise DarajaError(
                data.get("ResponseDescription") or "Daraja did not accept the payment request.",
                code=str(data.get("ResponseCode", "")) or "unreadable",
                retryable=False,
                may_have_reached_customer=unreadable,
            )
        return StkPushAccepted(
            merchant_request_id=str(data.get("MerchantRequestID", "")),
            checkout_request_id=str(data["CheckoutRequestID"]),
            response_description=str(data.get("ResponseDescription", "")),
            customer_message=str(data.get("CustomerMessage", "")),
        )

    def stk_query(self, *, checkout_request_id: str) -> StkQueryResult:
        """Ask Daraja how a push ended. Safe to repeat.

        Returns a pending result while the customer has not answered ("The transaction is
        being processed"); raises DarajaError for anything else that is not an answer.
        """
        timestamp = daraja_timestamp()
        body = {
            "BusinessShortCode": self.config.short_code,
            "Password": daraja_password(self.config.short_code, self.config.pass_key, timestamp),
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        }
        try:
            data = self._authorised_post("/mpesa/stkpushquery/v1/query", body, safe_to_retry=True)
        except DarajaError as error:
            if error.code == STILL_PROCESSING and "process" in error.message.lower():
                return StkQueryResult(result_code=None, result_description=error.message)
            raise
        # ResponseCode "0" only says the query was accepted; the outcome is ResultCode.
        if "ResultCode" not in data:
            raise DarajaError("Daraja's query answer has no ResultCode.", retryable=True)
        code = result_code_text(data["ResultCode"])
        if code is None:
            raise DarajaError(f"Unexpected ResultCode {data['ResultCode']!r}.")
        return StkQueryResult(result_code=code, result_description=str(data.get("ResultDesc", "")))

    # --- HTTP ---------------------------------------------------------------------------------
    def _authorised_post(self, path: str, body: dict, *, safe_to_retry: bool) -> dict:
        token = self.access_token()
        response = self._post_json(path, body, token, safe_to_retry=safe_to_retry)
        data = json_of(response)
        if response.status_code in (400, 401, 404) and invalid_token(data):
            # Refused at the door, so even a push can be sent again: once, with a new token.
            token = self.access_token(stale=token)
            response = self._post_json(path, body, token, safe_to_retry=safe_to_retry)
            data = json_of(response)
        if response.status_code != 200:
            raise error_from(response, data, default="Daraja refused the request.")
        return data

    def _post_json(self, path, body, token, *, safe_to_retry):
        return self._send(
            "POST",
            path,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            safe_to_retry=safe_to_retry,
        )

    def _send(
        self, method: str, path: str, *, safe_to_retry: bool, **kwargs: Any
    ) -> requests.Response:
        attempts = 3 if safe_to_retry else 1
        url = self.config.base_url.rstrip("/") + path
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        family = FAMILY_OF_PATH.get(path)
        for attempt in range(1, attempts + 1):
            if self.rate is not None and family is not None:
                self.rate.wait(self._app, family)  # each attempt is a call Daraja counts
            try:
                response = self.session.request(method, url, timeout=timeout, **kwargs)
            except requests.RequestException as error:
                failure = transport_error(error)
                self._observed(family, failure.code)
                if attempt < attempts and (failure.retryable or not failure.sent):
                    time.sleep(0.2 * attempt)
                    continue
                raise failure from error
            self._observed(family, answer_code(response))
            if safe_to_retry and response.status_code >= 500 and attempt < attempts:
                data = json_of(response)
                if data.get("errorCode") != STILL_PROCESSING:
                    time.sleep(0.2 * attempt)
                    continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _observed(self, family: str | None, code: str) -> None:
        if self.observe is not None and family is not None:
            self.observe(family, code)
