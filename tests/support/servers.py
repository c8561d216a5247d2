"""Real server processes for tests: nginx with the shipped snippets in front of the app."""

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.smtp import free_port
from tests.support.waiting import wait_until
from tests.support.workers import ROOT

DEPLOY = ROOT / "soundfusion_attendance" / "deploy"


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    def listening():
        assert process.poll() is None, f"the server exited with {process.returncode}"
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    assert wait_until(listening, timeout=timeout, interval=0.1), f"nothing on port {port}"


class Nginx:
    """nginx in the foreground with the shipped http and proxy snippets, in front of the app
    (round robin between several nodes)."""

    def __init__(self, app_ports: int | list[int], port: int | None = None):
        ports = [app_ports] if isinstance(app_ports, int) else app_ports
        servers = " ".join(f"server 127.0.0.1:{port};" for port in ports)
        self.port = port or free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="sf-nginx-"))
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        for name in ("soundfusion-http.conf", "soundfusion-proxy.conf"):
            shutil.copy(DEPLOY / "nginx" / name, self.prefix / name)
        # The shipped snippet, with this test's paths for its log and the proxy snippet.
        secret_paths = (DEPLOY / "nginx" / "soundfusion-secret-paths.conf").read_text()
        (self.prefix / "soundfusion-secret-paths.conf").write_text(
            secret_paths.replace(
                "/var/log/nginx/soundfusion.error.log", str(self.error_log)
            ).replace("/etc/nginx/snippets/", f"{self.prefix}/")
        )
        (self.prefix / "nginx.conf").write_text(
            f"""
daemon off;
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log info;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    include {self.prefix}/soundfusion-http.conf;
    upstream soundfusion {{ {servers} keepalive 8; }}
    server {{
        listen 127.0.0.1:{self.port};
        access_log {self.access_log} sf_redacted;
        include {self.prefix}/soundfusion-secret-paths.conf;
        location / {{
            proxy_pass http://soundfusion;
            include {self.prefix}/soundfusion-proxy.conf;
        }}
    }}
}}
"""
        )
        self.process = subprocess.Popen(
            ["nginx", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.prefix / "stderr.log").open("wb"),
        )
        try:
            wait_for_port(self.port, self.process)
        except AssertionError:
            raise AssertionError((self.prefix / "stderr.log").read_text()) from None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.prefix, ignore_errors=True)
