"""A local stand-in for Daraja, speaking its wire format over real HTTP.

OAuth checks the Basic credentials; STK push checks the token, Password, Timestamp and every
field as Daraja does and answers with Daraja-shaped errors; STK query answers "being
processed" until the customer has "answered"; the callback is POSTed to the CallBackURL after a
short delay. What happens is chosen by the last four digits of the phone number:

| phone ends in | outcome |
|---|---|
| 1032 | cancelled by the customer (ResultCode 1032) |
| 1037 | phone unreachable: no callback; the query says 1037 |
| 0001 | insufficient funds (ResultCode 1) |
| 2001 | wrong PIN (ResultCode 2001) |
| 0002 | success, and the callback is sent twice |
| 0003 | success, but the callback is lost: only the query knows |
| 0009 | success, but the customer pays KES 1 less than asked (amount mismatch) |
| 5000 | the push is refused with HTTP 500 (500.003.1001, internal error) |
| 5040 | the push hangs longer than any client timeout (no prompt, no callback) |
| 5041 | the push answers after any client timeout, yet the customer pays: callback sent |
| anything else | success (e.g. the sandbox test number 254708374149) |

B2C payouts, Transaction Status and Account Balance: `simulator_b2c.py` (its outcomes by
phone ending are listed there). Paybill payments from the SIM menu (C2B) and Pull
Transactions: `simulator_c2b.py` (outcomes by amount, and a SIM menu at /simulator/paybill).
Reversals: `simulator_reversal.py`. Everything it did, as the org portal's statement:
`GET /simulator/statement` (`simulator_statement.py`).

Its own routes (`simulator_control.py`): `GET /simulator/stats` returns request counters (for
tests and benchmarks), with the pushes per phone number; `GET /simulator/log` every API call
with the time it arrived; `POST /simulator/reset` zeroes them. Two knobs stand in for a busy Daraja:
`push_latency` (seconds before each push is answered) and `max_pushes_per_second` (more
than that in a second is answered 500.003.02 "Spike arrest violation", as Daraja's rate limit
is; nothing is prompted).
"""

from __future__ import annotations

import base64
import json
import logging
import random
import string
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from attendance.simulators import SimulatorServer

from . import simulator_b2c, simulator_c2b, simulator_control, simulator_reversal
from .client import daraja_password
from .simulator_statement import serve_statement
from .simulator_stk import NAIROBI, Push, invalid_push_field, send_callback
from .simulator_timers import Timers

logger = logging.getLogger(__name__)

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
OUTCOMES = {
    "1032": ("cancelled", 1032, "Request cancelled by user"),
    "1037": ("unreachable", 1037, "DS timeout user cannot be reached"),
    "0001": ("insufficient", 1, "The balance is insufficient for the transaction"),
    "2001": ("wrong_pin", 2001, "The initiator information is invalid."),
    "0002": ("double_callback", 0, "The service request is processed successfully."),
    "0003": ("lost_callback", 0, "The service request is processed successfully."),
    "0009": ("underpaid", 0, "The service request is processed successfully."),
}
SUCCESS = ("success", 0, "The service request is processed successfully.")


