"""Reading the asynchronous results of B2C, Transaction Status and Account Balance.

All three arrive as `{"Result": {...}}` at the ResultURL (a queue timeout, at the
QueueTimeOutURL, is expected in the same envelope and read defensively). Wire facts from
Daraja's documentation: success is `ResultCode == 0` alone (a failed payout carries a
TransactionID too), codes come as numbers or strings, parameters are read by Key (one object
or a list), money through Decimal(str(value)).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
# C0 controls and DEL: no Daraja field carries them, PostgreSQL text cannot hold NUL, and a
# row that cannot be saved would be retried for ever. Stripped when read.
_CONTROLS = dict.fromkeys([*range(0, 32), 127])


def text(value: Any, limit: int) -> str:
    """A field as storable text: controls removed, cut to `limit` characters."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).translate(_CONTROLS).strip()[:limit]


class ResultFormatError(ValueError):
    """Not a Daraja result body."""


@dataclass(frozen=True)
class Result:
    result_code: str
    description: str
    originator_conversation_id: str
    conversation_id: str
    transaction_id: str
    parameters: tuple[tuple[str, Any], ...]

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"

    def first(self, key: str) -> Any:
        for name, value in self.parameters:
            if name == key:
                return value
        return None


def parse_result(body: Any) -> Result:
    if not isinstance(body, dict) or not isinstance(body.get("Result"), dict):
        raise ResultFormatError("No Result object.")
    result = body["Result"]
    code = result.get("ResultCode")
    if code is None or isinstance(code, (dict, list, bool)):
        raise ResultFormatError("No ResultCode.")
    container = result.get("ResultParameters")
    items = container.get("ResultParameter") if isinstance(container, dict) else None
    if isinstance(items, dict):
        items = [items]  # one parameter may come as an object, not a list
    if not isinstance(items, list):
        items = []  # absent, or a shape Daraja does not send (a string): no parameters
    parameters = tuple(
        (text(item.get("Key"), 100), _value(item.get("Value")))
        for item in items
        if isinstance(item, dict) and "Key" in item
    )
    return Result(
        result_code=text(code, 20),
        description=text(result.get("ResultDesc", ""), 255),
        originator_conversation_id=text(result.get("OriginatorConversationID"), 100),
        conversation_id=text(result.get("ConversationID"), 100),
        transaction_id=text(result.get("TransactionID"), 40),
        parameters=parameters,
    )


def _value(value: Any) -> Any:
    return text(value, 500) if isinstance(value, str) else value


def money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _time(value: Any, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(str(value), fmt).replace(tzinfo=NAIROBI)
    except ValueError:
        return None


@dataclass(frozen=True)
class Payout:
    """What a B2C result says of one payout."""

    result: Result
    amount: Decimal | None
    receipt: str
    receiver: str
    completed_at: datetime | None
    utility_balance: Decimal | None


def b2c_payout(result: Result) -> Payout:
    return Payout(
        result=result,
        amount=money(result.first("TransactionAmount")),
        receipt=text(result.first("TransactionReceipt") or result.transaction_id, 40)
        if result.succeeded
        else "",
        receiver=text(result.first("ReceiverPartyPublicName"), 200),
        # DD.MM.YYYY HH:MM:SS, day first, unlike STK's YYYYMMDDHHmmss.
        completed_at=_time(result.first("TransactionCompletedDateTime"), "%d.%m.%Y %H:%M:%S"),
        utility_balance=money(result.first("B2CUtilityAccountAvailableFunds")),
    )


# Transaction Status: the original's final states. Anything else (Initiated, Authorized,
# Pending...) is still open: ask again later.
PAID_STATES = {"completed"}
UNPAID_STATES = {"cancelled", "declined", "expired", "failed"}


@dataclass(frozen=True)
class Status:
    """What Transaction Status says of the original transaction."""

    result: Result
    original_conversation_id: str
    state: str
    receipt: str
    amount: Decimal | None

    @property
    def paid(self) -> bool:
        return self.result.succeeded and self.state.lower() in PAID_STATES

    @property
    def not_paid(self) -> bool:
        return self.result.succeeded and self.state.lower() in UNPAID_STATES


def transaction_status(result: Result) -> Status:
    # Correlate on the parameter: the envelope's ids are the query's own.
    return Status(
        result=result,
        original_conversation_id=text(result.first("OriginatorConversationID"), 100),
        state=text(result.first("TransactionStatus"), 40),
        receipt=text(result.first("ReceiptNo"), 40),
        amount=money(result.first("Amount")),
    )


def account_balances(result: Result) -> dict[str, Decimal]:
    """{account name: available funds}, from `Name|KES|available|...&Name|...`."""
    balances: dict[str, Decimal] = {}
    for part in str(result.first("AccountBalance") or "").split("&"):
        fields = part.split("|")
        if len(fields) >= 3 and (amount := money(fields[2])) is not None:
            balances[fields[0].strip()] = amount
    return balances
