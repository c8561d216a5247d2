"""Paybill payments from the SIM menu (C2B) and Pull Transactions in the local Daraja simulator.

Register URL (v1 hashes the MSISDN, v2 masks it), a payment as a customer makes it (validation
first when enabled, then the confirmation), Pull Transactions over the last 48 hours with row
offsets and `[[]]` when empty. STK payments that succeeded are listed by Pull too, as on the
real shortcode. What happens to a payment is chosen by its amount's last two digits:

| amount ends in | what happens |
|---|---|
| 11 | the confirmation is sent twice |
| 12 | the confirmation is lost: only Pull Transactions knows the payment |
| 13 | the confirmation comes late (`late_delay` seconds, 20 by default) |
| 14 | our validation answer is too late: `ResponseType` decides |
| 15 | no confirmation, and Pull never lists it: only the statement shows it |
| anything else | validation (when enabled), then one confirmation |

An account number that names nobody is just that: the app decides. `GET /simulator/paybill`
is a SIM menu in the browser for `make run`.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import random
import string
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from .simulator_stk import NAIROBI
from .simulator_timers import Timers

logger = logging.getLogger(__name__)
VALIDATION_TIMEOUT = 8.0  # "usually < 8 seconds"; later, ResponseType decides


@dataclass
class Payment:
    receipt: str
    phone: str
    amount: Decimal
    bill_ref: str
    short_code: str
    first_name: str
    at: datetime
    kind: str = "Pay Bill"
    visible_after: float = 0.0  # monotonic time from which Pull lists it (STK: once paid)


@dataclass
class Registration:
    version: str
    confirmation_url: str
    validation_url: str
    response_type: str


def receipt() -> str:
    return "S" + "".join(random.choices(string.ascii_uppercase + string.digits, k=9))


class PaybillSimulation:
    def __init__(self, *, timers: Timers, short_code: str = "600984") -> None:
        self.timers = timers
        self.short_code = short_code
        self.lock = threading.Lock()
        self.registrations: dict[str, Registration] = {}
        self.pull_registered: set[str] = set()
        self.payments: list[Payment] = []
        self.validation_enabled = False
        self.late_delay = 20.0
        self.stats = {"confirmations_sent": 0, "validations_sent": 0, "pull_queries": 0}

    def record_stk(
        self, *, receipt: str, phone: str, amount: int, account: str, paid_after: float
    ) -> None:
        """A prompt that will be paid: Pull lists it once the customer has paid."""
        with self.lock:
            self.payments.append(
                Payment(
                    receipt=receipt,
                    phone=phone,
                    amount=Decimal(amount),
                    bill_ref=account,
                    short_code=self.short_code,
                    first_name="",
                    at=datetime.now(tz=NAIROBI).replace(microsecond=0),
                    visible_after=time.monotonic() + paid_after,
                )
            )

    def snapshot(self) -> dict:
        with self.lock:
            return {
                **self.stats,
                "payments": len(self.payments),
                "registered": {code: r.version for code, r in self.registrations.items()},
            }

    def reset(self) -> None:
        with self.lock:
            for key in self.stats:
                self.stats[key] = 0

    # --- a customer pays ------------------------------------------------------------------
    def pay(
        self, *, phone: str, amount: Any, account: str, short_code: str = "", name: str = "JANE"
    ) -> dict:
        """Pay from the SIM menu. Returns what the customer would see."""
        short_code = short_code or self.short_code
        with self.lock:
            registration = self.registrations.get(short_code)
        payment = Payment(
            receipt=receipt(),
            phone=phone,
            amount=Decimal(str(amount)),
            bill_ref=str(account)[:20],
            short_code=short_code,
            first_name=name,
            at=datetime.now(tz=NAIROBI).replace(microsecond=0),
        )
        scenario = int(payment.amount) % 100
        if registration and self.validation_enabled:
            answer = self._validate(registration, payment, late=scenario == 14)
            accepted = (
                str(answer.get("ResultCode")) == "0"
                if answer is not None
                else registration.response_type == "Completed"
            )
            if not accepted:
                return {"paid": False, "message": f"Failed: {answer or 'no answer'}"}
        if scenario == 15:
            payment.visible_after = float("inf")  # Pull never lists it
        with self.lock:
            self.payments.append(payment)
        if registration:
            times = 2 if scenario == 11 else 0 if scenario in (12, 15) else 1
            delay = self.late_delay if scenario == 13 else 0.0
            self._confirm_later(registration, payment, times, delay)
        return {
            "paid": True,
            "receipt": payment.receipt,
            "message": f"{payment.receipt} Confirmed. Ksh{payment.amount:,.2f} sent to "
            f"{short_code} for account {payment.bill_ref}",
        }

    def body(self, payment: Payment, version: str, *, validation: bool) -> dict:
        if version == "v1":
            msisdn = hashlib.sha256(payment.phone.encode()).hexdigest()
        else:
            msisdn = f"{payment.phone[:4]} ***** {payment.phone[-3:]}"
        return {
            "TransactionType": payment.kind,
            "TransID": payment.receipt,
            "TransTime": payment.at.strftime("%Y%m%d%H%M%S"),
            "TransAmount": f"{payment.amount:.2f}",
            "BusinessShortCode": payment.short_code,
            "BillRefNumber": payment.bill_ref,
            "InvoiceNumber": "",
            "OrgAccountBalance": "" if validation else "25000.00",
            "ThirdPartyTransID": "",
            "MSISDN": msisdn,
            "FirstName": payment.first_name,
            "MiddleName": "",
            "LastName": "",
        }

    def _validate(self, registration: Registration, payment: Payment, *, late: bool) -> dict | None:
        with self.lock:
            self.stats["validations_sent"] += 1
        body = self.body(payment, registration.version, validation=True)
        answer = _post(registration.validation_url, body, timeout=VALIDATION_TIMEOUT)
        return None if late else answer

    def _confirm_later(
        self, registration: Registration, payment: Payment, times: int, delay: float
    ) -> None:
        def send() -> None:
            body = self.body(payment, registration.version, validation=False)
            for _ in range(times):
                _post(registration.confirmation_url, body, timeout=10)
                with self.lock:
                    self.stats["confirmations_sent"] += 1

        if delay == 0 and times:
            send()
            return
        self.timers.later(delay, send)

    # --- Pull -------------------------------------------------------------------------------
    def pull_rows(self, short_code: str, start: datetime, end: datetime) -> list[dict]:
        now, horizon = time.monotonic(), datetime.now(tz=NAIROBI) - timedelta(hours=48)
        with self.lock:
            found = [
                p
                for p in self.payments
                if p.short_code == short_code
                and p.visible_after <= now
                and max(start, horizon) <= p.at <= end
            ]
        return [
            {
                "transactionId": p.receipt,
                "trxDate": p.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "Z",
                "msisdn": int(p.phone[3:]) if p.phone.isdigit() else 0,
                "sender": p.first_name,
                "transactiontype": "c2b-pay-bill-debit",
                "billreference": p.bill_ref,
                "amount": f"{p.amount:.2f}",
                "organizationname": "Sound Fusion (simulator)",
            }
            for p in sorted(found, key=lambda p: p.at)
        ]


def _post(url: str, body: dict, *, timeout: float) -> dict | None:
    data = json.dumps(body).encode()
    # The URL was registered through the simulator's own Register URL, as http(s).
    request = urllib.request.Request(  # noqa: S310
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read() or b"{}")
            return answer if isinstance(answer, dict) else {}
    except Exception as error:
        # Safaricom does not retry undelivered confirmations; neither do we.
        logger.warning("simulator: Paybill notice to %s failed: %s", url, error)
        return None


def register_url(handler: Any, sim: PaybillSimulation, data: dict, version: str) -> None:
    short_code = str(data.get("ShortCode", ""))
    response_type = data.get("ResponseType")
    urls = [str(data.get("ConfirmationURL", "")), str(data.get("ValidationURL", ""))]
    if not short_code.isdigit():
        return handler.error(400, "400.002.02", "Bad Request - Invalid ShortCode")
    if response_type not in ("Completed", "Cancelled"):
        return handler.error(400, "400.002.02", "Bad Request - Invalid ResponseType")
    for url in urls:
        lowered = url.lower()
        if not lowered.startswith(("http://", "https://")) or any(
            word in lowered
            for word in ("mpesa", "m-pesa", "safaricom", "exe", "cmd", "sql", "query")
        ):
            return handler.error(400, "400.002.02", "Bad Request - Invalid URL")
    with sim.lock:
        sim.registrations[short_code] = Registration(version, urls[0], urls[1], response_type)
    return handler.json(
        200,
        {
            "OriginatorCoversationID": f"{random.randint(1000, 9999)}-sim",
            "ResponseCode": "0",
            "ResponseDescription": "Success",
        },
    )


def simulate(handler: Any, sim: PaybillSimulation, data: dict) -> None:
    """The sandbox's C2B simulate: a payment as if from a phone."""
    if data.get("CommandID") not in ("CustomerPayBillOnline", "CustomerBuyGoodsOnline"):
        return handler.error(400, "400.002.02", "Bad Request - Invalid CommandID")
    outcome = sim.pay(
        phone=str(data.get("Msisdn", "")),
        amount=data.get("Amount", 0),
        account=str(data.get("BillRefNumber", "")),
        short_code=str(data.get("ShortCode", "")),
    )
    return handler.json(
        200,
        {
            "OriginatorCoversationID": outcome.get("receipt", ""),
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        },
    )


