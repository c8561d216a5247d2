"""The simulator's B2C payouts, Transaction Status and Account Balance (see simulator.py).

Checks what Daraja checks: the token, the SecurityCredential (decrypted with the simulator's
own key pair, whose self-signed certificate the client encrypts with), each field, and a
repeated OriginatorConversationID ("Duplicate OriginatorConversationID.", the first request
got through). Results are POSTed to the ResultURL after `callback_delay`. The outcome is
chosen by the last four digits of the recipient's phone:

| phone ends in | outcome |
|---|---|
| 0001 | the utility account is short (ResultCode 1); also for any payout above its balance |
| 2001 | invalid initiator (ResultCode 2001); also when the credential does not decrypt |
| 2040 | the recipient is not a registered M-Pesa customer (ResultCode 2040) |
| 0002 | paid, and the result is delivered twice |
| 0003 | paid, but the result is lost: only Transaction Status knows |
| 5041 | paid and the result sent, but the POST is answered only after `slow_answer_seconds` |
| 0008 | a queue timeout: a body to the QueueTimeOutURL; no money moves (status: Expired) |
| 5001 | paid, the POST answered 500 "System internal error." and the result lost |
| anything else | paid |

The name M-Pesa has registered for a number (ReceiverPartyPublicName) is the one in
`names` when a test put one there (someone else's SIM), else the `Occassion` we sent (the
member we meant to pay), else "SIMULATED CUSTOMER".
"""

from __future__ import annotations

import json
import logging
import random
import string
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .credentials import decrypt_credential, self_signed_certificate
from .simulator_timers import Timers

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

logger = logging.getLogger(__name__)
NAIROBI = ZoneInfo("Africa/Nairobi")
PAID = (0, "The service request is processed successfully.")
OUTCOMES = {
    "0001": (1, "The balance is insufficient for the transaction."),
    "2001": (2001, "The initiator information is invalid."),
    "2040": (
        2040,
        "Credit Party customer type (Unregistered or Registered Customer) can't be "
        "supported by the service.",
    ),
}


@dataclass
class Payout:
    originator_conversation_id: str
    conversation_id: str
    phone: str
    amount: int
    result_url: str
    queue_timeout_url: str
    code: int
    description: str
    receipt: str = field(
        default_factory=lambda: "".join(
            random.choices(string.ascii_uppercase + string.digits, k=10)
        )
    )
    completed_at: datetime = field(default_factory=lambda: datetime.now(tz=NAIROBI))
    timed_out: bool = False
    registered_name: str = "SIMULATED CUSTOMER"


class PayoutSimulation:
    """The B2C side of the simulator's state."""

    def __init__(
        self,
        *,
        initiator_name: str,
        initiator_password: str,
        callback_delay: float,
        timers: Timers,
    ):
        self.timers = timers
        self.certificate, self._key = self_signed_certificate("Daraja simulator (B2C)")
        self.initiator_name = initiator_name
        self.initiator_password = initiator_password
        self.callback_delay = callback_delay
        self.utility_balance = Decimal("1000000.00")
        self.working_balance = Decimal("250000.00")
        self.slow_answer_seconds = 20.0
        self.answer_latency = 0.0
        self.lock = threading.Lock()
        self.payouts: dict[str, Payout] = {}
        # MSISDN -> the name M-Pesa has registered for it (only where a test says so).
        self.names: dict[str, str] = {}
        self.requests_per_id: dict[str, int] = {}
        self.stats = {"b2c": 0, "b2c_duplicates": 0, "status": 0, "balance": 0, "results_sent": 0}

    @property
    def private_key(self) -> RSAPrivateKey:
        return self._key

    def credential_ok(self, credential: Any) -> bool:
        try:
            return decrypt_credential(str(credential), self._key) == self.initiator_password
        except Exception:  # not base64, wrong key, wrong padding: Daraja says 2001 too
            return False

    def snapshot(self) -> dict:
        with self.lock:
            return {
                **self.stats,
                "b2c_requests_per_id": dict(self.requests_per_id),
                "utility_balance": str(self.utility_balance),
            }

    def reset(self) -> None:
        with self.lock:
            for key in self.stats:
                self.stats[key] = 0
            self.requests_per_id.clear()


def _id(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase + string.digits, k=18))


def _invalid_field(data: dict, names: tuple[str, ...]) -> str:
    for name in names:
        if not str(data.get(name, "")).strip():
            return name
    return ""


