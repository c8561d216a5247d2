"""Daraja's C2B (payments to our Paybill or Till from the SIM menu) and Pull Transactions:
reading what they send and the calls we make. Wire knowledge only, no models.

What Safaricom posts is hostile until proven otherwise, as for STK callbacks: anything that is
not a readable payment raises MalformedPaybill with the reason, never another exception.
Facts relied on (MPESA_CRM_IMPLEMENTATION.md, section 12): TransID is the receipt and the one
idempotency key; TransAmount is a string that may carry cents ("5.00"); MSISDN is masked (v2)
or a SHA-256 digest (v1) and is never read as a phone number; TransTime is Kenyan time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .b2c import Accepted, Initiator
from .callbacks import NAIROBI, clean_text
from .client import DarajaClient, whole_shillings
from .transport import DarajaError, DarajaValidationError

logger = logging.getLogger(__name__)

# M-Pesa receipts are ten letters and digits; Pull's sandbox sample is mixed case.
_RECEIPT = re.compile(r"^[A-Za-z0-9]{6,20}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Words Daraja refuses in a registered URL, in any case.
FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "exec", "cmd", "sql", "query")
PULL_PAGE = 100  # rows per Pull Transactions page (the parameter table's "101-200 ... 100")


class MalformedPaybill(ValueError):
    """Not a C2B payment we can read; the message says why."""


@dataclass(frozen=True)
class PaybillTransaction:
    """One payment as a confirmation, a validation request or a Pull row describes it."""

    receipt: str
    amount: Decimal
    paid_at: datetime | None
    bill_ref: str = ""
    msisdn: str = ""
    transaction_type: str = ""
    short_code: str = ""
    payer_name: str = ""
    org_balance: Decimal | None = None

    @property
    def msisdn_digest(self) -> str:
        """The v1 MSISDN when it is a SHA-256 digest, lower case; "" otherwise (masked v2)."""
        value = self.msisdn.strip().lower()
        return value if _SHA256.match(value) else ""


def phone_digest(phone: str) -> str:
    """How a v1 C2B MSISDN hides a number: SHA-256 of the 12 digits (2547XXXXXXXX), in hex.
    Integrators match on exactly this; Daraja's FAQ sample is garbled (*unconfirmed*)."""
    return hashlib.sha256(phone.encode()).hexdigest()


def _text(value: Any, limit: int) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return clean_text(str(value), limit)


def _amount(value: Any, *, required: bool = True) -> Decimal | None:
    if value in (None, "") and not required:
        return None
    if isinstance(value, bool | dict | list):
        raise MalformedPaybill("The amount is not a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedPaybill("The amount is not a number.")
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError) as error:
        raise MalformedPaybill(f"The amount {str(value)[:30]!r} is not a number.") from error
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise MalformedPaybill("The amount is not in shillings and cents.")
    if required and amount <= 0:
        raise MalformedPaybill("The amount is not positive.")
    if abs(amount) >= 10**9:
        raise MalformedPaybill("The amount is too large to be a payment.")
    return amount


def _receipt(value: Any) -> str:
    receipt = _text(value, 40).strip()
    if not _RECEIPT.match(receipt):
        raise MalformedPaybill(f"TransID {receipt[:30]!r} is not an M-Pesa receipt.")
    return receipt


def _trans_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value).strip(), "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
    except ValueError:
        return None  # kept without a time; we match on the receipt, never on the time