def pull_register(handler: Any, sim: PaybillSimulation, data: dict) -> None:
    short_code = str(data.get("ShortCode", ""))
    with sim.lock:
        already = short_code in sim.pull_registered
        sim.pull_registered.add(short_code)
    return handler.json(
        200,
        {
            "ResponseRefID": f"{random.randint(10000, 99999)}-sim",
            "ResponseStatus": "1001" if already else "1000",
            "ShortCode": short_code,
            "ResponseDescription": "Shortcode already registered"
            if already
            else "Shortcode Registered Successfully",
        },
    )


def pull_query(handler: Any, sim: PaybillSimulation, data: dict) -> None:
    with sim.lock:
        sim.stats["pull_queries"] += 1
        registered = str(data.get("ShortCode", "")) in sim.pull_registered
    try:
        start = datetime.strptime(str(data["StartDate"]), "%Y-%m-%d %H:%M:%S")
        end = datetime.strptime(str(data["EndDate"]), "%Y-%m-%d %H:%M:%S")
        offset = int(str(data.get("OffSetValue", "0")))
    except (KeyError, ValueError):
        return handler.error(400, "400.002.02", "Bad Request - Invalid StartDate")
    rows = []
    if registered:
        rows = sim.pull_rows(
            str(data["ShortCode"]), start.replace(tzinfo=NAIROBI), end.replace(tzinfo=NAIROBI)
        )[offset : offset + 100]
    if not rows:
        return handler.json(
            200,
            {
                "ResponseRefID": f"{random.randint(10000, 99999)}-sim",
                "ResponseCode": "1001",
                "ResponseMessage": "No records found or Organization Name not available",
                "Response": [[]],
            },
        )
    return handler.json(
        200,
        {
            "ResponseRefID": f"{random.randint(10000, 99999)}-sim",
            "ResponseCode": "1000",
            "ResponseMessage": "Success",
            "Response": [rows],
        },
    )


