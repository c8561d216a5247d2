"""Every task a worker may be asked to run is registered on the Celery app once the app has
discovered the tasks, as a worker does: a task that lives beside its service is registered
only because `attendance/tasks.py` imports it, and nothing else would notice if it did not."""

import re
from pathlib import Path

from soundfusion_attendance.celery import app

ROOT = Path(__file__).resolve().parent.parent / "attendance"
# A decorator and the function it makes a task of; the task's name is its `name=`, or
# Celery's default, "<module>.<function>".
TASK = re.compile(
    r"@shared_task(?:\((?P<args>[^@]*?)\))?\s*\n(?:@\w+\s*\n)*def (?P<function>\w+)", re.S
)
NAME = re.compile(r'name="([^"]+)"')


def _declared() -> set[str]:
    names = set()
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        for match in TASK.finditer(path.read_text()):
            named = NAME.search(match.group("args") or "")
            names.add(named.group(1) if named else f"{module}.{match.group('function')}")
    return names


def test_every_shared_task_is_registered_after_autodiscovery():
    app.loader.import_default_modules()  # what a worker does at start (autodiscover_tasks)
    declared = _declared()
    assert len(declared) >= 15  # the walk sees them
    assert sorted(declared - set(app.tasks)) == []


def test_every_periodic_task_names_a_registered_task():
    from attendance.services.ops.schedules import PERIODIC_TASKS

    app.loader.import_default_modules()
    paths = [path for path, _ in PERIODIC_TASKS.values()]
    missing = [path for path in paths if path not in app.tasks]
    assert missing == []
