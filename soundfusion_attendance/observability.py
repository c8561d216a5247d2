"""Error reporting to Sentry (when SENTRY_DSN is set), with nothing personal or secret in it.

Events carry requests (URLs, headers, bodies), exception messages, local variables and log
breadcrumbs: any of them may hold a member's phone number, the callback token of the M-Pesa
URL, a password or a Daraja secret. `scrub_event` walks the whole event before it leaves the
process: values under sensitive keys are replaced, and every string goes through the same
redaction as the logs (soundfusion_attendance/logs.py).
"""

from __future__ import annotations

import re
from typing import Any

from soundfusion_attendance.logs import redact

FILTERED = "[Filtered]"
# A key containing any of these holds a secret whatever its value looks like.
SENSITIVE_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "passkey",
    "pass_key",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "csrf",
    "session",
    "credential",
    "dsn",
    "otp",
    "code",  # second-factor codes, backup codes
)
# Keys that merely contain one of the words above but hold nothing secret.
HARMLESS_KEYS = {"ResultCode", "result_code", "status_code", "response_code", "ResponseCode"}
# Lists of [name, value] pairs in Sentry's request data.
PAIR_LISTS = {"headers", "cookies", "query_string", "env"}
# `name=value` of a sensitive name inside any text: query strings, form bodies, messages.
_SENSITIVE_PARAMS = re.compile(
    r"(?i)\b([\w-]*(?:password|secret|token|passkey|api_key|code|otp)[\w-]*)=([^&\s\"';,]+)"
)


def scrub_event(event: Any, hint: Any = None) -> Any:
    """Sentry's before_send: the event with secrets and phone numbers removed."""
    return _scrub(event)


def _scrub(value: Any, key: str = "") -> Any:
    if key and key not in HARMLESS_KEYS and any(word in key.lower() for word in SENSITIVE_KEYS):
        return FILTERED if value not in (None, "", [], {}) else value
    if isinstance(value, str):
        return _SENSITIVE_PARAMS.sub(lambda m: f"{m.group(1)}={FILTERED}", redact(value))
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if key in PAIR_LISTS:  # [[name, value], ...]: the name says whether it is secret
            return [_scrub_pair(item) for item in value]
        return [_scrub(item) for item in value]
    return value


def _scrub_pair(item: Any) -> Any:
    if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
        return [item[0], _scrub(item[1], item[0])]
    return _scrub(item)


def sentry_init(dsn: str, *, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[
            DjangoIntegration(),
            # Each periodic job becomes a Sentry cron monitor: a missed or failed run alerts.
            CeleryIntegration(monitor_beat_tasks=True),
        ],
        data_collection={"user_info": False},  # no user emails, names or IP addresses
        max_request_body_size="small",
        traces_sample_rate=traces_sample_rate,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=lambda crumb, hint: _scrub(crumb),
    )


# --- Tasks: one log line and the metrics per task, the task id on every line it logs -------
_started: dict[str, float] = {}
_task_tokens: dict[str, Any] = {}


def _queue_of(task: Any) -> str:
    info = getattr(task.request, "delivery_info", None) or {}
    return str(info.get("routing_key") or info.get("queue") or "in-process")


def task_started(task_id: str = "", task: Any = None, **_: Any) -> None:
    import time

    from soundfusion_attendance.logs import task_id as task_id_var

    _started[task_id] = time.perf_counter()
    _task_tokens[task_id] = task_id_var.set(task_id)


def task_finished(task_id: str = "", task: Any = None, state: str = "", **_: Any) -> None:
    import logging
    import time

    from django.conf import settings

    from attendance import metrics
    from soundfusion_attendance.logs import task_id as task_id_var

    began = _started.pop(task_id, None)
    seconds = time.perf_counter() - began if began is not None else None
    queue = _queue_of(task) if task is not None else "unknown"
    name = getattr(task, "name", "unknown")
    metrics.observe_task(queue, name, state or "UNKNOWN", seconds)
    if settings.LOG_REQUESTS:
        logging.getLogger("soundfusion.task").info(
            "%s %s",
            name,
            state,
            extra={
                "task": name,
                "queue": queue,
                "state": state,
                "ms": round(seconds * 1000, 1) if seconds is not None else None,
            },
        )
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        task_id_var.reset(token)


def connect_task_signals() -> None:
    from celery.signals import task_postrun, task_prerun, worker_init

    task_prerun.connect(task_started, weak=False)
    task_postrun.connect(task_finished, weak=False)
    worker_init.connect(serve_worker_metrics, weak=False)


def serve_worker_metrics(**_: Any) -> None:
    """A machine that runs only workers has no web node to scrape: with METRICS_PORT set, the
    worker's main process serves this machine's counts (all its pool processes) on that port."""
    import os

    from django.conf import settings

    if not settings.METRICS_PORT:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    start_http_server(settings.METRICS_PORT, addr=settings.METRICS_BIND, registry=registry)
