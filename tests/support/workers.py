"""Real Celery worker processes for end-to-end tests and benchmarks."""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from django.db import connection

from soundfusion_attendance.queues import PURPOSES, queue_name

ROOT = Path(__file__).resolve().parents[2]  # the repository


def database_url_of_this_process() -> str:
    """The URL of the database this process uses (the test database under pytest)."""
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host, port = s.get("HOST") or "127.0.0.1", s.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{s['NAME']}"


def daraja_env() -> dict[str, str]:
    """The Daraja settings of this process (the simulator's, under the `daraja` fixture), for
    worker processes to call the same simulator."""
    from django.conf import settings

    keys = (
        "MPESA_BASE_URL",
        "MPESA_CONSUMER_KEY",
        "MPESA_CONSUMER_SECRET",
        "MPESA_BUSINESS_SHORT_CODE",
        "MPESA_PASS_KEY",
        "MPESA_CALLBACK_URL",
    )
    return {key: str(getattr(settings, key)) for key in keys}


class Workers:
    """`count` worker processes on a private set of queues, so tests do not see each other.

    `self.queue` is the default queue the producer points at; the workers take the purpose
    queues named after it (soundfusion_attendance/queues.py), or only those of `purposes`.
    """

    def __init__(self, count=2, concurrency=1, env=None, queue=None, pool="prefork", purposes=None):
        self.queue = queue or f"test-{uuid.uuid4().hex[:8]}"
        self.queues = [queue_name(p, self.queue) for p in (purposes or PURPOSES)]
        self.count = count
        self.concurrency = concurrency
        self.pool = pool
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url_of_this_process(),
            "CELERY_TASK_ALWAYS_EAGER": "False",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            **(env or {}),
        }
        self.processes: list[subprocess.Popen] = []
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - read by output(), kept to the end

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __enter__(self):
        for n in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "soundfusion_attendance",
                        "worker",
                        "-Q",
                        ",".join(self.queues),
                        "-n",
                        f"{self.queue}-{n}@%h",
                        "--concurrency",
                        str(self.concurrency),
                        "--pool",
                        self.pool,
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        "-l",
                        "warning",
                    ],
                    cwd=ROOT,
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    # A file, not a pipe nobody reads: a chatty worker would block on a full pipe.
                    stderr=self.log,
                    start_new_session=True,  # its own process group: kill() takes it whole
                )
            )
        return self

    def kill(self):
        """A worker dying mid-task (the power goes): SIGKILL, no warm shutdown, no acks."""
        import os
        import signal

        for p in self.processes:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=20)
        self.processes = []

    def __exit__(self, *exc):
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
