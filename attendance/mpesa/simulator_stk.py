"""The STK push's wire shapes in the local Daraja simulator: the push it remembers, what Daraja
refuses in a push body, and the callback it posts (simulator.py serves them over HTTP)."""

from __future__ import annotations

import json
import logging
import random
import string
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)
NAIROBI = ZoneInfo("Africa/Nairobi")


@dataclass
class Push:
    checkout_request_id: str
    merchant_request_id: str
    phone: str
    amount: int
    callback_url: str
    outcome: tuple
    answer_at: float
    receipt: str = field(
        default_factory=lambda: "".join(
            random.choices(string.ascii_uppercase + string.digits, k=10)
        )
    )


def invalid_push_field(data: dict) -> str:
    """The first field Daraja would call invalid in an STK push body, or ""."""
    amount = data.get("Amount")
    if isinstance(amount, str) and amount.isdigit():
        amount = int(amount)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= 250000:
        return "Amount"
    if data.get("TransactionType") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        return "TransactionType"
    for name in ("PartyA", "PhoneNumber"):
        value = str(data.get(name, ""))
        if not (len(value) == 12 and value.isdigit() and value[:4] in ("2547", "2541")):
            return name
    if not str(data.get("PartyB", "")).isdigit():
        return "PartyB"
    callback_url = str(data.get("CallBackURL", ""))
    if not callback_url.startswith(("http://", "https://")) or " " in callback_url:
        return "CallBackURL"
    if not 1 <= len(str(data.get("AccountReference", ""))) <= 12:
        return "AccountReference"
    if not 1 <= len(str(data.get("TransactionDesc", ""))) <= 13:
        return "TransactionDesc"
    return ""


def callback_body(push: Push) -> dict:
    name, code, description = push.outcome
    callback = {
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": code,
        "ResultDesc": description,
    }
    if code == 0:
        amount = push.amount - 1 if name == "underpaid" else push.amount
        callback["CallbackMetadata"] = {
            "Item": [
                {"Name": "Amount", "Value": float(amount)},
                {"Name": "MpesaReceiptNumber", "Value": push.receipt},
                {"Name": "Balance"},
                {
                    "Name": "TransactionDate",
                    "Value": int(datetime.now(tz=NAIROBI).strftime("%Y%m%d%H%M%S")),
                },
                {"Name": "PhoneNumber", "Value": int(push.phone)},
            ]
        }
    return {"Body": {"stkCallback": callback}}


def send_callback(state: Any, push: Push, times: int) -> None:
    body = json.dumps(callback_body(push)).encode()
    for _ in range(times):
        # The URL came from our own push request and was checked to be http(s) there.
        request = urllib.request.Request(  # noqa: S310
            push.callback_url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                response.read()
        except Exception as error:
            # Safaricom does not retry undelivered callbacks; neither do we.
            logger.warning("simulator: callback to %s failed: %s", push.callback_url, error)
        state.count("callbacks_sent")