class SimulatorState:
    def __init__(
        self,
        *,
        consumer_key,
        consumer_secret,
        short_code,
        pass_key,
        callback_delay,
        paybill_short_code="600984",
        initiator_name="sim-initiator",
        initiator_password="Sim#Initiator1",  # noqa: S107  (the simulator's own fake one)
    ):
        self.timers = Timers()
        self.b2c = simulator_b2c.PayoutSimulation(
            initiator_name=initiator_name,
            initiator_password=initiator_password,
            callback_delay=callback_delay,
            timers=self.timers,
        )
        self.paybill = simulator_c2b.PaybillSimulation(
            short_code=paybill_short_code, timers=self.timers
        )
        self.reversals: list[simulator_reversal.DoneReversal] = []
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.short_code = short_code
        self.pass_key = pass_key
        self.callback_delay = callback_delay
        self.push_latency = 0.0
        self.query_latency = 0.0
        self.max_pushes_per_second: float | None = None
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.pushes: dict[str, Push] = {}
        self.recent_pushes: list[float] = []  # when accepted pushes arrived (spike arrest)
        self.prompts_per_phone: dict[str, int] = {}
        # Every API call as it arrived, (wall-clock time, path): GET /simulator/log.
        self.calls: list[tuple[float, str]] = []
        self.stats = {
            "oauth": 0,
            "stk_push": 0,
            "stk_query": 0,
            "callbacks_sent": 0,
            "spike_arrests": 0,
        }

    def spike_arrested(self) -> bool:
        """More pushes in the last second than allowed? Counts this one if it passes."""
        if not self.max_pushes_per_second:
            return False
        with self.lock:
            now = time.monotonic()
            self.recent_pushes = [t for t in self.recent_pushes if now - t < 1.0]
            if len(self.recent_pushes) >= self.max_pushes_per_second:
                self.stats["spike_arrests"] += 1
                return True
            self.recent_pushes.append(now)
            return False

    def count(self, name):
        with self.lock:
            self.stats[name] += 1

    def answered(self, checkout_request_id: str) -> bool:
        """Has the simulated customer answered this push yet (what a query would now say)?
        For tests that must wait for the customer, instead of sleeping past the delay."""
        with self.lock:
            push = self.pushes.get(checkout_request_id)
        return push is not None and time.monotonic() >= push.answer_at


STK_ROUTES = ("/mpesa/stkpush/v1/processrequest", "/mpesa/stkpushquery/v1/query")
B2C_ROUTES = {
    "/mpesa/b2c/v3/paymentrequest": simulator_b2c.b2c_request,
    "/mpesa/transactionstatus/v1/query": simulator_b2c.status_query,
    "/mpesa/accountbalance/v1/query": simulator_b2c.balance_query,
}
STATE_ROUTES = {"/mpesa/reversal/v1/request": simulator_reversal.reversal_request}
PAYBILL_ROUTES = {
    "/mpesa/c2b/v1/registerurl": lambda h, sim, data: simulator_c2b.register_url(
        h, sim, data, "v1"
    ),
    "/mpesa/c2b/v2/registerurl": lambda h, sim, data: simulator_c2b.register_url(
        h, sim, data, "v2"
    ),
    "/mpesa/c2b/v1/simulate": simulator_c2b.simulate,
    "/mpesa/c2b/v2/simulate": simulator_c2b.simulate,
    "/pulltransactions/v1/register": simulator_c2b.pull_register,
    "/pulltransactions/v1/query": simulator_c2b.pull_query,
}


def _error(handler, status, code, message):
    handler._json(status, {"requestId": _id(), "errorCode": code, "errorMessage": message})


def _id(prefix=""):
    return prefix + "".join(random.choices(string.digits, k=16))


