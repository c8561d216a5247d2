"""One Daraja rate for the whole deployment, whatever asks and wherever it runs.

Daraja limits each app's calls per API (its "spike arrest", 500.003.02). Bulk prompts, payouts,
the reconcilers and staff clicks run in many processes on several machines; pacing each process
on its own lets them add up past the limit. Every HTTP request the client sends to a rated API
first takes a place in a moving window kept in Redis, keyed by Daraja app and API family, so in
no second do all nodes together send more than the rate.

Why not the `limits` library, which the issue suggested: its windows are whole seconds (Redis's
EXPIRE is), and a window of exactly one second measured here lets two calls leave 1.000 s apart
and arrive 0.99 s apart, in the same second at Daraja. The window here is one second plus
MARGIN, on Redis's own clock (so nodes whose clocks disagree still share one window), in one
Lua script of a sorted set per key: small enough to read whole.

Without Redis (the demo), the window lives in the process, which is then the whole deployment.

A caller that has to wait says so in the shared cache for a few seconds (`waiting_note`), so a
job's progress page can tell staff that the job waits for Daraja's rate, not that it is stuck.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# Daraja's APIs by family: each family is rated on its own, as Daraja rates them.
STK_PUSH, STK_QUERY, B2C, STATUS, BALANCE, C2B, REVERSAL = (
    "stk_push",
    "stk_query",
    "b2c",
    "transaction_status",
    "account_balance",
    "c2b",
    "reversal",
)
FAMILIES = (STK_PUSH, STK_QUERY, B2C, STATUS, BALANCE, C2B, REVERSAL)
FAMILY_OF_PATH = {
    "/mpesa/stkpush/v1/processrequest": STK_PUSH,
    "/mpesa/stkpushquery/v1/query": STK_QUERY,
    "/mpesa/b2c/v3/paymentrequest": B2C,
    "/mpesa/transactionstatus/v1/query": STATUS,
    "/mpesa/accountbalance/v1/query": BALANCE,
    "/mpesa/c2b/v1/registerurl": C2B,
    "/mpesa/c2b/v2/registerurl": C2B,
    "/pulltransactions/v1/register": C2B,
    "/pulltransactions/v1/query": C2B,
    "/mpesa/reversal/v1/request": REVERSAL,
}
WAIT_NOTE_SECONDS = 5
# Calls leave here and arrive at Daraja a few milliseconds apart from how they left.
MARGIN = 0.05
WINDOW = 1.0 + MARGIN


class Window(Protocol):
    def take(self, key: str, limit: int, window: float) -> float:
        """Take a place if fewer than `limit` were taken in the last `window` seconds: 0.0;
        otherwise the seconds until the oldest place frees."""


# KEYS[1] a sorted set of places (member: a unique id, score: when, in Redis's seconds).
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + window - t)
"""


class RedisWindow:
    """The window in Redis, shared by every process that uses the same Redis."""

    def __init__(self, client: Any) -> None:
        self.script = client.register_script(_TAKE)

    def take(self, key: str, limit: int, window: float) -> float:
        return float(self.script(keys=[key], args=[limit, window, uuid.uuid4().hex]))


class MemoryWindow:
    """The window in this process (no Redis: the demo, one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.places: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def take(self, key: str, limit: int, window: float) -> float:
        with self.lock:
            now = self.clock()
            places = self.places.setdefault(key, deque())
            while places and places[0] <= now - window:
                places.popleft()
            if len(places) < limit:
                places.append(now)
                return 0.0
            return places[0] + window - now


def waiting_key(family: str) -> str:
    return f"daraja-rate-waiting:{family}"


def _per_window(per_second: float) -> tuple[int, float]:
    """(calls, seconds): whole calls in a window; under one a second, one call per 1/rate."""
    if per_second >= 1:
        return int(per_second), WINDOW
    return 1, 1 / per_second + MARGIN


class DarajaRate:
    """`wait(app, family)` returns once a call of that family may be sent (at once, mostly)."""

    def __init__(
        self,
        *,
        per_second: float,
        overrides: Mapping[str, float] | None = None,
        window: Window | None = None,
        note: Callable[[str, float], None] | None = None,
    ) -> None:
        self.window = window or MemoryWindow()
        self.limits = {
            family: _per_window((overrides or {}).get(family, per_second)) for family in FAMILIES
        }
        self.note = note

    def wait(self, app: str, family: str) -> float:
        """Take a place for one call of `family` by the Daraja app `app` (a fingerprint of its
        consumer key); returns the seconds waited."""
        limit, seconds = self.limits[family]
        key = f"daraja-rate:{app}:{family}"
        waited = 0.0
        while True:
            try:
                delay = self.window.take(key, limit, seconds)
            except Exception:
                # Redis is down: sending unpaced risks a spike arrest (answered, and retried
                # by the caller's rules); refusing to send would stop every payment.
                logger.warning("The Daraja rate store is unreachable; sending unpaced")
                return waited
            if delay <= 0:
                return waited
            # A little jitter keeps the waiting processes from all asking in the same instant.
            delay = min(delay, 5.0) + random.uniform(0, 0.01)
            if self.note is not None:
                self.note(family, delay)
            time.sleep(delay)
            waited += delay


def app_fingerprint(base_url: str, consumer_key: str) -> str:
    return hashlib.sha256(f"{base_url}|{consumer_key}".encode()).hexdigest()[:16]
