"""gunicorn settings for production: `gunicorn -c soundfusion_attendance/deploy/gunicorn.conf.py`.

gunicorn's sync workers serve one connection at a time, so a client that sends its request
slowly holds a worker until `timeout`: a handful of them stop the site. They must run behind a
proxy that reads whole requests before passing them on (nginx with the files beside this one;
tested in tests/test_server_deploy.py). Then workers only ever see fast, complete requests.
"""

import multiprocessing
import os

from soundfusion_attendance.logs import install_record_factory

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
timeout = 30
graceful_timeout = 30
keepalive = 5
# The proxy on this host sets X-Forwarded-For / -Proto; nobody else is believed.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"

# Access lines print request paths, and the M-Pesa callback path carries its secret token:
# redact every record gunicorn creates, in the master and (inherited) in every worker.
install_record_factory()


def child_exit(server, worker):
    # Metrics from several processes (attendance/metrics.py): a dead worker's live gauges go.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