def parse_paybill_body(body: bytes | str) -> PaybillTransaction:
    """A confirmation or validation body (the same fields) as a transaction."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise MalformedPaybill("Not JSON.") from error
    if not isinstance(data, dict):
        raise MalformedPaybill("Not a JSON object.")
    names = (_text(data.get(key), 40) for key in ("FirstName", "MiddleName", "LastName"))
    return PaybillTransaction(
        receipt=_receipt(data.get("TransID")),
        amount=_amount(data.get("TransAmount")) or Decimal(0),
        paid_at=_trans_time(data.get("TransTime")),
        bill_ref=_text(data.get("BillRefNumber"), 40).strip(),
        msisdn=_text(data.get("MSISDN"), 80).strip(),
        transaction_type=_text(data.get("TransactionType"), 30),
        short_code=_text(data.get("BusinessShortCode"), 12),
        payer_name=" ".join(name for name in names if name)[:120],
        org_balance=_balance(data.get("OrgAccountBalance")),
    )


def _balance(value: Any) -> Decimal | None:
    try:
        return _amount(value, required=False)
    except MalformedPaybill:
        return None  # blank in validation; never worth refusing a payment over


def parse_pull_row(row: Any) -> PaybillTransaction:
    """One Pull Transactions row (`transactionId`, `trxDate`, `amount` string or number ...)."""
    if not isinstance(row, dict):
        raise MalformedPaybill("A Pull row is not a JSON object.")
    paid_at = None
    raw_date = str(row.get("trxDate") or "").strip()
    if raw_date:
        try:
            # Whether the Z is really UTC is unconfirmed; it is kept as sent, never matched on.
            paid_at = datetime.fromisoformat(raw_date.replace("Z", "+00:00"))
            if paid_at.tzinfo is None:
                paid_at = paid_at.replace(tzinfo=NAIROBI)
        except ValueError:
            paid_at = None
    return PaybillTransaction(
        receipt=_receipt(row.get("transactionId")),
        amount=_amount(row.get("amount")) or Decimal(0),
        paid_at=paid_at,
        bill_ref=_text(row.get("billreference"), 40).strip(),
        msisdn=_text(row.get("msisdn"), 80).strip(),
        transaction_type=_text(row.get("transactiontype"), 30),
        payer_name=_text(row.get("sender"), 120),
    )


def pull_rows(data: dict) -> list[dict]:
    """The rows of a Pull answer, whatever the nesting (`Response` or `Transaction`, a list
    of lists, or the string "[[]]"); [] for 1001 ("no records")."""
    if str(data.get("ResponseCode", "")).strip() == "1001":
        return []
    found = data.get("Response", data.get("Transaction", []))
    if isinstance(found, str):
        try:
            found = json.loads(found)
        except ValueError:
            return []
    rows: list[dict] = []
    stack = [found]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            rows.append(item)
    return rows


def check_registered_url(name: str, url: str) -> None:
    """Daraja refuses URLs with certain words, and any that is not absolute."""
    if not url.startswith(("https://", "http://")) or " " in url:
        raise DarajaValidationError(f"{name} must be an absolute URL without spaces.")
    lowered = url.lower()
    for word in FORBIDDEN_URL_WORDS:
        if word in lowered:
            raise DarajaValidationError(f"{name} contains {word!r}, which Daraja refuses.")


@dataclass(frozen=True)
class Registered:
    """What a registration call answered: `already` when Daraja says it was done before."""

    already: bool
    description: str


class PaybillClient(DarajaClient):
    """C2B URL registration and Pull Transactions, with the OAuth and HTTP of DarajaClient."""

    def register_urls(
        self,
        *,
        version: str,
        short_code: str,
        confirmation_url: str,
        validation_url: str,
        response_type: str = "Completed",
    ) -> Registered:
        if version not in ("v1", "v2"):
            raise DarajaValidationError("The C2B API version is v1 or v2.")
        if response_type not in ("Completed", "Cancelled"):
            raise DarajaValidationError("ResponseType is Completed or Cancelled.")
        check_registered_url("ConfirmationURL", confirmation_url)
        check_registered_url("ValidationURL", validation_url)
        body = {
            "ShortCode": short_code,
            "ResponseType": response_type,
            "ConfirmationURL": confirmation_url,
            "ValidationURL": validation_url,
        }
        try:
            data = self._authorised_post(
                f"/mpesa/c2b/{version}/registerurl", body, safe_to_retry=True
            )
        except DarajaError as error:
            if "already registered" in error.message.lower():
                return Registered(already=True, description=error.message)
            raise
        if str(data.get("ResponseCode", "")) != "0":
            raise DarajaError(
                str(data.get("ResponseDescription") or "Daraja did not register the URLs."),
                code=str(data.get("ResponseCode", "")),
            )
        return Registered(already=False, description=str(data.get("ResponseDescription", "")))

    def pull_register(
        self, *, short_code: str, nominated_number: str, callback_url: str
    ) -> Registered:
        check_registered_url("CallBackURL", callback_url)
        body = {
            "ShortCode": short_code,
            "RequestType": "Pull",
            "NominatedNumber": nominated_number,
            "CallBackURL": callback_url,
        }
        data = self._authorised_post("/pulltransactions/v1/register", body, safe_to_retry=True)
        # The page's table spells the keys with spaces; integrators see both.
        status = str(data.get("ResponseStatus", data.get("Response Status", "")))
        description = str(data.get("ResponseDescription", data.get("Response Description", "")))
        if status == "1001":
            return Registered(already=True, description=description)
        if status != "1000":
            raise DarajaError(description or "Daraja did not register Pull.", code=status)
        return Registered(already=False, description=description)

    def pull_query(
        self, *, short_code: str, start: datetime, end: datetime, offset: int = 0
    ) -> dict:
        """One page of Pull Transactions between `start` and `end` (Kenyan time), as sent.
        Safe to repeat. `offset` counts rows (0, 100, ...), as the parameter table says."""
        body = {
            "ShortCode": short_code,
            "StartDate": start.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S"),
            "EndDate": end.astimezone(NAIROBI).strftime("%Y-%m-%d %H:%M:%S"),
            "OffSetValue": str(offset),
        }
        return self._authorised_post("/pulltransactions/v1/query", body, safe_to_retry=True)

    def reversal(
        self,
        *,
        initiator: Initiator,
        receipt: str,
        amount: Decimal,
        result_url: str,
        queue_timeout_url: str,
        remarks: str,
    ) -> Accepted:
        """Ask M-Pesa to give a Paybill payment back to its payer. Accepted is not reversed:
        the result comes to `result_url`. Never sent twice by this client: the request has no
        id of ours, so anything after sending that does not prove a refusal raises with
        `may_have_reached_customer` (a second request would be answered R000001).
        """
        if not _RECEIPT.match(receipt):
            raise DarajaValidationError("TransactionID must be the payment's M-Pesa receipt.")
        shillings = whole_shillings(amount)  # the full amount; partial refunds are B2C
        remarks = remarks.strip()[:100]
        if len(remarks) < 2:
            remarks = "Payment reversal"
        for name, url in (("ResultURL", result_url), ("QueueTimeOutURL", queue_timeout_url)):
            check_registered_url(name, url)
        body = {
            "Initiator": initiator.name,
            "SecurityCredential": initiator.security_credential,
            "CommandID": "TransactionReversal",
            "TransactionID": receipt,
            "Amount": str(shillings),
            "ReceiverParty": self.config.short_code,
            # Safaricom's misspelling: the correct spelling is refused as an invalid field.
            "RecieverIdentifierType": "11",
            "ResultURL": result_url,
            "QueueTimeOutURL": queue_timeout_url,
            "Remarks": remarks,
        }
        logger.info("Reversal of %s (KES %s) requested", receipt, shillings)
        try:
            data = self._authorised_post("/mpesa/reversal/v1/request", body, safe_to_retry=False)
        except DarajaError as error:
            refused = (
                not error.sent
                or (error.http_status is not None and 400 <= error.http_status < 500)
                or error.code in ("500.003.02", "500.003.03")
            )
            if refused:
                raise
            raise DarajaError(
                f"{error.message} M-Pesa may have reversed it: check before asking again.",
                code=error.code,
                http_status=error.http_status,
                may_have_reached_customer=True,
            ) from error
        if str(data.get("ResponseCode")) != "0" or not data.get("ConversationID"):
            raise DarajaError(
                str(data.get("ResponseDescription") or "Daraja did not accept the reversal."),
                code=str(data.get("ResponseCode", "")) or "unreadable",
                may_have_reached_customer=not data or str(data.get("ResponseCode")) == "0",
            )
        return Accepted(
            conversation_id=str(data["ConversationID"]),
            originator_conversation_id=str(data.get("OriginatorConversationID", "")),
            response_description=str(data.get("ResponseDescription", "")),
        )