def b2c_request(handler: Any, sim: PayoutSimulation, data: dict) -> None:
    with sim.lock:
        sim.stats["b2c"] += 1
    missing = _invalid_field(
        data,
        (
            "OriginatorConversationID",
            "InitiatorName",
            "SecurityCredential",
            "CommandID",
            "Amount",
            "PartyA",
            "PartyB",
            "Remarks",
            "QueueTimeOutURL",
            "ResultURL",
        ),
    )
    if missing:
        return handler.error(400, "400.002.02", f"Bad Request - Invalid {missing}")
    ocid = str(data["OriginatorConversationID"])
    phone = str(data["PartyB"])
    amount = data["Amount"]
    if (
        not isinstance(amount, int)
        or isinstance(amount, bool)
        or not 10 <= amount <= 250_000
        or not (len(phone) == 12 and phone.isdigit() and phone.startswith("254"))
    ):
        return handler.error(400, "400.002.02", "Bad Request - Invalid Amount or PartyB")
    with sim.lock:
        sim.requests_per_id[ocid] = sim.requests_per_id.get(ocid, 0) + 1
        if ocid in sim.payouts:
            sim.stats["b2c_duplicates"] += 1
            duplicate = True
        else:
            duplicate = False
    if duplicate:
        return handler.error(500, "500.002.1001", "Duplicate OriginatorConversationID.")
    suffix = phone[-4:]
    code, description = OUTCOMES.get(suffix, PAID)
    if data["InitiatorName"] != sim.initiator_name or not sim.credential_ok(
        data["SecurityCredential"]
    ):
        code, description = OUTCOMES["2001"]
    payout = Payout(
        originator_conversation_id=ocid,
        conversation_id=_id("AG_" + datetime.now(tz=NAIROBI).strftime("%Y%m%d") + "_"),
        phone=phone,
        amount=amount,
        result_url=str(data["ResultURL"]),
        queue_timeout_url=str(data["QueueTimeOutURL"]),
        code=code,
        description=description,
        timed_out=suffix == "0008",
        registered_name=sim.names.get(phone)
        or str(data.get("Occassion") or "").strip().upper()
        or "SIMULATED CUSTOMER",
    )
    with sim.lock:
        if payout.code == 0 and not payout.timed_out:
            if sim.utility_balance < amount:
                payout.code, payout.description = OUTCOMES["0001"]
            else:
                sim.utility_balance -= amount
        sim.payouts[ocid] = payout
    if sim.answer_latency:
        time.sleep(sim.answer_latency)
    if suffix not in ("0003", "5001"):
        times = 2 if suffix == "0002" else 1
        _later(sim, _deliver_result, payout, times)
    if suffix == "5041":
        time.sleep(sim.slow_answer_seconds)  # the caller gave up; the money moved anyway
    if suffix == "5001":
        # Safaricom's fault after the money moved (gathuku/laravel_mpesa#21): same code as a
        # duplicate, told apart only by the message.
        return handler.error(500, "500.002.1001", "System internal error.")
    handler.json(
        200,
        {
            "ConversationID": payout.conversation_id,
            "OriginatorConversationID": ocid,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )


def b2c_result_body(sim: PayoutSimulation, payout: Payout) -> dict:
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": payout.code,
        "ResultDesc": payout.description,
        "OriginatorConversationID": payout.originator_conversation_id,
        "ConversationID": payout.conversation_id,
        "TransactionID": payout.receipt,  # present on failures too: never a sign of success
        "ReferenceData": {
            "ReferenceItem": {
                "Key": "QueueTimeoutURL",
                "Value": "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit",
            }
        },
    }
    if payout.code == 0:
        with sim.lock:
            utility, working = sim.utility_balance, sim.working_balance
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "TransactionAmount", "Value": payout.amount},
                {"Key": "TransactionReceipt", "Value": payout.receipt},
                {
                    "Key": "ReceiverPartyPublicName",
                    "Value": f"{payout.phone} - {payout.registered_name}",
                },
                {
                    "Key": "TransactionCompletedDateTime",
                    "Value": payout.completed_at.strftime("%d.%m.%Y %H:%M:%S"),
                },
                {"Key": "B2CUtilityAccountAvailableFunds", "Value": float(utility)},
                {"Key": "B2CWorkingAccountAvailableFunds", "Value": float(working)},
                {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
                {"Key": "B2CChargesPaidAccountAvailableFunds", "Value": -1980.00},
            ]
        }
    return {"Result": result}


def _queue_timeout_body(payout: Payout) -> dict:
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": "SVC0001",
            "ResultDesc": "The request timed out in the M-Pesa queue.",
            "OriginatorConversationID": payout.originator_conversation_id,
            "ConversationID": payout.conversation_id,
            "TransactionID": "",
        }
    }


def _deliver_result(sim: PayoutSimulation, payout: Payout, times: int) -> None:
    if payout.timed_out:
        _post(sim, payout.queue_timeout_url, _queue_timeout_body(payout), 1)
        return
    _post(sim, payout.result_url, b2c_result_body(sim, payout), times)


