"""Reversal in the local Daraja simulator: `POST /mpesa/reversal/v1/request`, checked as
Daraja does (the misspelt `RecieverIdentifierType`, the operator's credential), answered at
once with M-Pesa's ids, and the result POSTed to the ResultURL after a short delay:

- a Paybill payment the simulator took, reversed for the first time: success, the reversal's
  own receipt, `OriginalTransactionID`; the statement export lists it as a withdrawal;
- the same receipt again: `R000001` (already reversed);
- a receipt M-Pesa does not know: `R000002`, no `ResultParameters`, a placeholder receipt.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .simulator_b2c import _post
from .simulator_stk import NAIROBI

REQUIRED = (
    "Initiator",
    "SecurityCredential",
    "CommandID",
    "TransactionID",
    "Amount",
    "ReceiverParty",
    "RecieverIdentifierType",
    "ResultURL",
    "QueueTimeOutURL",
    "Remarks",
)


@dataclass
class DoneReversal:
    receipt: str  # the reversal's own
    original: str
    amount: Decimal
    phone: str
    at: datetime = field(default_factory=lambda: datetime.now(tz=NAIROBI).replace(microsecond=0))


def _code(prefix: str, size: int) -> str:
    return prefix + "".join(random.choices(string.ascii_uppercase + string.digits, k=size))


def reversal_request(handler: Any, state: Any, data: dict) -> None:
    for name in REQUIRED:
        if not str(data.get(name, "")).strip():
            return handler.error(400, "400.002.02", f"Bad Request - Invalid {name}")
    if data["CommandID"] != "TransactionReversal" or str(data["RecieverIdentifierType"]) != "11":
        return handler.error(400, "400.002.02", "Bad Request - Invalid RecieverIdentifierType")
    b2c = state.b2c
    receipt, amount = str(data["TransactionID"]), Decimal(str(data["Amount"]))
    with state.paybill.lock:
        payment = next((p for p in state.paybill.payments if p.receipt == receipt), None)
        done = any(r.original == receipt for r in state.reversals)
    if data["Initiator"] != b2c.initiator_name or not b2c.credential_ok(data["SecurityCredential"]):
        outcome = ("2001", "The initiator information is invalid.")
    elif done:
        outcome = ("R000001", "The transaction has already been reversed.")
    elif payment is None:
        outcome = ("R000002", "The OriginalTransactionID is invalid.")
    else:
        outcome = ("0", "The service request is processed successfully.")
    originator = f"{random.randint(1000, 9999)}-{random.randint(1000, 9999)}-sim"
    conversation = _code("AG_" + datetime.now(tz=NAIROBI).strftime("%Y%m%d") + "_", 16)
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": 0 if outcome[0] == "0" else outcome[0],
        "ResultDesc": outcome[1],
        "OriginatorConversationID": originator,
        "ConversationID": conversation,
        "TransactionID": "SKE0000000",
    }
    if outcome[0] == "0" and payment is not None:
        reversal = DoneReversal(_code("S", 9), receipt, amount, payment.phone)
        with state.paybill.lock:
            state.reversals.append(reversal)
        result["TransactionID"] = reversal.receipt
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "Amount", "Value": float(amount)},
                {"Key": "TransCompletedTime", "Value": int(reversal.at.strftime("%Y%m%d%H%M%S"))},
                {"Key": "OriginalTransactionID", "Value": receipt},
                {"Key": "Charge", "Value": 0.00},
                {
                    "Key": "CreditPartyPublicName",
                    "Value": f"{payment.phone} - {payment.first_name}",
                },
                {"Key": "DebitPartyPublicName", "Value": f"{data['ReceiverParty']} - SOUND FUSION"},
            ]
        }
    b2c.timers.later(b2c.callback_delay, _post, b2c, str(data["ResultURL"]), {"Result": result}, 1)
    return handler.json(
        200,
        {
            "OriginatorConversationID": originator,
            "ConversationID": conversation,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )
