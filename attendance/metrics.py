"""Prometheus metrics, per node: requests, tasks per queue, Daraja answers by code, and the
backlogs that say whether the machines keep up (inboxes, outboxes, queues).

Counters live in the process that counts (a gunicorn worker, a Celery pool process). With
PROMETHEUS_MULTIPROC_DIR set (the entrypoint sets one per machine), every process of the machine
writes its counts there and one scrape adds them up: `/api/metrics/` on a web node, or
METRICS_PORT on a machine that runs only workers. The backlogs are read from the database and
the broker when scraped, so they are the deployment's, whichever node answers.

Why prometheus_client and not django-prometheus: the counts that matter most come from Celery
workers and the Daraja client, which django-prometheus does not see, and its per-model and
per-view series are more than an operator needs here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter("sf_http_requests", "HTTP requests answered", ["node", "method", "status"])
REQUEST_SECONDS = Histogram(
    "sf_http_request_seconds", "Time to answer an HTTP request", ["node", "method"]
)
TASKS = Counter("sf_tasks", "Celery tasks finished", ["node", "queue", "task", "state"])
TASK_SECONDS = Histogram("sf_task_seconds", "Time a Celery task ran", ["node", "queue"])
DARAJA = Counter(
    "sf_daraja_answers", "Answers from Daraja by API family and code", ["node", "family", "code"]
)


def _node() -> str:
    from soundfusion_attendance.logs import node_name

    return node_name()


def observe_request(method: str, status: int, seconds: float) -> None:
    node = _node()
    REQUESTS.labels(node, method, str(status)).inc()
    REQUEST_SECONDS.labels(node, method).observe(seconds)


def observe_task(queue: str, task: str, state: str, seconds: float | None) -> None:
    node = _node()
    TASKS.labels(node, queue, task, state).inc()
    if seconds is not None:
        TASK_SECONDS.labels(node, queue).observe(seconds)


def observe_daraja(family: str, code: str) -> None:
    DARAJA.labels(_node(), family, code or "unknown").inc()


class Backlogs(Collector):
    """What waits: stored callbacks not yet applied, messages not yet sent, tasks in queues."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.apps import apps

        from attendance.models.inbox import InboxStatus

        inbox = GaugeMetricFamily(
            "sf_inbox_backlog", "Stored bodies not yet processed", labels=["inbox"]
        )
        for label, model in (
            ("mpesa_callbacks", "MpesaCallback"),
            ("payout_results", "PayoutResult"),
            ("paybill_notices", "PaybillNotice"),
            ("sms_callbacks", "SmsCallback"),
        ):
            rows = apps.get_model("attendance", model).objects
            waiting = rows.filter(
                status__in=[InboxStatus.RECEIVED, InboxStatus.WAITING, InboxStatus.ERROR]
            ).count()
            inbox.add_metric([label], waiting)
        yield inbox

        outbox = GaugeMetricFamily(
            "sf_outbox_backlog", "Messages waiting to be sent", labels=["channel"]
        )
        for label, model in (("email", "EmailNotification"), ("sms", "SmsMessage")):
            rows = apps.get_model("attendance", model).objects
            outbox.add_metric([label], rows.filter(status="queued").count())
        yield outbox

        queues = GaugeMetricFamily("sf_queue_depth", "Tasks waiting in a queue", labels=["queue"])
        for name, depth in _queue_depths():
            queues.add_metric([name], depth)
        yield queues


def _queue_depths() -> list[tuple[str, int]]:
    from celery import current_app
    from django.conf import settings

    from attendance.redis_client import redis_client
    from soundfusion_attendance.queues import all_queues

    if current_app.conf.task_always_eager or not settings.REDIS_URL:
        return []
    try:
        client = redis_client(socket_connect_timeout=1, socket_timeout=1)
        return [(q, int(client.llen(q))) for q in all_queues(current_app.conf.task_default_queue)]
    except Exception:  # the broker is down: readiness says so; the scrape still answers
        return []


def render() -> tuple[bytes, str]:
    """The scrape: this machine's counts (all its processes) and the backlogs."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:  # one process (the demo, tests): its own counts
        for collector in (REQUESTS, REQUEST_SECONDS, TASKS, TASK_SECONDS, DARAJA):
            registry.register(collector)
    registry.register(Backlogs())
    return generate_latest(registry), CONTENT_TYPE_LATEST
