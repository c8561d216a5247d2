"""Logging that never writes a secret or a whole phone number.

The M-Pesa callback URL carries the only thing that keeps forged callbacks out (its token), and
Django's request logging ("Bad Request: /api/payments/callback/<token>/"), the dev server and
gunicorn's access log all print request paths. Rather than hoping every handler has a filter,
every log record is redacted when it is created (a record factory), whichever library logs it;
`RedactSecrets` does the same as a plain logging filter for configurations of their own (e.g.
gunicorn's `logconfig_dict`).

Redacted:
- path segments that are credentials: the callback and payout result tokens, crew answer-link
  tokens and password reset tokens (any value, so a forged token in a 404 line is hidden too);
- the values of the secret settings named in SECRET_SETTINGS, wherever they appear;
- Kenyan mobile numbers, masked like `mask_phone` does (`2547*****678`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
from datetime import UTC, datetime

# Settings whose values must never reach a log line.
SECRET_SETTINGS = (
    "MPESA_CALLBACK_TOKEN",
    "MPESA_CONSUMER_SECRET",
    "MPESA_PASS_KEY",
    "MPESA_INITIATOR_PASSWORD",
    "MPESA_B2C_RESULT_TOKEN",
    "MPESA_B2C_CONSUMER_SECRET",
    "MPESA_B2C_INITIATOR_PASSWORD",
    "EMAIL_HOST_PASSWORD",
    "SECRET_KEY",
    "SENTRY_DSN",
    "AT_API_KEY",
    "SMS_CALLBACK_TOKEN",
    "READINESS_TOKEN",
    "STORAGE_SECRET_KEY",
    "REDIS_SENTINEL_PASSWORD",
)
REDACTED = "[redacted]"

_URL_TOKENS = re.compile(
    r"(?P<keep>/(?:api/(?:payments|mpesa)/callback"
    r"|api/payouts/(?:result|timeout|status|balance)"
    r"|crew/\d+/answer"
    r"|api/sms/(?:delivery|incoming)"
    r"|calendar"
    r"|accounts/reset/[^/\s\"']+)/)"
    r"(?P<secret>[^/\s\"'?#]+)"
)
# A crew member's short answer link, /RXGKBW8MUT/ (crew_links.py): a path of its own.
_SHORT_LINK = re.compile(r"(?<=[\s\"'])/[2-9A-HJKMNP-Z]{8,12}/(?=[\s\"'?]|$)")
# 2547XXXXXXXX / 2541XXXXXXXX (with or without +) and 07XX / 01XX local spellings.
_PHONES = re.compile(r"(?<!\d)(\+?254[17]\d{8}|0[17]\d{8})(?!\d)")


def _mask(match: re.Match) -> str:
    number = match.group(1)
    plus, digits = ("+", number[1:]) if number.startswith("+") else ("", number)
    return plus + digits[:4] + "*" * (len(digits) - 7) + digits[-3:]


def _secret_values() -> list[str]:
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        values = [str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS]
    except Exception:  # settings not importable yet (early start-up)
        return []
    return [value for value in values if len(value) >= 8]


def redact(text: str) -> str:
    """`text` with URL tokens, secret values and phone numbers hidden."""
    for value in _secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    text = _URL_TOKENS.sub(lambda m: m.group("keep") + REDACTED, text)
    text = _SHORT_LINK.sub(f"/{REDACTED}/", text)
    return _PHONES.sub(_mask, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message (and any traceback) by its redacted text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a caller's bad format string: leave it for logging to report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    return record


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install_record_factory() -> None:
    """Redact every record at creation, for every logger in the process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True


def configure(logging_settings: dict | None) -> None:
    """Django's LOGGING_CONFIG: install the redaction, then apply settings.LOGGING."""
    install_record_factory()
    if logging_settings:
        logging.config.dictConfig(logging_settings)


# --- Context and JSON lines (several machines: one log store, lines from every node) ------------
# Set by RequestLogMiddleware for a request and by the Celery signals for a task.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="")
_node = ""


def node_name() -> str:
    global _node
    if not _node:
        try:
            from django.conf import settings

            _node = str(getattr(settings, "NODE_NAME", "")) or "-"
        except Exception:  # settings not ready yet
            return "-"
    return _node


class ContextFilter(logging.Filter):
    """Adds the node, and the request or task id, to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = node_name()
        record.request_id = request_id.get()
        record.task_id = task_id.get()
        return True


# What the standard LogRecord has: everything else on a record came as `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "node",
    "request_id",
    "task_id",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, node, request or task id,
    the record's extras and any traceback. The text has already been redacted (the record
    factory above); extras are redacted here, being strings a caller chose."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "node": getattr(record, "node", None) or node_name(),
        }
        for key in ("request_id", "task_id"):
            if value := getattr(record, key, ""):
                line[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["traceback"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)