class Handler(BaseHTTPRequestHandler):
    server_version = "DarajaSimulator/1.0"
    state: SimulatorState

    def log_message(self, format, *args):  # quiet: tests start many requests
        logger.debug("simulator: " + format, *args)

    def _json(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _html(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # The B2C module's way of answering.
    def json(self, status, payload):
        self._json(status, payload)

    def error(self, status, code, message):
        _error(self, status, code, message)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _bearer_ok(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.state.lock:
            return token in self.state.tokens

    # --- routes ---------------------------------------------------------------------------
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/oauth/v1/generate":
            return self._oauth(parse_qs(url.query))
        if url.path in simulator_control.READS:
            return self._json(200, simulator_control.READS[url.path](self.state))
        if url.path == "/simulator/paybill":
            return self._html(simulator_c2b.sim_menu_page(self.state.paybill, {}))
        if url.path == "/simulator/statement":
            return serve_statement(self, self.state, parse_qs(url.query))
        return _error(self, 404, "404.001.01", "Resource not found")

    def do_POST(self):
        path = urlparse(self.path).path
        if path == "/simulator/reset":
            self._body()
            return self._json(200, simulator_control.reset(self.state))
        body = self._body()
        if path == "/simulator/paybill":  # the SIM menu's form
            return self._html(simulator_c2b.sim_menu_pay(self.state.paybill, body))
        if not any(
            path in routes for routes in (STK_ROUTES, B2C_ROUTES, PAYBILL_ROUTES, STATE_ROUTES)
        ):
            return _error(self, 404, "404.001.01", "Resource not found")
        with self.state.lock:
            self.state.calls.append((time.time(), path))
        if not self._bearer_ok():
            return _error(self, 404, "404.001.03", "Invalid Access Token")
        if "application/json" not in self.headers.get("Content-Type", ""):
            return _error(self, 400, "400.002.02", "Bad Request - Invalid BusinessShortCode")
        try:
            data = json.loads(body)
            assert isinstance(data, dict)
        except (ValueError, AssertionError):
            return _error(self, 400, "400.002.02", "Bad Request - Invalid JSON")
        if path == "/mpesa/stkpush/v1/processrequest":
            return self._push(data)
        if path == "/mpesa/stkpushquery/v1/query":
            return self._query(data)
        if path in PAYBILL_ROUTES:
            return PAYBILL_ROUTES[path](self, self.state.paybill, data)
        if path in STATE_ROUTES:
            return STATE_ROUTES[path](self, self.state, data)
        return B2C_ROUTES[path](self, self.state.b2c, data)

    def _oauth(self, query):
        self.state.count("oauth")
        if query.get("grant_type") != ["client_credentials"]:
            return _error(self, 400, "400.008.02", "Invalid grant type passed")
        auth = self.headers.get("Authorization", "")
        expected = base64.b64encode(
            f"{self.state.consumer_key}:{self.state.consumer_secret}".encode()
        ).decode()
        if auth != f"Basic {expected}":
            return _error(self, 400, "400.008.01", "Invalid Authentication passed")
        token = "".join(random.choices(string.ascii_letters + string.digits, k=28))
        with self.state.lock:
            self.state.tokens.add(token)
        # Live and mock servers send expires_in as a string.
        return self._json(200, {"access_token": token, "expires_in": "3599"})

    def _check_password(self, data):
        timestamp = str(data.get("Timestamp", ""))
        try:
            sent = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=NAIROBI)
        except ValueError:
            return "Bad Request - Invalid Timestamp"
        if abs(datetime.now(tz=NAIROBI) - sent) > timedelta(minutes=10):
            return "Bad Request - Invalid Timestamp"
        shortcode = str(data.get("BusinessShortCode", ""))
        if not (shortcode.isdigit() and 5 <= len(shortcode) <= 7):
            return "Bad Request - Invalid BusinessShortCode"
        if data.get("Password") != daraja_password(shortcode, self.state.pass_key, timestamp):
            return None  # reported as Daraja does: a 500 with a generic message
        return ""

    def _push(self, data):
        self.state.count("stk_push")
        problem = self._check_password(data)
        if problem is None:
            return _error(self, 500, "500.001.1001", "Wrong credentials")
        if problem:
            return _error(self, 400, "400.002.02", problem)
        invalid = invalid_push_field(data)
        if invalid:
            return _error(self, 400, "400.002.02", f"Bad Request - Invalid {invalid}")
        amount, phone = int(data["Amount"]), str(data["PhoneNumber"])
        callback_url = str(data["CallBackURL"])
        if self.state.push_latency:
            time.sleep(self.state.push_latency)
        if self.state.spike_arrested():
            return _error(self, 500, "500.003.02", "Spike arrest violation")
        suffix = phone[-4:]
        if suffix == "5000":
            return _error(self, 500, "500.003.1001", "Internal Server Error")
        if suffix == "5040":
            time.sleep(60)
            return _error(self, 500, "500.003.1001", "Internal Server Error")
        now = time.monotonic()
        with self.state.lock:
            busy = any(p.phone == phone and p.answer_at > now for p in self.state.pushes.values())
        if busy:
            return _error(
                self,
                500,
                "500.001.1001",
                "Unable to lock subscriber, a transaction is already in process "
                "for the current subscriber",
            )
        push = Push(
            checkout_request_id=_id("ws_CO_"),
            merchant_request_id=f"{random.randint(10000, 99999)}-{random.randint(10**7, 10**8)}-1",
            phone=phone,
            amount=amount,
            callback_url=callback_url,
            outcome=OUTCOMES.get(suffix, SUCCESS),
            answer_at=now + self.state.callback_delay,
        )
        with self.state.lock:
            self.state.pushes[push.checkout_request_id] = push
            self.state.prompts_per_phone[phone] = self.state.prompts_per_phone.get(phone, 0) + 1
        self._schedule_callback(push)
        if push.outcome[1] == 0:  # paid: Pull Transactions lists it once the customer paid
            self.state.paybill.record_stk(
                receipt=push.receipt,
                phone=phone,
                amount=amount - 1 if push.outcome[0] == "underpaid" else amount,
                account=str(data["AccountReference"]),
                paid_after=self.state.callback_delay,
            )
        if suffix == "5041":
            time.sleep(60)  # the caller gave up long ago; the customer pays anyway
        message = "Success. Request accepted for processing"
        return self._json(
            200,
            {
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResponseCode": "0",
                "ResponseDescription": message,
                "CustomerMessage": message,
            },
        )

    def _query(self, data):
        self.state.count("stk_query")
        if self.state.query_latency:
            time.sleep(self.state.query_latency)
        problem = self._check_password(data)
        if problem is None:
            return _error(self, 500, "500.001.1001", "Wrong credentials")
        if problem:
            return _error(self, 400, "400.002.02", problem)
        with self.state.lock:
            push = self.state.pushes.get(str(data.get("CheckoutRequestID", "")))
        if push is None:
            return _error(self, 400, "400.002.02", "Bad Request - Invalid CheckoutRequestID")
        if time.monotonic() < push.answer_at:
            return _error(self, 500, "500.001.1001", "The transaction is being processed")
        _, code, description = push.outcome
        return self._json(
            200,
            {
                "ResponseCode": "0",
                "ResponseDescription": "The service request has been accepted successsfully",
                "MerchantRequestID": push.merchant_request_id,
                "CheckoutRequestID": push.checkout_request_id,
                "ResultCode": str(code),  # a string here, a number in the callback
                "ResultDesc": description,
            },
        )

    def _schedule_callback(self, push: Push) -> None:
        name = push.outcome[0]
        if name in ("unreachable", "lost_callback"):
            return
        times = 2 if name == "double_callback" else 1
        self.state.timers.later(self.state.callback_delay, send_callback, self.state, push, times)


class DarajaSimulator:
    """Run the simulator in a background thread (tests) or in the foreground (the command)."""

    def __init__(
        self,
        *,
        host="127.0.0.1",
        port=0,
        consumer_key="sim-consumer-key",
        consumer_secret="sim-consumer-secret",  # noqa: S107  (the simulator's own fake credential)
        short_code="174379",
        pass_key=SANDBOX_PASSKEY,
        callback_delay=1.0,
    ):
        self.state = SimulatorState(
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            short_code=short_code,
            pass_key=pass_key,
            callback_delay=callback_delay,
            # One paybill takes prompts and SIM-menu payments, as the company's does.
            paybill_short_code=short_code,
        )
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = SimulatorServer((host, port), handler)
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> DarajaSimulator:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def serve_forever(self):
        self.server.serve_forever()

    def stop(self):
        self.state.timers.cancel_all()
        self.server.shutdown()
        self.server.server_close()
