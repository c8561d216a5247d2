"""For the busiest inboxes (STK callbacks, Paybill confirmations): storing fast, and one batch
task per burst instead of a task per body.

Queueing a Celery task costs more than storing the body, so only the request that sets a Redis
flag (the "kick") queues a batch task, and that task drains every row stored until the burst is
over. A process that has seen the flag set within LOCAL_SECONDS does not ask Redis again (a
round trip per body, a tenth of an endpoint's time); the batch task waits longer than that
before its last look, so no row is left behind. Nothing depends on the flag for the
correctness of money (processing is idempotent and the sweeper retries anything left
behind), only for speed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Model

from attendance.models.inbox import InboxStatus
from attendance.redis_client import redis_client

logger = logging.getLogger(__name__)


class Kick:
    """A Redis flag that means "a batch task is queued or running"."""

    SECONDS = 10  # refreshed while the task runs; a dead worker's flag expires
    LOCAL_SECONDS = 0.5

    def __init__(self, key: str) -> None:
        self.KEY = key
        self.seen_at = -1e9  # when this process last saw the flag set (monotonic clock)
        self._redis: Any = None

    def _client(self) -> Any:
        if self._redis is None:
            self._redis = redis_client()
        return self._redis

    def set(self) -> bool:
        """Set the flag if it is not set; True if this call set it. On the hot path: a plain
        Redis SET NX costs a quarter of Django's cache.add."""
        if not settings.REDIS_URL:
            return bool(cache.add(self.KEY, 1, timeout=self.SECONDS))
        return bool(self._client().set(self.KEY, 1, ex=self.SECONDS, nx=True))

    def refresh(self) -> None:
        if settings.REDIS_URL:
            self._client().expire(self.KEY, self.SECONDS)
        else:
            cache.touch(self.KEY, self.SECONDS)

    def clear(self) -> None:
        if settings.REDIS_URL:
            self._client().delete(self.KEY)
        else:
            cache.delete(self.KEY)

    def recently_seen(self, now: float) -> bool:
        return now - self.seen_at < self.LOCAL_SECONDS

    def saw_it(self, when: float) -> None:
        # `when` is read before the flag: the window never outlasts what the task allows.
        self.seen_at = when

    def forget(self) -> None:
        self.seen_at = -1e9


class Burst:
    """One batch task per burst of stored rows of `model`, woken by `kick`.

    `process` applies one row (the inbox's guarded process); `task` is the Celery task that
    runs `process_received` on a worker (looked up when first needed: it is defined beside
    the adapter, after this object).
    """

    linger_seconds = 1.0  # the batch task keeps looking until nothing came for this long
    poll_seconds = 0.2

    def __init__(
        self,
        *,
        model: type[Model],
        kick: Kick,
        process: Callable[[int], str],
        task: Callable[[], Task],
        label: str,
    ) -> None:
        self.model, self.kick, self.process, self.task, self.label = (
            model,
            kick,
            process,
            task,
            label,
        )

    def queue(self, row_id: int) -> None:
        """After the row's commit: wake (or trust) the batch task."""

        def queue() -> None:
            checked_at = time.monotonic()
            if self.kick.recently_seen(checked_at):
                return
            task = self.task()
            # Asked only here: reading Celery's config costs a tenth of the endpoint's time.
            if task.app.conf.task_always_eager:
                # No worker (the demo, tests): each request settles its own row. The flag is
                # for workers, whose batch task looks once more after clearing it; a task run
                # in a request cannot wait for other requests to commit.
                self.process(row_id)
                return
            try:
                if self.kick.set():
                    task.delay()
                self.kick.saw_it(checked_at)
            except Exception:
                # Redis or the broker is down: the row is stored; the sweeper processes it.
                self.kick.forget()
                with contextlib.suppress(Exception):  # Redis is down: the flag expires anyway
                    self.kick.clear()
                logger.warning("Could not queue %s %s; the sweeper will", self.label, row_id)

        transaction.on_commit(queue)

    def process_received(self) -> int:
        """The batch task (on a worker): process every stored row not processed yet.

        It keeps looking until it has found nothing new for `linger_seconds`, clears the flag,
        waits Kick.LOCAL_SECONDS (the longest any process trusts a flag it saw) and looks once
        more. A request checks the flag only after its row is committed, so a row whose
        request saw the flag set, or skipped Redis because it saw it recently, is committed
        before that last look. Returns how many it processed.
        """
        done, idle_since = 0, time.monotonic()
        while True:
            found = self.drain()
            done += found
            if found:
                idle_since = time.monotonic()
            if time.monotonic() - idle_since >= self.linger_seconds:
                break
            self.kick.refresh()
            time.sleep(self.poll_seconds)
        self.kick.clear()
        time.sleep(self.kick.LOCAL_SECONDS + self.poll_seconds)
        return done + self.drain()

    def drain(self) -> int:
        """Process stored rows in arrival order, each looked at once per drain.

        A cursor on the id, not "the oldest received rows again": a row another worker holds,
        or one whose processing failed, must not be picked up again and again ahead of the
        rest.
        """
        done, after = 0, 0
        rows = self.model._default_manager.filter(status=InboxStatus.RECEIVED)
        while True:
            batch = list(
                rows.filter(pk__gt=after).order_by("id").values_list("pk", flat=True)[:200]
            )
            if not batch:
                return done
            done += sum(self.process(pk) != "skipped" for pk in batch)
            after = batch[-1]


def insert_committed(sql: str, params: list[Any]) -> int:
    """One committed INSERT … RETURNING id, outside any transaction; returns the id.

    It skips the ORM's model machinery (a third of an endpoint's time in profiles).
    The connection is not health-checked first (CONN_HEALTH_CHECKS would cost a second round
    trip): a connection that died since the last request (a database restart) is
    replaced and the INSERT tried once more: a body is answered 200 only once it is stored,
    and Safaricom does not send it again.
    """
    for attempt in (1, 2):
        # Django would check the connection first (CONN_HEALTH_CHECKS, a SELECT 1 before the
        # request's first query): the retry below does that job, so the INSERT goes alone.
        connection.health_check_done = True  # type: ignore[attr-defined]  # not in the stubs
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()[0]
        except (OperationalError, InterfaceError):
            if attempt == 2 or not connection.get_autocommit() or connection.in_atomic_block:
                raise
            connection.close()
    raise AssertionError("unreachable")
