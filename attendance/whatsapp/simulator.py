"""A local stand-in for Meta's WhatsApp Business Cloud API, with its request and webhook shapes.

`POST /<version>/<phone-number-id>/messages` checks the bearer token (401, code 190
otherwise), that a template exists in that language (404, code 132001) and gets as many body
parameters and button payloads as it has (400, code 132000), and answers like Meta: accepted
is not delivered. Status webhooks follow a moment later, POSTed to `webhook_url` and signed
with the app secret (`X-Hub-Signature-256`), each carrying our `biz_opaque_callback_data`.
Free text to a member whose 24-hour window is closed is accepted, then fails on the webhook
with 131047, as Meta does. What happens is chosen by the last two digits of the number:

| number ends in | statuses |
|---|---|
| 81 | sent, delivered (never read) |
| 82 | failed 131047 (re-engagement: outside the window) |
| 83 | failed 131026 (not a WhatsApp number) |
| 84 | read, delivered, sent (out of order) |
| 85 | sent, sent, delivered, delivered, read, read (each twice) |
| 86 | none (lost) |
| 87 | the first send answers 400, code 130429 (throughput), the next is accepted |
| anything else | sent, delivered, read |

`POST /simulator/reply` (JSON `{"from": "2547...", "text": "YES"}`, or `"button": "Confirm"`
or a button's index) posts an incoming message as the member: a button press answers the last
template with buttons sent to them, with its payload and `context.id`. It opens their window.
`GET /simulator/messages` lists what was sent; `GET /simulator/stats` counts; `POST
/simulator/reset` forgets. `latency` (seconds) slows every send.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

from attendance.phones import mask_phone
from attendance.simulators import BackgroundSimulator, TimedPosts

from .templates import BY_NAME
from .webhook import signature_for

logger = logging.getLogger(__name__)
WINDOW_SECONDS = 24 * 3600
SCENARIOS: dict[str, list[tuple[str, int | None]]] = {
    "81": [("sent", None), ("delivered", None)],
    "82": [("failed", 131047)],
    "83": [("failed", 131026)],
    "84": [("read", None), ("delivered", None), ("sent", None)],
    "85": [(s, None) for s in ("sent", "sent", "delivered", "delivered", "read", "read")],
    "86": [],
}
NORMAL = [("sent", None), ("delivered", None), ("read", None)]
TITLES = {
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    130429: "Rate limit hit",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    190: "Access token has expired",
}


class Refused(Exception):
    """A request Meta would refuse: (HTTP status, error code, details)."""


class WaSimulatorState:
    def __init__(self, *, access_token: str, app_secret: str, phone_number_id: str, delay: float):
        self.access_token = access_token
        self.app_secret = app_secret
        self.phone_number_id = phone_number_id
        self.delay = delay
        self.webhook_url = ""
        self.latency = 0.0
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self.windows: dict[str, float] = {}
        self.throttled: set[str] = set()
        self.stats = {"send": 0, "auth_failed": 0, "refused": 0, "webhooks_sent": 0}
        self._webhooks = TimedPosts(self._post_webhook)

    def count(self, name: str) -> None:
        with self.lock:
            self.stats[name] += 1

    def schedule(self, delay: float, body: dict) -> None:
        self._webhooks.schedule(delay, json.dumps(body, separators=(",", ":")).encode())

    def window_open(self, wa_id: str) -> bool:
        with self.lock:
            return time.time() - self.windows.get(wa_id, 0) < WINDOW_SECONDS

    def _post_webhook(self, raw: bytes) -> None:
        if self.webhook_url:
            post_signed(self.webhook_url, raw, self.app_secret)
            self.count("webhooks_sent")


def post_signed(url: str, raw: bytes, secret: str) -> int:
    """POST a webhook body as Meta does: JSON, signed with the app secret."""
    request = urllib.request.Request(  # noqa: S310 (the app's own URL)
        url,
        data=raw,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature_for(raw, secret),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except Exception as error:
        logger.warning("WhatsApp simulator: POST to %s failed: %s", url.split("?")[0], error)
        return 0


def envelope(phone_number_id: str, value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "254700000001",
                                "phone_number_id": phone_number_id,
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def status_body(
    phone_number_id: str,
    *,
    wamid: str,
    status: str,
    to: str,
    reference: str = "",
    code: int | None = None,
) -> dict:
    item: dict = {
        "id": wamid,
        "status": status,
        "timestamp": str(int(time.time())),
        "recipient_id": to,
    }
    if reference:
        item["biz_opaque_callback_data"] = reference
    if status == "sent":
        item["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "type": "regular",
            "category": "utility",
        }
    if code is not None:
        title = TITLES.get(code, "Error")
        item["errors"] = [
            {
                "code": code,
                "title": title,
                "message": title,
                "error_data": {"details": title},
                "href": "/documentation/business-messaging/whatsapp/support/error-codes",
            }
        ]
    return envelope(phone_number_id, {"statuses": [item]})


class Handler(BaseHTTPRequestHandler):
    server_version = "WhatsAppCloudSimulator/1.0"
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    disable_nagle_algorithm = True
    state: WaSimulatorState

    def log_message(self, format, *args):
        logger.debug("WhatsApp simulator: " + format, *args)

    def _json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: int, details: str = "") -> None:
        self.state.count("refused")
        title = TITLES.get(code, "Error")
        self._json(
            status,
            {
                "error": {
                    "message": f"({'#'}{code}) {title}",
                    "type": "OAuthException",
                    "code": code,
                    "error_data": {"messaging_product": "whatsapp", "details": details or title},
                    "fbtrace_id": uuid.uuid4().hex[:20],
                }
            },
        )

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        path = urlparse(self.path).path
        with self.state.lock:
            if path == "/simulator/messages":
                return self._json(200, list(self.state.messages))
            if path == "/simulator/stats":
                return self._json(200, dict(self.state.stats))
        return self._json(404, {"error": "Not found"})

    def do_POST(self):
        path = urlparse(self.path).path
        body = self._body()
        if path.endswith(f"/{self.state.phone_number_id}/messages"):
            return self._send(body)
        if path == "/simulator/reply":
            return self._reply(body)
        if path == "/simulator/reset":
            with self.state.lock:
                self.state.messages.clear()
                self.state.windows.clear()
                self.state.throttled.clear()
                self.state.stats = dict.fromkeys(self.state.stats, 0)
            return self._json(200, {"reset": True})
        return self._json(404, {"error": "Not found"})

    def _send(self, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.state.access_token}":
            self.state.count("auth_failed")
            return self._error(401, 190)
        try:
            data = json.loads(body)
        except ValueError:
            return self._error(400, 100, "Invalid JSON")
        to = str(data.get("to", ""))
        if data.get("messaging_product") != "whatsapp" or not to.isdigit():
            return self._error(400, 100, "Invalid parameter")
        if self.state.latency:
            time.sleep(self.state.latency)
        with self.state.lock:
            throttle = to.endswith("87") and to not in self.state.throttled
            self.state.throttled.add(to)
        if throttle:
            return self._error(400, 130429)
        kind = data.get("type")
        if kind == "template":
            try:
                text, buttons = self._template(data.get("template") or {})
            except Refused as refused:
                return self._error(*refused.args)
        elif kind == "text":
            text, buttons = str((data.get("text") or {}).get("body", "")), []
            if not text:
                return self._error(400, 100, "text.body is required")
        else:
            return self._error(400, 131051)
        self.state.count("send")
        wamid = f"wamid.SIM{uuid.uuid4().hex.upper()}"
        reference = str(data.get("biz_opaque_callback_data", ""))
        with self.state.lock:
            self.state.messages.append(
                {
                    "id": wamid,
                    "to": to,
                    "type": kind,
                    "text": text,
                    "buttons": buttons,
                    "reference": reference,
                }
            )
        logger.info("WhatsApp simulator: %s to %s: %s", kind, mask_phone(to), text)
        if kind == "text" and not self.state.window_open(to):
            steps: list[tuple[str, int | None]] = [("failed", 131047)]
        else:
            steps = SCENARIOS.get(to[-2:], NORMAL)
        for n, (status, code) in enumerate(steps, start=1):
            self.state.schedule(
                self.state.delay * n,
                status_body(
                    self.state.phone_number_id,
                    wamid=wamid,
                    status=status,
                    to=to,
                    reference=reference,
                    code=code,
                ),
            )
        answer: dict = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        if kind == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return self._json(200, answer)

    def _template(self, template: dict) -> tuple[str, list[dict]]:
        approved = BY_NAME.get(str(template.get("name", "")))
        language = str((template.get("language") or {}).get("code", ""))
        if approved is None or language not in approved.bodies:
            raise Refused(404, 132001, f"{template.get('name')} in {language}")
        components = template.get("components") or []
        body = [c for c in components if c.get("type") == "body"]
        values = {
            p.get("parameter_name", ""): str(p.get("text", ""))
            for p in (body[0].get("parameters", []) if body else [])
        }
        if sorted(values) != sorted(approved.param_names):
            raise Refused(400, 132000, f"expected {len(approved.param_names)} named parameters")
        if any(not v.strip() or "\n" in v for v in values.values()):
            raise Refused(400, 132000, "a parameter is empty or has a new line")
        payloads = [
            (c.get("parameters") or [{}])[0].get("payload", "")
            for c in sorted(
                (c for c in components if c.get("type") == "button"),
                key=lambda c: int(c.get("index", 0)),
            )
        ]
        labels = approved.buttons.get(language, ())
        if len(payloads) != len(labels):
            raise Refused(400, 132000, f"expected {len(labels)} button payloads")
        buttons = [{"text": label, "payload": p} for label, p in zip(labels, payloads, strict=True)]
        return approved.body(language, values), buttons

    def _reply(self, body: bytes) -> None:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return self._json(400, {"error": "JSON body expected"})
        if not self.state.webhook_url:
            return self._json(409, {"error": "no webhook URL configured"})
        sender = "".join(ch for ch in str(data.get("from", "")) if ch.isdigit())
        if sender.startswith("0"):
            sender = "254" + sender[1:]
        message: dict = {
            "from": sender,
            "id": f"wamid.IN{uuid.uuid4().hex.upper()}",
            "timestamp": str(int(time.time())),
        }
        if "button" in data:
            with self.state.lock:
                last = next(
                    (
                        m
                        for m in reversed(self.state.messages)
                        if m["to"] == sender and m["buttons"]
                    ),
                    None,
                )
            if last is None:
                return self._json(409, {"error": "no message with buttons was sent to them"})
            choice = data["button"]
            buttons = last["buttons"]
            index = (
                choice
                if isinstance(choice, int)
                else next(
                    (i for i, b in enumerate(buttons) if b["text"].lower() == str(choice).lower()),
                    0,
                )
            )
            button = buttons[min(max(index, 0), len(buttons) - 1)]
            message.update(
                type="button",
                context={"from": "254700000001", "id": last["id"]},
                button={"payload": button["payload"], "text": button["text"]},
            )
        else:
            message.update(type="text", text={"body": str(data.get("text", ""))})
        with self.state.lock:
            self.state.windows[sender] = time.time()
        raw = json.dumps(
            envelope(
                self.state.phone_number_id,
                {
                    "contacts": [{"profile": {"name": "Member"}, "wa_id": sender}],
                    "messages": [message],
                },
            ),
            separators=(",", ":"),
        ).encode()
        status = post_signed(self.state.webhook_url, raw, self.state.app_secret)
        return self._json(200, {"posted": message["id"], "status": status})


class WhatsAppSimulator(BackgroundSimulator):
    """Run the simulator in a background thread (tests, `make run`)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_token: str = "sim-whatsapp-token",  # noqa: S107 (the simulator's own)
        app_secret: str = "sim-whatsapp-app-secret",  # noqa: S107
        phone_number_id: str = "106540352242922",
        status_delay: float = 1.0,
    ):
        state = WaSimulatorState(
            access_token=access_token,
            app_secret=app_secret,
            phone_number_id=phone_number_id,
            delay=status_delay,
        )
        super().__init__(host=host, port=port, handler=Handler, state=state)
