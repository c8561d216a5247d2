"""The callback "kick": a Redis flag that means "a batch task is queued or running".

Queueing a Celery task costs more than storing the callback, so only the request that sets
the flag queues one, and that task drains every callback stored until the burst is over. A
process that has seen the flag set within LOCAL_SECONDS does not ask Redis again (a round trip
per callback, a tenth of the endpoint's time); the batch task waits longer than that before
its last look (inbox.callbacks_process_received), so no callback is left behind.

Nothing depends on the flag for the correctness of money (processing is idempotent and the
sweeper retries anything left behind), only for speed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache


class CallbackKick:
    KEY = "mpesa:callbacks:kick"
    SECONDS = 10  # refreshed while the task runs; a dead worker's flag expires
    LOCAL_SECONDS = 0.5

    def __init__(self) -> None:
        self.seen_at = -1e9  # when this process last saw the flag set (monotonic clock)
        self._redis: Any = None

    def _client(self):
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(settings.REDIS_URL)
        return self._redis

    def set(self) -> bool:
        """Set the flag if it is not set; True if this call set it.

        On the callback's hot path: a plain Redis SET NX costs a quarter of Django's cache.add.
        """
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


callback_kick = CallbackKick()
