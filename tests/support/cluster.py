"""Sound Fusion as several machines would run it, on this one: web nodes started by the
entrypoint (each with its own working and media directories and node name) behind nginx,
workers by queue purpose, one beat, all on PostgreSQL, Redis and the local S3 server, in
production settings. Used by the multi-node test and bench/bench_multi_node.py."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.servers import DEPLOY, Nginx, wait_for_port
from tests.support.smtp import free_port

ENTRYPOINT = DEPLOY / "entrypoint"


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], folder: Path):
        self.name = name
        self.log_path = folder / f"{name}.log"
        self.process = subprocess.Popen(
            [str(ENTRYPOINT), *args],
            env=env,
            cwd=folder,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)


class Cluster:
    """`env` is the shared configuration (what /etc/soundfusion/env would hold)."""

    def __init__(self, env: dict[str, str]):
        self.folder = Path(tempfile.mkdtemp(prefix="sf-cluster-"))
        static = self.folder / "static"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "PYTHON": sys.executable,
            "DEBUG": "False",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # TLS would end in front of nginx; here it is plain HTTP on loopback.
            "SECURE_SSL_REDIRECT": "False",
            "CELERY_TASK_ALWAYS_EAGER": "False",
            "CELERY_TASK_DEFAULT_QUEUE": "default",
            "STATIC_ROOT": str(static),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.processes: list[Process] = []
        self.web: list[Process] = []
        self.ports: list[int] = []
        self.media_roots: list[Path] = []
        self.nginx: Nginx | None = None
        # Known before anything starts: the URL Daraja and Africa's Talking call back.
        self.nginx_port = free_port()
        self.url = f"http://127.0.0.1:{self.nginx_port}"

    # --- roles --------------------------------------------------------------------------
    def run_role(self, *args: str) -> str:
        """A one-off role (migrate, manage ...), to the end."""
        done = subprocess.run(
            [str(ENTRYPOINT), *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    def start_web(self, count: int = 2, concurrency: int = 2) -> None:
        # Static files are collected once, as the image build does.
        self.run_role("manage", "collectstatic", "--noinput", "--verbosity", "0")
        for n in range(count):
            name = f"node-{chr(ord('a') + n)}"
            home = self.folder / name
            media = home / "media"
            media.mkdir(parents=True)
            port = free_port()
            process = Process(
                name,
                ["web"],
                {
                    **self.env,
                    "NODE_NAME": name,
                    "MEDIA_ROOT": str(media),
                    "TMPDIR": str(home),
                    "GUNICORN_BIND": f"127.0.0.1:{port}",
                    "WEB_CONCURRENCY": str(concurrency),
                    "GUNICORN_ACCESS_LOG": str(home / "access.log"),
                },
                home,
            )
            wait_for_port(port, process.process, timeout=60)
            self.web.append(process)
            self.processes.append(process)
            self.ports.append(port)
            self.media_roots.append(media)
        self.nginx = Nginx(self.ports, port=self.nginx_port)

    def start_worker(self, *purposes: str, concurrency: int = 2) -> Process:
        name = base = "worker-" + ("+".join(purposes) or "all")
        n = 1
        while (self.folder / name).exists():  # a second worker of the same queues
            n += 1
            name = f"{base}-{n}"
        home = self.folder / name
        home.mkdir()
        process = Process(
            name,
            ["worker", *purposes],
            {
                **self.env,
                "NODE_NAME": name,
                "MEDIA_ROOT": str(home / "media"),
                "TMPDIR": str(home),
                "WORKER_CONCURRENCY": str(concurrency),
                "WORKER_NAME": name,
            },
            home,
        )
        self.processes.append(process)
        self.media_roots.append(home / "media")
        return process

    def start_beat(self, name: str = "beat") -> Process:
        home = self.folder / name
        home.mkdir(exist_ok=True)
        process = Process(name, ["beat"], {**self.env, "NODE_NAME": name}, home)
        self.processes.append(process)
        return process

    # --- addresses ----------------------------------------------------------------------
    def node_url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n]}"

    def access_log(self, n: int) -> str:
        path = self.folder / f"node-{chr(ord('a') + n)}" / "access.log"
        return path.read_text() if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in self.processes)

    def node_local_files(self) -> list[Path]:
        """Anything written under a node's media root (there must be nothing)."""
        return [path for root in self.media_roots if root.exists() for path in root.rglob("*")]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.nginx is not None:
            self.nginx.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
