"""Errors reach Sentry (a stand-in ingest server on loopback) without a phone number or secret."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from soundfusion_attendance.observability import scrub_event, sentry_init

PHONE = "254712345678"
PASSWORD = "hunter2-hunter2-hunter2"


class _Ingest(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "br":  # sentry-sdk compresses with brotli where it is installed
            import brotli

            body = brotli.decompress(body)
        type(self).bodies.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry():
    import sentry_sdk

    _Ingest.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sentry_init(
        f"http://publickey@127.0.0.1:{server.server_port}/42",
        environment="test",
        release="",
        traces_sample_rate=0.0,
    )
    yield _Ingest.bodies
    sentry_sdk.init()  # no DSN: reporting off again
    server.shutdown()


def _events(bodies) -> list[dict]:
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    events = []
    for body in bodies:
        for line in body.split(b"\n"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "exception" in item:
                events.append(item)
    return events


def test_an_api_failure_reaches_sentry_without_phone_token_or_password(
    sentry, crew_client, monkeypatch
):
    def failing_push(**kwargs):
        raise RuntimeError(
            f"Daraja refused {kwargs['phone']} (callback token {settings.MPESA_CALLBACK_TOKEN})"
        )

    monkeypatch.setattr("attendance.views.api.payment_request_stk_push", failing_push)
    response = crew_client.post(
        f"/api/mpesa/request-payment/?access_token=abc123&phone={PHONE}",
        json.dumps({"phone": PHONE, "amount": 100, "password": PASSWORD}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer sekrit-bearer-value",
    )
    assert response.status_code == 500
    events = _events(sentry)
    assert len(events) == 1
    text = json.dumps(events[0])
    assert "RuntimeError" in text and "Daraja refused 2547*****678" in text  # still useful
    for secret in (PHONE, "0712345678", settings.MPESA_CALLBACK_TOKEN, PASSWORD, "abc123"):
        assert secret not in text, secret
    assert "sekrit-bearer-value" not in text


def test_a_callback_failure_reaches_sentry_without_the_urls_token(sentry, client, monkeypatch):
    def failing_store(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("attendance.views.webhooks.callback_receive", failing_store)
    body = {"Body": {"stkCallback": {"CallbackMetadata": {"Item": [{"Value": PHONE}]}}}}
    token = settings.MPESA_CALLBACK_TOKEN
    response = client.post(
        f"/api/payments/callback/{token}/", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    events = _events(sentry)
    assert len(events) == 1
    text = json.dumps(events[0])
    assert "disk full" in text and "/api/payments/callback/[redacted]/" in text
    assert token not in text and PHONE not in text


def test_the_scrubber_keeps_what_is_not_secret():
    event = {
        "request": {"headers": [["Cookie", "sessionid=abc"], ["User-Agent", "Safaricom"]]},
        "extra": {"ResultCode": 1032, "otp_code": "123456", "note": "paid by 0712345678"},
    }
    clean = scrub_event(event)
    assert clean["request"]["headers"] == [["Cookie", "[Filtered]"], ["User-Agent", "Safaricom"]]
    assert clean["extra"] == {
        "ResultCode": 1032,
        "otp_code": "[Filtered]",
        "note": "paid by 0712***678",
    }
