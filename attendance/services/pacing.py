"""Doing many Daraja calls a few at a time, under a rate, from one task."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, connections


class Pacer:
    """At most `per_second` starts per second across threads; halves itself when told to."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            start_at = max(now, self.next_at)
            self.next_at = start_at + self.interval
        time.sleep(max(start_at - now, 0))

    def slow_down(self) -> None:
        with self.lock:
            self.interval = min(self.interval * 2, 5.0)


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
