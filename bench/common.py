"""Shared set-up for benchmarks: a dedicated PostgreSQL database and Redis, migrated.

Benchmarks never touch the development database: they use `<DATABASE_URL db>_bench`, created
and migrated on first use. They need PostgreSQL and Redis (the defaults below are this
machine's services).
"""

import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASE_DB = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/soundfusion")
REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def setup_django(db_suffix="_bench"):
    import psycopg2

    url = urlparse(BASE_DB)
    if url.scheme not in {"postgres", "postgresql"}:
        raise SystemExit("Benchmarks need PostgreSQL: set DATABASE_URL=postgres://...")
    name = url.path.lstrip("/") + db_suffix
    admin = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    os.environ["DATABASE_URL"] = url._replace(path="/" + name).geturl()
    os.environ["REDIS_URL"] = REDIS
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundfusion_attendance.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return os.environ["DATABASE_URL"]


def empty_tables(*models):
    """Start a benchmark from empty tables, whatever earlier runs left.

    TRUNCATE, not DELETE: deleted rows stay on disk until VACUUM, and where autovacuum is
    off (as on these machines' PostgreSQL) each run would write into a bigger, bloated table
    and index than the last and measure slower for it. CASCADE empties the rows that point at
    these (ledger entries, callbacks); this database is the benchmarks' own.
    """
    from django.db import connection

    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values_ms):
    return (
        f"median {statistics.median(values_ms):.1f} ms, p95 {percentile(values_ms, 95):.1f} ms, "
        f"p99 {percentile(values_ms, 99):.1f} ms (n={len(values_ms)})"
    )


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def log_in_staff(client, user):
    """Log staff in as after both steps: a password session verified by an authenticator app.

    Admin asks staff for a second factor; the benchmarks time the pages, not the login.
    """
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = device or TOTPDevice.objects.create(user=user, name="Bench phone", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def time_pages(client, pages, runs=12, quiet=False):
    """GET each (name, url, target ms) `runs` times after one untimed request that counts its
    queries; prints p50, p95 and the query count (with `quiet`, only the pages over target,
    then a summary). True if every p95 is under its target."""
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    ok = True
    measured = []
    for name, url, target in pages:
        reset_queries()  # the test client's request_started clears the log mid-capture otherwise
        with CaptureQueriesContext(connection) as queries:
            status = client.get(url).status_code
        # Read now: captured_queries is a view of the log, which the next request clears.
        count = len(queries.captured_queries)
        if status != 200:
            print(f"{name:46} HTTP {status} ({url})")
            ok = False
            continue
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        p95 = percentile(times, 95)
        ok &= p95 < target
        measured.append((p95, name, url))
        if not quiet or p95 >= target:
            print(
                f"{name:46} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  "
                f"{count:3d} queries  {'ok' if p95 < target else f'OVER {target} ms ({url})'}"
            )
    if len(measured) > 20:
        over = sum(1 for p95, *_ in measured if p95 >= pages[0][2])
        slowest = ", ".join(f"{name} {p95:.0f} ms" for p95, name, _ in sorted(measured)[-5:])
        print(f"{len(measured)} pages, {over} over target; slowest: {slowest}")
    return ok


class Gunicorn:
    """The app on gunicorn with production settings, on a free loopback port, for as long as
    the `with` block lasts: `BENCH_GUNICORN` overrides the options (default `--workers 3`)."""

    def __init__(self, db_url, **env):
        from tests.support.smtp import free_port

        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "DEBUG": "False",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "False",
            "LOG_LEVEL": "WARNING",
            "MPESA_CONSUMER_KEY": "sim-consumer-key",
            "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
            "MPESA_PASS_KEY": "sim-pass-key",
            **env,
        }

    def __enter__(self):
        import http.client
        import subprocess

        from django.core.management import call_command

        # As a deploy does: production settings serve the collected static files.
        call_command("collectstatic", interactive=False, verbosity=0)
        options = os.environ.get("BENCH_GUNICORN", "--workers 3").split()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "soundfusion_attendance.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                *options,
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
        )
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request(
                    "GET", "/api/health/"
                )
                break
            except OSError:
                time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=20)
