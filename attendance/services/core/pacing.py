"""Doing many Daraja calls a few at a time, under a rate, from one task; and counting
Daraja's trouble (errors, spike arrest) for the alerts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection, connections
from django.utils import timezone

logger = logging.getLogger(__name__)


class Pacer:
    """At most `per_second` starts per second across threads. Told to slow down (Daraja's
    spike arrest), it halves its rate; after RECOVER_SECONDS without being told again it
    doubles back, step by step, to the rate it was given. (It used to stay slow for the rest
    of the job: an arrest in a 2,000-member job's first minute made the whole job crawl.)"""

    RECOVER_SECONDS = 10.0
    SLOWEST = 5.0  # seconds between starts, at the most

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.base = self.interval = 1.0 / per_second
        self.next_at = clock()
        self.changed_at = self.next_at
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = self.clock()
            if self.interval > self.base and now - self.changed_at >= self.RECOVER_SECONDS:
                self.interval = max(self.base, self.interval / 2)
                self.changed_at = now
            start_at = max(now, self.next_at)
            self.next_at = start_at + self.interval
        time.sleep(max(start_at - now, 0))

    def slow_down(self) -> None:
        with self.lock:
            self.interval = min(self.interval * 2, self.SLOWEST)
            self.changed_at = self.clock()


def threads_allowed() -> bool:
    """Threads have connections of their own and see only committed rows: inside a
    transaction (tasks run in-process in a test) stay on this one; SQLite takes one writer
    at a time anyway (the demo)."""
    return not connection.in_atomic_block and connection.vendor != "sqlite"


def in_thread(work: Callable[..., Any], *args: Any) -> Any:
    """Run `work` and close this thread's own database connections after it."""
    try:
        return work(*args)
    finally:
        connections.close_all()


def paced_map(
    work: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    concurrency: int,
    pacer: Pacer | None,
) -> list[Any]:
    """`work(item)` for each item, `concurrency` at a time when threads are allowed."""

    def one(item: Any) -> Any:
        if pacer is not None:
            pacer.wait()
        return work(item)

    if concurrency <= 1 or not threads_allowed():
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda item: in_thread(one, item), items))


PROBLEM_TTL = 3 * 3600


def daraja_problem_note(error: Any) -> None:
    """Count a Daraja error (a refusal, a timeout, no connection) or a spike-arrest answer.

    Counted in the shared cache by minute: cheap on every failure, and gone after three hours.
    Errors in what we asked (an invalid phone) are ours, not Daraja's, and are not counted.
    """
    if getattr(error, "code", "") == "invalid_request":
        return
    kind = "rate_limited" if getattr(error, "retryable", False) else "error"
    key = f"daraja-problems:{kind}:{int(timezone.now().timestamp() // 60)}"
    try:
        if not cache.add(key, 1, PROBLEM_TTL):
            cache.incr(key)
    except Exception:  # the cache is down: counting is not worth failing a payment over
        logger.warning("Could not count a Daraja problem", exc_info=True)


def daraja_problems(minutes: int, now: datetime | None = None) -> dict[str, int]:
    """How many Daraja errors and rate-limit answers in the last `minutes`."""
    last = int((now or timezone.now()).timestamp() // 60)
    counts = {}
    for kind in ("error", "rate_limited"):
        keys = [
            f"daraja-problems:{kind}:{minute}" for minute in range(last - minutes + 1, last + 1)
        ]
        try:
            counts[kind] = sum(cache.get_many(keys).values())
        except Exception:
            counts[kind] = 0
    return counts