def status_query(handler: Any, sim: PayoutSimulation, data: dict) -> None:
    with sim.lock:
        sim.stats["status"] += 1
    missing = _invalid_field(
        data, ("Initiator", "SecurityCredential", "ResultURL", "QueueTimeOutURL")
    )
    if missing or data.get("CommandID") != "TransactionStatusQuery":
        return handler.error(400, "400.003.02", f"Bad Request - Invalid {missing or 'CommandID'}")
    ocid = str(data.get("OriginalConversationID") or "")
    receipt = str(data.get("TransactionID") or "")
    with sim.lock:
        payout = sim.payouts.get(ocid) or next(
            (p for p in sim.payouts.values() if receipt and p.receipt == receipt), None
        )
    if payout is None:
        return handler.error(404, "404.003.01", "Resource not found")
    query_id = _id("AG_TS_")
    if not sim.credential_ok(data["SecurityCredential"]):
        body = {
            "Result": {
                "ResultType": 0,
                "ResultCode": 2001,
                "ResultDesc": "The initiator information is invalid.",
                "OriginatorConversationID": _id(""),
                "ConversationID": query_id,
                "TransactionID": _id(""),
            }
        }
    else:
        body = _status_body(payout, query_id)
    _later(sim, _post, str(data["ResultURL"]), body, 1)
    handler.json(
        200,
        {
            "OriginatorConversationID": _id("ts-"),
            "ConversationID": query_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )


def _status_body(payout: Payout, query_id: str) -> dict:
    if payout.timed_out:
        state = "Expired"
    elif payout.code == 0:
        state = "Completed"
    else:
        state = "Declined"
    stamp = payout.completed_at.strftime("%Y%m%d%H%M%S")
    return {
        "Result": {
            "ResultType": 0,
            "ResultCode": 0,
            "ResultDesc": "The service request is processed successfully.",
            "OriginatorConversationID": _id(""),
            "ConversationID": query_id,
            "TransactionID": _id("TS"),  # the query's own id, not the receipt
            "ReferenceData": {"ReferenceItem": {"Key": "Occasion"}},
            "ResultParameters": {
                "ResultParameter": [
                    {"Key": "DebitPartyName", "Value": "600310 - Sound Fusion"},
                    {
                        "Key": "DebitPartyName",
                        "Value": f"{payout.phone} - {payout.registered_name}",
                    },
                    {"Key": "OriginatorConversationID", "Value": payout.originator_conversation_id},
                    {"Key": "InitiatedTime", "Value": stamp},
                    {"Key": "DebitAccountType", "Value": "Utility Account"},
                    {"Key": "DebitPartyCharges", "Value": "Fee For B2C Payment|KES|22.40"},
                    {"Key": "TransactionReason"},
                    {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
                    {"Key": "TransactionStatus", "Value": state},
                    {"Key": "FinalisedTime", "Value": stamp},
                    {"Key": "Amount", "Value": str(payout.amount)},
                    {"Key": "ConversationID", "Value": payout.conversation_id},
                    {"Key": "ReceiptNo", "Value": payout.receipt if state == "Completed" else ""},
                ]
            },
        }
    }


def balance_query(handler: Any, sim: PayoutSimulation, data: dict) -> None:
    with sim.lock:
        sim.stats["balance"] += 1
        utility, working = sim.utility_balance, sim.working_balance
    missing = _invalid_field(data, ("Initiator", "SecurityCredential", "PartyA", "ResultURL"))
    if missing or data.get("CommandID") != "AccountBalance":
        return handler.error(400, "400.002.02", f"Bad Request - Invalid {missing or 'CommandID'}")
    query_id = _id("AG_AB_")
    code, description = (0, "The service request is processed successfully")
    if not sim.credential_ok(data["SecurityCredential"]):
        code, description = OUTCOMES["2001"]
    result: dict[str, Any] = {
        "ResultType": "0",
        "ResultCode": str(code),
        "ResultDesc": description,
        "OriginatorConversationID": _id(""),
        "ConversationID": query_id,
        "TransactionID": _id("OA"),
    }
    if code == 0:
        accounts = [
            ("Working Account", working),
            ("Float Account", Decimal(0)),
            ("Utility Account", utility),
            ("Charges Paid Account", Decimal("-1540.00")),
            ("Organization Settlement Account", Decimal(0)),
        ]
        value = "&".join(
            f"{name}|KES|{amount:.2f}|{amount:.2f}|0.00|0.00" for name, amount in accounts
        )
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "AccountBalance", "Value": value},
                {
                    "Key": "BOCompletedTime",
                    "Value": datetime.now(tz=NAIROBI).strftime("%Y%m%d%H%M%S"),
                },
            ]
        }
    _later(sim, _post, str(data["ResultURL"]), {"Result": result}, 1)
    handler.json(
        200,
        {
            "OriginatorConversationID": _id("ab-"),
            "ConversationID": query_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )


def _later(sim: PayoutSimulation, function: Any, *args: Any) -> None:
    """`function(sim, *args)` after the result delay, off the request's thread."""
    sim.timers.later(sim.callback_delay, function, sim, *args)


def _post(sim: PayoutSimulation, url: str, body: dict, times: int) -> None:
    data = json.dumps(body).encode()
    for _ in range(times):
        # The URL came from the request itself and was checked to be there.
        request = urllib.request.Request(  # noqa: S310
            url, data=data, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                response.read()
        except Exception as error:
            # Safaricom does not retry undelivered results; neither do we.
            logger.warning("simulator: result to %s failed: %s", url, error)
        with sim.lock:
            sim.stats["results_sent"] += 1
