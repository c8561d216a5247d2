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


# Tasks that stay on the default queue, on purpose. A new task must be given a purpose in
# soundfusion_attendance/queues.py or be added here: nothing lands on `default` by accident.
ON_THE_DEFAULT_QUEUE = {
    "attendance.tasks.crew_send_reminders_task",
    "attendance.tasks.show_day_task",
    "attendance.tasks.alerts_check_task",
}


def test_every_task_goes_to_the_queue_of_its_purpose():
    from soundfusion_attendance.queues import purpose_of, queue_name

    app.loader.import_default_modules()
    declared = _declared()
    assert sorted(n for n in declared if purpose_of(n) == "default") == sorted(ON_THE_DEFAULT_QUEUE)
    route = app.amqp.router.route
    assert route({}, "attendance.tasks.payout_result_process_task", (), {})["queue"].name == (
        "money"
    )
    assert route({}, "attendance.tasks.sms_deliver_batch_task", (), {})["queue"].name == (
        "messages"
    )
    assert route({}, "attendance.tasks.bulk_job_run_task", (), {})["queue"].name == "background"
    assert route({}, "attendance.tasks.alerts_check_task", (), {})["queue"].name == "default"
    # A test's private default queue takes its purpose queues with it.
    assert queue_name("money", "test-1a2b") == "test-1a2b.money"
    assert queue_name("default", "test-1a2b") == "test-1a2b"
