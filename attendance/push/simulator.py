"""A stand-in for a browser vendor's push service (FCM, Mozilla autopush, Apple), over HTTP on
loopback, for tests and `make run`.

It does what those services do with our requests (RFC 8030 §5 and §6, RFC 8292): refuses a
push without TTL or not `aes128gcm`, checks the VAPID JWT (ES256 signature, `aud` = its own
origin, `exp` within 24 hours) and answers 201. Unlike them, it also holds each virtual
device's private key, so it decrypts what arrives and logs it for tests and the console.

    POST /simulator/devices   {"scenario": ""|"gone"|"expired"|"busy"}  -> a subscription
    POST /push/<device>       a push (Web Push protocol)                 -> 201/400/403/404/410/429
    GET  /simulator/log       what each device received, decrypted

Scenarios: "gone" answers 410 and "expired" 404 (dead subscriptions), "busy" 429 with
Retry-After: 1 on the first push, then 201.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from attendance.simulators import BackgroundSimulator

from .keys import b64u, b64u_decode

logger = logging.getLogger(__name__)
SCENARIOS = {"", "gone", "expired", "busy"}


def decrypt(body: bytes, private: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """An aes128gcm push body (RFC 8188 + 8291), as the browser decrypts it."""
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender, ciphertext = body[21 : 21 + id_length], body[21 + id_length :]
    if id_length != 65 or len(ciphertext) > record_size:
        raise ValueError("keyid must be a 65-byte P-256 key; one record only")
    receiver = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    secret = private.exchange(
        ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender)
    )

    def hkdf(salt_: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA256(), length, salt_, info).derive(ikm)

    ikm = hkdf(auth, secret, b"WebPush: info\x00" + receiver + sender, 32)
    key = hkdf(salt, ikm, b"Content-Encoding: aes128gcm\x00", 16)
    nonce = hkdf(salt, ikm, b"Content-Encoding: nonce\x00", 12)
    padded = AESGCM(key).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
    if padded[-1:] != b"\x02":
        raise ValueError("the last record must end with the 0x02 delimiter")
    return padded[:-1]


def check_vapid(authorization: str, origin: str, now: float | None = None) -> dict:
    """The JWT's claims, or ValueError (a push service answers 401/403)."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError("not a vapid Authorization header")
    parts = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    header_b64, claims_b64, signature_b64 = parts["t"].split(".")
    header, claims = json.loads(b64u_decode(header_b64)), json.loads(b64u_decode(claims_b64))
    if header.get("alg") != "ES256":
        raise ValueError("alg must be ES256")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64u_decode(parts["k"]))
    signature = b64u_decode(signature_b64)
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature") from None
    if claims.get("aud") != origin:
        raise ValueError("aud is not the push resource's origin")
    now = time.time() if now is None else now
    if not now < claims.get("exp", 0) <= now + 24 * 3600:
        raise ValueError("exp passed or more than 24 h ahead")
    return claims


@dataclass
class Device:
    private: ec.EllipticCurvePrivateKey
    auth: bytes
    scenario: str = ""
    pushes: int = 0


@dataclass
class PushServiceState:
    devices: dict[str, Device] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    quiet: bool = False

    def received(self, device: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [entry for entry in self.log if not device or entry["device"] == device]


class Handler(BaseHTTPRequestHandler):
    state: PushServiceState  # bound by BackgroundSimulator

    def log_message(self, format, *args):
        pass

    def _answer(self, status: int, payload: object = None, **headers: str) -> None:
        body = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _origin(self) -> str:
        return f"http://{self.headers.get('Host', '')}"

    def do_GET(self):
        if self.path.startswith("/simulator/log"):
            return self._answer(200, self.state.received())
        return self._answer(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/simulator/devices":
            return self._new_device(body)
        if self.path.startswith("/push/"):
            return self._push(self.path.removeprefix("/push/"), body)
        return self._answer(404, {"error": "not found"})

    def _new_device(self, body: bytes) -> None:
        scenario = (json.loads(body or b"{}") or {}).get("scenario", "")
        if scenario not in SCENARIOS:
            return self._answer(400, {"error": f"scenario is one of {sorted(SCENARIOS)}"})
        private, auth = ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16)
        token = secrets.token_urlsafe(12) + (f"-{scenario}" if scenario else "")
        with self.state.lock:
            self.state.devices[token] = Device(private, auth, scenario)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return self._answer(
            201,
            {
                "endpoint": f"{self._origin()}/push/{token}",
                "expirationTime": None,
                "keys": {"p256dh": b64u(public), "auth": b64u(auth)},
            },
        )

    def _push(self, token: str, body: bytes) -> None:
        with self.state.lock:
            device = self.state.devices.get(token)
            if device is not None:
                device.pushes += 1
        if device is None or device.scenario == "expired":
            return self._answer(404, {"errno": 102, "message": "Subscription expired"})
        if device.scenario == "gone":
            return self._answer(410, {"errno": 106, "message": "Subscription gone"})
        if "TTL" not in self.headers:
            return self._answer(400, {"errno": 111, "message": "Missing TTL header"})
        if self.headers.get("Content-Encoding", "").lower() != "aes128gcm":
            return self._answer(400, {"errno": 110, "message": "Content-Encoding: aes128gcm"})
        try:
            claims = check_vapid(self.headers.get("Authorization", ""), self._origin())
        except (ValueError, KeyError) as error:
            return self._answer(403, {"errno": 109, "message": f"VAPID: {error}"})
        if device.scenario == "busy" and device.pushes == 1:
            return self._answer(429, {"errno": 999, "message": "Slow down"}, Retry_After="1")
        try:
            payload = json.loads(decrypt(body, device.private, device.auth))
        except (ValueError, InvalidTag) as error:
            return self._answer(400, {"errno": 110, "message": f"Cannot decrypt: {error!r}"})
        entry = {
            "device": token,
            "payload": payload,
            "ttl": int(self.headers["TTL"]),
            "urgency": self.headers.get("Urgency", "normal"),
            "topic": self.headers.get("Topic", ""),
            "subject": claims.get("sub", ""),
        }
        with self.state.lock:
            self.state.log.append(entry)
        if not self.state.quiet:
            buttons = " ".join(f"[{a.get('title')}]" for a in payload.get("actions", []))
            logger.warning(
                "Push service stand-in: to %s…: %s / %s %s",
                token[:6],
                payload.get("title", ""),
                payload.get("body", ""),
                buttons,
            )
        return self._answer(201, {}, Location=f"{self._origin()}/messages/{len(self.state.log)}")


class PushServiceSimulator(BackgroundSimulator):
    """The stand-in in a background thread (tests, `make run`)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = False):
        super().__init__(host=host, port=port, handler=Handler, state=PushServiceState(quiet=quiet))

    def new_device(self, scenario: str = "") -> dict:
        """A virtual phone's subscription, as `pushManager.subscribe()` returns it."""
        import requests

        answer = requests.post(
            f"{self.url}/simulator/devices", json={"scenario": scenario}, timeout=5
        )
        answer.raise_for_status()
        return answer.json()
