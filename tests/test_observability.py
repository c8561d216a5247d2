"""Observability across nodes (issue 30): JSON log lines with the node and the request or task
id, redacted as every log line is; Prometheus metrics for the internal networks only, counting
requests, tasks per queue, Daraja answers by code and the backlogs."""

import contextlib
import io
import json
import logging

import pytest
import requests
from django.conf import settings

from attendance.models import EmailNotification, MpesaCallback
from soundfusion_attendance.logs import ContextFilter, JsonFormatter
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines(settings):
    """What the console handler prints with LOG_FORMAT=json, captured."""
    settings.LOG_REQUESTS = True
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_a_request_logs_one_json_line_with_its_id_node_and_no_secret(client, json_lines):
    token = settings.MPESA_CALLBACK_TOKEN
    response = client.post(
        f"/api/payments/callback/{token}/",
        data=b"{not json",
        content_type="application/json",
        HTTP_X_REQUEST_ID="balancer-id-1234",
    )
    assert response["X-Request-ID"] == "balancer-id-1234"
    lines = [line for line in json_lines() if line["logger"] == "soundfusion.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "balancer-id-1234"
    assert line["node"] == settings.NODE_NAME
    assert line["status"] == response.status_code and line["method"] == "POST"
    assert token not in json.dumps(line)
    assert line["path"] == "/api/payments/callback/[redacted]/"
    assert isinstance(line["ms"], float)


def test_a_made_up_request_id_is_replaced(client, json_lines):
    response = client.get("/api/health/", HTTP_X_REQUEST_ID="<script>")
    assert response["X-Request-ID"] != "<script>" and len(response["X-Request-ID"]) == 32


def test_a_task_logs_one_line_with_its_id_and_queue(json_lines, mailoutbox):
    from attendance.services.messaging.email import notification_deliver_task

    row = EmailNotification.objects.create(
        recipient="a@example.com", notification_type="crew_reminder", subject="s", message="m"
    )
    result = notification_deliver_task.apply(args=[row.pk])
    tasks = [line for line in json_lines() if line["logger"] == "soundfusion.task"]
    assert len(tasks) == 1
    assert tasks[0]["task"] == "attendance.tasks.notification_deliver_task"
    assert tasks[0]["task_id"] == result.id and tasks[0]["state"] == "SUCCESS"
    assert "queue" in tasks[0]


def test_a_phone_number_in_a_log_line_is_masked(json_lines):
    logging.getLogger("attendance.test").warning("Prompt to 254712345678 failed")
    [line] = [x for x in json_lines() if x["logger"] == "attendance.test"]
    assert "254712345678" not in line["message"] and "2547*****678" in line["message"]


def _scrape(client, **headers):
    return client.get("/api/metrics/", **headers)


def test_metrics_are_for_internal_networks_or_the_token_only(client, settings):
    settings.READINESS_TOKEN = "metrics-token-123456"
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert _scrape(client, **outside).status_code == 404
    allowed = _scrape(client, HTTP_AUTHORIZATION="Bearer metrics-token-123456", **outside)
    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain")


def test_metrics_count_requests_backlogs_and_daraja_answers(client, daraja):
    from attendance.services.payments import payment_request_stk_push

    MpesaCallback.objects.create(raw_body="{}", status="received")
    EmailNotification.objects.create(
        recipient="b@example.com", notification_type="crew_reminder", subject="s", message="m"
    )
    EmailNotification.objects.filter(recipient="b@example.com").update(status="queued")
    daraja.state.max_pushes_per_second = 1  # a second push within the second is arrested
    payer = UserFactory(profile__phone_number="0712345001")
    payment_request_stk_push(payer=payer, amount=10, purpose="Balance payment", requested_by=payer)
    other = UserFactory(profile__phone_number="0712345002")
    with contextlib.suppress(Exception):  # refused or left to retry: counted either way
        payment_request_stk_push(
            payer=other, amount=10, purpose="Balance payment", requested_by=other
        )
    client.get("/api/health/")
    text = _scrape(client).content.decode()
    node = settings.NODE_NAME
    assert 'sf_inbox_backlog{inbox="mpesa_callbacks"} 1.0' in text
    assert 'sf_outbox_backlog{channel="email"} 1.0' in text
    assert f'sf_http_requests_total{{method="GET",node="{node}",status="200"}}' in text
    assert f'sf_daraja_answers_total{{code="200",family="stk_push",node="{node}"}}' in text
    assert f'sf_daraja_answers_total{{code="500.003.02",family="stk_push",node="{node}"}}' in text


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_machine_serves_its_task_counts_on_its_metrics_port(settings):
    """A worker started by the entrypoint with METRICS_PORT: its pool processes' counts by
    queue, added up from the machine's multiprocess directory."""
    from soundfusion_attendance.celery import app as celery_app
    from tests.conftest import set_celery_eager
    from tests.support.smtp import free_port
    from tests.support.waiting import wait_until
    from tests.support.workers import Workers

    port = free_port()
    set_celery_eager(False)
    try:
        import tempfile

        folder = tempfile.mkdtemp()
        with Workers(
            count=1,
            env={"METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": folder},
        ) as workers:
            celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
            from attendance.tasks import alerts_check_task

            alerts_check_task.delay()

            scraped = [""]

            def counted():
                try:
                    scraped[0] = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except requests.ConnectionError:
                    return False
                return "sf_tasks_total{" in scraped[0]

            assert wait_until(counted, timeout=60, interval=0.3), workers.output()
            text = scraped[0]
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)
    assert f'queue="{workers.queue}"' in text
    assert 'task="attendance.tasks.alerts_check_task"' in text
