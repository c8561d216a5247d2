"""A Sentinel-managed Redis: the raw clients, the cache and the Celery broker all find the
master through a real Sentinel (Redis's own, `redis-server --sentinel`), and none of them uses
the host written in REDIS_URL."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.core.cache.backends.redis import RedisCache

from attendance.redis_client import redis_client
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parent.parent
MASTER = "sfmaster"
# The host is a name that resolves nowhere: only the Sentinel can lead a client to Redis.
URL_BEHIND_SENTINEL = "redis://nowhere.invalid:1/6"


@pytest.fixture(scope="module")
def sentinel():
    binary = shutil.which("redis-server") or shutil.which("redis-sentinel")
    assert binary, "redis-server is installed with Redis (Debian's redis-server package)"
    port = free_port()
    folder = tempfile.mkdtemp()
    config = Path(folder) / "sentinel.conf"  # a Sentinel rewrites its file: its own copy
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\nsentinel monitor {MASTER} 127.0.0.1 6379 1\n"
    )
    process = subprocess.Popen(
        [binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.sentinel_get_master_addr_by_name(MASTER):
                break
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, "the Sentinel did not start"
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def behind_sentinel(settings, sentinel):
    settings.REDIS_SENTINELS = [("127.0.0.1", sentinel)]
    settings.REDIS_SENTINEL_MASTER = MASTER
    settings.REDIS_URL = URL_BEHIND_SENTINEL
    return sentinel


def test_a_raw_client_finds_the_master_through_the_sentinel(behind_sentinel):
    key = f"sentinel-test-{uuid.uuid4().hex}"
    redis_client().set(key, "through the sentinel", ex=30)
    direct = redis.Redis(host="127.0.0.1", port=6379, db=6)  # the database REDIS_URL names
    assert direct.get(key) == b"through the sentinel"


def test_the_cache_finds_the_master_through_the_sentinel(behind_sentinel):
    cache = RedisCache(
        URL_BEHIND_SENTINEL,
        {
            "KEY_PREFIX": "sentinel-test",
            "OPTIONS": {"pool_class": "attendance.redis_client.SentinelPool"},
        },
    )
    key = uuid.uuid4().hex
    assert cache.add(key, {"a": 1}, 30)
    assert cache.get(key) == {"a": 1}
    assert not cache.add(key, "again", 30)  # the lock primitive the reconciler relies on


def test_readiness_asks_redis_through_the_sentinel(behind_sentinel):
    from attendance.services.ops.health import _check_redis

    assert _check_redis().ok


def test_settings_build_a_sentinel_broker_and_celery_uses_it(sentinel):
    """The settings as a worker reads them from its environment: the broker URL is one
    sentinel:// per Sentinel, and a message goes through it and comes back."""
    queue = f"sentinel-test-{uuid.uuid4().hex[:8]}"
    script = f"""
import django
django.setup()
from django.conf import settings
from soundfusion_attendance.celery import app
print(settings.CELERY_BROKER_URL)
print(settings.CELERY_BROKER_TRANSPORT_OPTIONS["master_name"])
print(settings.CACHES["default"]["OPTIONS"]["pool_class"])
with app.connection_for_write() as connection:
    box = connection.SimpleQueue("{queue}")
    box.put({{"hello": "sentinel"}})
    message = box.get(timeout=10)
    message.ack()
    print(message.payload["hello"])
    box.close()
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "soundfusion_attendance.settings",
        "REDIS_URL": URL_BEHIND_SENTINEL,
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel}",
        "REDIS_SENTINEL_MASTER": MASTER,
    }
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.split()
    assert lines[0] == f"sentinel://127.0.0.1:{sentinel}/6"
    assert lines[1:] == [MASTER, "attendance.redis_client.SentinelPool", "sentinel"]
