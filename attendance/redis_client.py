"""Every raw Redis client the product opens, from one place, so all follow a Sentinel.

Most Redis use goes through Django's cache and Celery's broker, which are configured in
settings. A few hot paths talk to Redis directly (the callback batch flag, readiness, the Daraja
rate limiter); they take their client from here. With REDIS_SENTINELS set, a client asks the
Sentinels which server is the master of REDIS_SENTINEL_MASTER and follows a failover; REDIS_URL
then gives only the database number and the password (its host is ignored).
"""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool


def _sentinel() -> Sentinel:
    # Sentinels answer on their own port and may have their own password.
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": 1}
    if settings.REDIS_SENTINEL_PASSWORD:
        sentinel_kwargs["password"] = settings.REDIS_SENTINEL_PASSWORD
    return Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs)


def _server_options(url: str) -> dict[str, Any]:
    """What of REDIS_URL applies to the master a Sentinel names: database, user, password, TLS."""
    parsed = parse_url(url)
    options = {k: parsed[k] for k in ("db", "username", "password") if parsed.get(k) is not None}
    if url.startswith("rediss://"):
        options["ssl"] = True
    return options


def redis_client(url: str | None = None, **options: Any) -> redis.Redis:
    """A client of `url` (REDIS_URL by default), through the Sentinels when they are set."""
    url = url or settings.REDIS_URL
    if settings.REDIS_SENTINELS:
        return _sentinel().master_for(
            settings.REDIS_SENTINEL_MASTER, **_server_options(url), **options
        )
    return redis.Redis.from_url(url, **options)


class SentinelPool(SentinelConnectionPool):
    """Django's Redis cache builds its pools with `pool_class.from_url(LOCATION)`; this one
    answers with a pool that asks the Sentinels for the master (settings: CACHES OPTIONS)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelPool:
        return cls(settings.REDIS_SENTINEL_MASTER, _sentinel(), **_server_options(url), **options)
