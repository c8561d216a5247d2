"""A local stand-in for Africa's Talking SMS, speaking its wire format over real HTTP.

`POST /version1/messaging` checks the `apiKey` header and the `username` field (HTTP 401
"The supplied authentication is invalid" otherwise) and answers with AT's JSON, as
`application/json` exactly (the SDK parses nothing else). Delivery reports are POSTed,
form-encoded, to `report_url` a short while later. What happens is chosen by the last two
digits of the number:

| number ends in | outcome |
|---|---|
| 91 | accepted, then reported `AbsentSubscriber`, then `Failed` (DeliveryFailure) |
| 92 | refused: 406 `UserInBlacklist` (the subscriber opted out), cost 0, messageId "None" |
| 93 | refused: 403 `InvalidPhoneNumber` |
| 94 | rate-limited: the first request for the number gets HTTP 429, the next is accepted |
| 95 | accepted, but no delivery report ever comes |
| anything else | accepted (101, "Success", KES 0.8000 a part), reported `Sent` then `Success` |

`POST /simulator/reply` (JSON `{"from": "+2547...", "text": "YES 4821"}`) makes the simulator
POST an incoming message to `incoming_url`, as AT does for a reply to our shortcode.
`GET /simulator/messages` lists what was sent; `GET /simulator/stats` counts requests;
`POST /simulator/reset` forgets both. `latency` (seconds) slows every send down.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlparse

from attendance.phones import mask_phone
from attendance.simulators import BackgroundSimulator, TimedPosts

from .segments import sms_segments

logger = logging.getLogger(__name__)
PART_COST = "0.8000"
REFUSED = {
    "92": (406, "UserInBlacklist"),
    "93": (403, "InvalidPhoneNumber"),
}


class AtSimulatorState:
    def __init__(self, *, username: str, api_key: str, report_delay: float):
        self.username = username
        self.api_key = api_key
        self.report_delay = report_delay
        self.report_url = ""
        self.incoming_url = ""
        self.latency = 0.0
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self.throttled: set[str] = set()
        self.stats = {"send": 0, "auth_failed": 0, "throttled": 0, "reports_sent": 0}
        self._reports = TimedPosts(self._post_report)

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] += 1

    def schedule(self, delay: float, report: dict) -> None:
        self._reports.schedule(delay, report)

    def _post_report(self, report: dict) -> None:
        if self.report_url:
            post_form(self.report_url, report)
            self.count("reports_sent")


def post_form(url: str, fields: dict) -> None:
    # The URL is the app's own, set by whoever started the simulator.
    request = urllib.request.Request(  # noqa: S310
        url,
        data=urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
    except Exception as error:
        logger.warning("AT simulator: POST to %s failed: %s", url.split("?")[0], error)


class Handler(BaseHTTPRequestHandler):
    server_version = "AfricasTalkingSimulator/1.0"
    # Keep-alive, as AT's servers: every answer carries its Content-Length. Headers and body
    # leave in one segment (buffered, no Nagle), or each answer on a kept-alive connection
    # would wait for a delayed ACK (40 ms).
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    disable_nagle_algorithm = True
    state: AtSimulatorState

    def log_message(self, format, *args):
        logger.debug("AT simulator: " + format, *args)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        self._answer(status, json.dumps(payload).encode(), "application/json")

    def _text(self, status: int, text: str) -> None:
        self._answer(status, text.encode(), "text/plain")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        path = urlparse(self.path).path
        if path == "/simulator/messages":
            with self.state.lock:
                return self._json(200, list(self.state.messages))
        if path == "/simulator/stats":
            with self.state.lock:
                return self._json(200, dict(self.state.stats))
        return self._text(404, "Not found")

    def do_POST(self):
        path = urlparse(self.path).path
        body = self._body()
        if path == "/version1/messaging":
            return self._send(body)
        if path == "/simulator/reply":
            return self._reply(body)
        if path == "/simulator/reset":
            with self.state.lock:
                self.state.messages.clear()
                self.state.throttled.clear()
                self.state.stats = dict.fromkeys(self.state.stats, 0)
            return self._json(200, {"reset": True})
        return self._text(404, "Not found")

    def _send(self, body: bytes) -> None:
        form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if (
            self.headers.get("apiKey") != self.state.api_key
            or form.get("username") != self.state.username
        ):
            self.state.count("auth_failed")
            return self._text(401, "The supplied authentication is invalid")
        if self.state.latency:
            time.sleep(self.state.latency)
        self.state.count("send")
        text = form.get("message", "")
        numbers = [n.strip() for n in form.get("to", "").split(",") if n.strip()]
        if not numbers or not text:
            return self._json(
                400, {"SMSMessageData": {"Message": "InvalidRequest", "Recipients": []}}
            )
        with self.state.lock:
            throttle = [n for n in numbers if n.endswith("94") and n not in self.state.throttled]
            self.state.throttled.update(throttle)
        if throttle:
            self.state.count("throttled")
            return self._text(429, "Too Many Requests: slow down")
        parts = sms_segments(text).parts
        recipients = [
            self._recipient(number, text, form.get("from", ""), parts) for number in numbers
        ]
        sent = sum(1 for r in recipients if r["statusCode"] == 101)
        total = f"KES {float(PART_COST) * parts * sent:.4f}" if sent else "0"
        return self._json(
            201,
            {
                "SMSMessageData": {
                    "Message": f"Sent to {sent}/{len(numbers)} Total Cost: {total}",
                    "Recipients": recipients,
                }
            },
        )

    def _recipient(self, number: str, text: str, sender: str, parts: int) -> dict:
        refused = REFUSED.get(number[-2:])
        if refused:
            code, status = refused
            return {
                "cost": "0",
                "messageId": "None",
                "number": number,
                "status": status,
                "statusCode": code,
            }
        message_id = f"ATXid_{uuid.uuid4().hex}"
        with self.state.lock:
            self.state.messages.append(
                {"id": message_id, "to": number, "from": sender, "message": text, "parts": parts}
            )
        # The demo's "log" of texts; the number is masked like every number we log.
        logger.info("AT simulator: SMS to %s: %s", mask_phone(number), text)
        ending = number[-2:]
        if ending == "91":
            reports = [("AbsentSubscriber", ""), ("Failed", "DeliveryFailure")]
        elif ending == "95":
            reports = []
        else:
            reports = [("Sent", ""), ("Success", "")]
        for step, (status, reason) in enumerate(reports, start=1):
            report = {
                "id": message_id,
                "status": status,
                "phoneNumber": number,
                "networkCode": "99999",
                "retryCount": "0",
            }
            if reason:
                report["failureReason"] = reason
            self.state.schedule(self.state.report_delay * step, report)
        return {
            "cost": f"KES {float(PART_COST) * parts:.4f}",
            "messageId": message_id,
            "number": number,
            "status": "Success",
            "statusCode": 101,
        }

    def _reply(self, body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._json(400, {"error": "JSON body expected"})
        if not self.state.incoming_url:
            return self._json(409, {"error": "no incoming messages URL configured"})
        fields = {
            "id": f"ATInbound_{uuid.uuid4().hex}",
            "from": str(data.get("from", "")),
            "to": str(data.get("to", "20880")),
            "text": str(data.get("text", "")),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "networkCode": "99999",
            "linkId": "",
        }
        post_form(self.state.incoming_url, fields)
        return self._json(200, {"posted": fields["id"]})


class AfricasTalkingSimulator(BackgroundSimulator):
    """Run the simulator in a background thread (tests, `make run`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "sandbox",
        api_key: str = "sim-at-api-key",
        report_delay: float = 1.0,
    ):
        state = AtSimulatorState(username=username, api_key=api_key, report_delay=report_delay)
        super().__init__(host=host, port=port, handler=Handler, state=state)
