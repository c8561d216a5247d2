"""Reading what Safaricom POSTs to our CallBackURL (MPESA_CRM_IMPLEMENTATION.md, section 1).

Wire knowledge only: no models. Callbacks are not signed, so the body is hostile until proven
otherwise: anything that is not a well-formed STK callback raises MalformedCallback with the
reason, never another exception, whatever the body (lists where objects belong, unhashable
names, deep nesting, NaN, NUL characters, numbers too long to read).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
# Daraja's ids are letters, digits, "_" and "-" (ws_CO_191220191020363925, 29115-34620561-1).
_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# NUL cannot be stored in PostgreSQL text, and other control characters only hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MalformedCallback(ValueError):
    """Not an STK callback we can read; the message says why."""


@dataclass(frozen=True)
class StkResult:
    merchant_request_id: str
    checkout_request_id: str
    # Text: a number in most callbacks, but Daraja also sends codes such as "SFC_IC0003"
    # (a misconfigured till); any code but "0" is a failure with its description.
    result_code: str
    result_description: str
    # A success's metadata. `amount` is exactly what was sent (it may be 0, negative or carry
    # fractions of a shilling in a hostile body: settlement decides what to make of it).
    amount: Decimal | None = None
    receipt_number: str = ""
    transaction_date: datetime | None = None
    phone: str = ""

    @property
    def succeeded(self) -> bool:
        return self.result_code == "0"


_CODE = re.compile(r"^(?=.*[0-9])[A-Za-z0-9_.-]{1,20}$")  # codes carry a digit


def result_code_text(code: object) -> str | None:
    """A ResultCode as text ("0", "1032", "SFC_IC0003"), or None when it is not a code.
    Numbers lose leading zeros and signs of formatting ("00" is "0")."""
    text = str(code).strip()
    if not _CODE.match(text):
        return None
    return str(int(text)) if text.isdigit() else text


def clean_text(value: object, limit: int) -> str:
    """A wire value as storable, readable text: control characters (NUL included) removed."""
    return _CONTROL.sub("", str(value))[:limit]


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number")


def _load(body: bytes) -> Any:
    try:
        # Amounts keep their exact digits (a float would turn 300.001 into 300.00099...).
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError, TypeError) as error:
        raise MalformedCallback("Not JSON.") from error


def parse_stk_callback(body: bytes) -> StkResult:
    """Read Safaricom's callback body. Items are read by Name, never by position.

    Raises MalformedCallback with the reason when the body is not an STK callback.
    """
    data = _load(body)
    wrapper = data.get("Body") if isinstance(data, dict) else None
    callback = wrapper.get("stkCallback") if isinstance(wrapper, dict) else None
    if not isinstance(callback, dict):
        raise MalformedCallback("Not an STK callback (Body.stkCallback missing).")
    checkout = callback.get("CheckoutRequestID")
    if not isinstance(checkout, str) or not _ID.match(checkout):
        raise MalformedCallback("CheckoutRequestID is missing or invalid.")
    code = callback.get("ResultCode")
    # A number in callbacks (a string in query answers), or a short code word; never a bool,
    # a fraction or an object.
    if isinstance(code, bool) or not isinstance(code, int | str):
        raise MalformedCallback("ResultCode is missing or not a code.")
    result_code = result_code_text(code)
    if result_code is None:
        raise MalformedCallback("ResultCode is missing or not a code.")
    result = StkResult(
        merchant_request_id=clean_text(callback.get("MerchantRequestID", ""), 64),
        checkout_request_id=checkout,
        result_code=result_code,
        result_description=clean_text(callback.get("ResultDesc", ""), 500),
    )
    if not result.succeeded:
        return result
    values = _metadata(callback.get("CallbackMetadata"))
    amount = values.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal | str):
        raise MalformedCallback("A successful callback without a valid Amount.")
    try:
        amount = Decimal(str(amount).strip())
    except InvalidOperation as error:
        raise MalformedCallback("A successful callback without a valid Amount.") from error
    if not amount.is_finite():
        raise MalformedCallback("A successful callback without a valid Amount.")
    receipt = clean_text(values.get("MpesaReceiptNumber") or "", 20)
    if not _ID.match(receipt):
        raise MalformedCallback("A successful callback without MpesaReceiptNumber.")
    return replace(
        result,
        amount=amount,
        receipt_number=receipt,
        transaction_date=daraja_datetime(values.get("TransactionDate")),
        phone=_callback_phone(values.get("PhoneNumber")),
    )


def _metadata(metadata: object) -> dict[str, Any]:
    """CallbackMetadata.Item as {Name: Value}; items without a Value (Balance) are skipped."""
    items = metadata.get("Item") if isinstance(metadata, dict) else None
    if not isinstance(items, list):
        raise MalformedCallback("A successful callback without CallbackMetadata.Item.")
    return {
        item["Name"]: item["Value"]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("Name"), str) and "Value" in item
    }


def daraja_datetime(value: object) -> datetime | None:
    """TransactionDate, a number like 20191219102115 in Kenyan time; None if it is not one.

    Sliced by hand: strptime was a tenth of the callback endpoint's time.
    """
    if isinstance(value, Decimal | float):
        if not math.isfinite(value) or value != int(value):
            return None
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    digits = str(value).strip()
    if len(digits) != 14 or not digits.isdigit():
        return None
    try:
        year, month, day = int(digits[:4]), int(digits[4:6]), int(digits[6:8])
        hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
        return datetime(year, month, day, hour, minute, second, tzinfo=NAIROBI)
    except ValueError:
        return None


def _callback_phone(value: object) -> str:
    # Sent as a number; some deployments see it masked ("2547***149"): keep what came.
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    return clean_text(value, 15)