SIM_MENU = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SIM menu: Lipa na M-Pesa (simulator)</title>
<style>*{{box-sizing:border-box}}
body{{font:16px system-ui;max-width:24rem;margin:1rem auto;padding:0 1rem}}
label{{display:block;margin-top:.8rem}}
input{{width:100%;font-size:1rem;padding:.4rem}}
button{{margin-top:1rem;font-size:1rem;padding:.5rem 1rem}}
.msg{{background:#eef;padding:.6rem}}</style>
</head><body><h1>Lipa na M-Pesa: Paybill</h1><p>The simulator's SIM menu: pay the
Paybill as a member does from their phone.</p>{message}
<form method="post" action="/simulator/paybill">
<label for="phone">Your phone</label>
<input id="phone" name="phone" value="{phone}" inputmode="tel">
<label for="short_code">Business number</label>
<input id="short_code" name="short_code" value="{short_code}" inputmode="numeric">
<label for="account">Account number</label>
<input id="account" name="account" value="{account}">
<label for="amount">Amount</label>
<input id="amount" name="amount" value="{amount}" inputmode="numeric">
<button type="submit">Send</button></form>
<p>Amounts ending in 11: confirmation twice; 12: confirmation lost (Pull finds it);
13: confirmation late; 14: validation answer too late; 15: only the statement knows it.</p>
</body></html>"""


def sim_menu_page(sim: PaybillSimulation, form: dict[str, str], message: str = "") -> bytes:
    fields = {
        "phone": form.get("phone", "254712345001"),
        "short_code": form.get("short_code", sim.short_code),
        "account": form.get("account", ""),
        "amount": form.get("amount", "500"),
    }
    escaped = {key: html.escape(value) for key, value in fields.items()}
    note = f'<p class="msg" role="status">{html.escape(message)}</p>' if message else ""
    return SIM_MENU.format(message=note, **escaped).encode()


def sim_menu_pay(sim: PaybillSimulation, body: bytes) -> bytes:
    form = {key: values[0] for key, values in parse_qs(body.decode(errors="replace")).items()}
    amount = form.get("amount", "").strip()
    if not amount.isdigit() or not 1 <= int(amount) <= 250_000:
        return sim_menu_page(sim, form, "Enter a whole amount from 1 to 250,000.")
    outcome = sim.pay(
        phone=form.get("phone", "").strip(),
        amount=int(amount),
        account=form.get("account", "").strip(),
        short_code=form.get("short_code", "").strip(),
    )
    return sim_menu_page(sim, form, outcome["message"])
