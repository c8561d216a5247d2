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
