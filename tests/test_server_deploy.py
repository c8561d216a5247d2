"""The production server setup as the README runs it: gunicorn with its shipped config, and
nginx in front with the shipped snippets. Real processes, real sockets."""

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings

from attendance.models import MpesaCallback, MpesaPayment
from tests.support.factories import PaymentFactory
from tests.support.mpesa_wire import success_callback
from tests.support.servers import DEPLOY, Nginx, wait_for_port
from tests.support.smtp import free_port
from tests.support.waiting import wait_until
from tests.support.workers import ROOT, database_url_of_this_process

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Gunicorn:
    def __init__(self, *, workers: int = 3):
        self.port = free_port()
        self.logs = Path(tempfile.mkdtemp(prefix="sf-gunicorn-"))
        self.access_log = self.logs / "access.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url_of_this_process(),
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_ACCESS_LOG": str(self.access_log),
            "CELERY_TASK_ALWAYS_EAGER": "True",
        }
        command = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py")]
        self.process = subprocess.Popen(
            [*command, "soundfusion_attendance.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.logs / "error.log").open("wb"),
        )
        wait_for_port(self.port, self.process)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.logs, ignore_errors=True)


@pytest.fixture
def gunicorn():
    server = Gunicorn()
    yield server
    server.stop()


@pytest.fixture
def nginx(gunicorn):
    if not shutil.which("nginx"):
        from tests.conftest import _service_missing

        _service_missing("needs Debian's nginx package (apt-get install nginx-light)")
    proxy = Nginx(gunicorn.port)
    yield proxy
    proxy.stop()


def _callback_path() -> str:
    return f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"


def _post_chunked(port: int, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    # Two chunks and no Content-Length, as a client streaming its body sends it.
    connection.request(
        "POST",
        _callback_path(),
        body=iter([body[:40], body[40:]]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    status = connection.getresponse().status
    connection.close()
    return status


def _get_health(port: int, timeout: float) -> float:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("GET", "/api/health/")
    assert connection.getresponse().status == 200
    connection.close()
    return time.monotonic() - started


def test_a_chunked_callback_is_read_whole_by_gunicorn_and_its_token_never_logged(gunicorn):
    payment = PaymentFactory(amount=100)
    body = success_callback(payment.checkout_request_id).encode()
    assert _post_chunked(gunicorn.port, body) == 200

    assert MpesaCallback.objects.get().raw_body == body.decode()
    assert wait_until(
        lambda: MpesaPayment.objects.get(pk=payment.pk).status == MpesaPayment.Status.COMPLETED,
        timeout=10,
    )
    assert wait_until(lambda: "/api/payments/callback/" in gunicorn.access_log.read_text(), 5)
    logged = gunicorn.access_log.read_text()
    assert settings.MPESA_CALLBACK_TOKEN not in logged
    assert "/api/payments/callback/[redacted]/" in logged


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """Connections that start a request and never finish it (a "slowloris")."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /api/payments/callback/x/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sockets.append(s)
    return sockets


def test_slow_clients_stall_bare_gunicorn_but_not_gunicorn_behind_nginx(gunicorn, nginx):
    # Warm: each worker loads the app on its first request, which on a busy machine can take
    # a second; what is measured below is serving, not loading.
    assert min(_get_health(nginx.port, timeout=5) for _ in range(5)) < 1.0

    slow = _slow_clients(gunicorn.port, 6)
    try:
        # Six slow connections hold all three sync workers: the site stops answering.
        with pytest.raises(TimeoutError):
            _get_health(gunicorn.port, timeout=2)
    finally:
        for s in slow:
            s.close()

    slow = _slow_clients(nginx.port, 60)
    try:
        # Behind nginx the same attack, ten times bigger, costs nginx connections only.
        timings = [_get_health(nginx.port, timeout=5) for _ in range(10)]
        assert max(timings) < 1.0, timings
        # A chunked callback through nginx arrives whole too.
        payment = PaymentFactory(amount=100)
        body = success_callback(payment.checkout_request_id).encode()
        assert _post_chunked(nginx.port, body) == 200
        assert MpesaCallback.objects.get().raw_body == body.decode()
    finally:
        for s in slow:
            s.close()

    assert wait_until(lambda: "/api/payments/callback/" in nginx.access_log.read_text(), 5)
    logged = nginx.access_log.read_text()
    assert settings.MPESA_CALLBACK_TOKEN not in logged
    assert "/api/payments/callback/[redacted]/" in logged


def test_no_token_reaches_a_log_through_the_shipped_nginx_config(gunicorn, nginx):
    """Every kind of URL that carries a secret, through nginx to gunicorn: neither log holds
    the secret (the webhooks' tokens, a calendar feed, a short answer link)."""
    import requests

    feed = "Zq8XcalendarFeedToken42"
    secrets = [
        settings.MPESA_CALLBACK_TOKEN,
        settings.MPESA_B2C_RESULT_TOKEN,
        settings.SMS_CALLBACK_TOKEN,
        feed,
        "RXGKBW8MUT",
    ]
    base = f"http://127.0.0.1:{nginx.port}"
    for url in (
        f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/",
        f"/api/payouts/result/{settings.MPESA_B2C_RESULT_TOKEN}/",
        f"/api/payouts/status/{settings.MPESA_B2C_RESULT_TOKEN}/",
        f"/api/sms/incoming/{settings.SMS_CALLBACK_TOKEN}/",
        f"/api/sms/delivery/{settings.SMS_CALLBACK_TOKEN}/",
    ):
        requests.post(base + url, data=b"{}", timeout=10)
    requests.get(f"{base}/calendar/{feed}.ics", timeout=10)
    requests.get(f"{base}/RXGKBW8MUT/", timeout=10, allow_redirects=False)
    assert wait_until(lambda: nginx.access_log.read_text().count("\n") >= 7, 5)
    for log in (nginx.access_log, gunicorn.access_log):
        text = log.read_text()
        assert not [s for s in secrets if s and s in text], text[-2000:]
    logged = nginx.access_log.read_text()
    assert "/api/payouts/result/[redacted]/" in logged and "/calendar/[redacted].ics" in logged


def test_nginx_s_error_log_never_prints_a_token_when_the_app_is_down():
    """nginx writes the raw request line to its error log when the app cannot be reached;
    the shipped config keeps that out for the paths that carry a secret."""
    import requests

    nginx = Nginx(free_port())  # nothing listens there: every request is a 502
    try:
        base = f"http://127.0.0.1:{nginx.port}"
        token = settings.MPESA_CALLBACK_TOKEN
        assert (
            requests.post(f"{base}/api/payments/callback/{token}/", data=b"{}").status_code == 502
        )
        assert requests.get(f"{base}/calendar/Zq8XcalendarFeedToken42.ics").status_code == 502
        assert requests.get(f"{base}/accounts/login/").status_code == 502
        assert wait_until(lambda: "/accounts/login/" in nginx.error_log.read_text(), 5)
        logged = nginx.error_log.read_text()
        assert token not in logged and "Zq8XcalendarFeedToken42" not in logged
    finally:
        nginx.stop()
