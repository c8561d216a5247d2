"""The Celery app. Configuration lives in settings.py under the CELERY_ prefix."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundfusion_attendance.settings")

app = Celery("soundfusion_attendance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A log line, the task id on its log lines, and the metrics, for every task (observability.py).
from soundfusion_attendance.observability import connect_task_signals  # noqa: E402

connect_task_signals()
