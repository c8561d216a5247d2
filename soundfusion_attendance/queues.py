"""Celery queues by purpose, so a slow job of one kind never delays another.

A slow mail server or a 2,000-member export must not hold up M-Pesa settlement and payouts, so
each task goes to the queue of its purpose and production runs workers per queue:

- `money`: callbacks, settlement, payouts, reversals, Paybill notices, reconciliation;
- `messages`: email and SMS delivery, delivery reports and replies;
- `background`: bulk jobs (exports, bulk prompts, invitations) and their resumer;
- `default`: everything else (reminders, show day, alerts).

`make run` and CI run one worker that takes all four. A test worker takes a private queue
(tests/support/workers.py): when the default queue is not called "default", every purpose
queue is named after it ("test-1a2b.money"), so tests never take each other's work.
"""

from __future__ import annotations

import sys
from typing import Any

MONEY, MESSAGES, BACKGROUND, DEFAULT = "money", "messages", "background", "default"
PURPOSES = (MONEY, MESSAGES, BACKGROUND, DEFAULT)

# By task name (the names are stable: beat schedules and queued messages carry them).
_PURPOSE_OF = {
    "attendance.tasks.callbacks_process_received_task": MONEY,
    "attendance.tasks.callbacks_process_pending_task": MONEY,
    "attendance.tasks.payments_reconcile_task": MONEY,
    "attendance.tasks.paybill_notice_process_task": MONEY,
    "attendance.tasks.paybill_notices_process_received_task": MONEY,
    "attendance.tasks.paybill_notices_process_pending_task": MONEY,
    "attendance.tasks.paybill_pull_task": MONEY,
    "attendance.tasks.payout_result_process_task": MONEY,
    "attendance.tasks.payouts_reconcile_task": MONEY,
    "attendance.tasks.reversal_result_process_task": MONEY,
    "attendance.tasks.notification_deliver_task": MESSAGES,
    "attendance.tasks.notifications_deliver_batch_task": MESSAGES,
    "attendance.tasks.notifications_sweep_task": MESSAGES,
    "attendance.tasks.sms_deliver_task": MESSAGES,
    "attendance.tasks.sms_deliver_batch_task": MESSAGES,
    "attendance.tasks.sms_sweep_task": MESSAGES,
    "attendance.tasks.sms_callback_process_task": MESSAGES,
    "attendance.tasks.push_deliver_task": MESSAGES,
    "attendance.tasks.push_deliver_batch_task": MESSAGES,
    "attendance.tasks.whatsapp_deliver_task": MESSAGES,
    "attendance.tasks.whatsapp_deliver_batch_task": MESSAGES,
    "attendance.tasks.whatsapp_webhook_process_task": MESSAGES,
    "attendance.tasks.whatsapp_webhooks_process_received_task": MESSAGES,
    "attendance.tasks.bulk_job_run_task": BACKGROUND,
    "attendance.tasks.bulk_jobs_resume_task": BACKGROUND,
}


def purpose_of(task_name: str) -> str:
    return _PURPOSE_OF.get(task_name, DEFAULT)


def queue_name(purpose: str, default_queue: str) -> str:
    """The queue of `purpose` in a deployment whose default queue is `default_queue`."""
    if default_queue == DEFAULT:
        return purpose
    return default_queue if purpose == DEFAULT else f"{default_queue}.{purpose}"


def all_queues(default_queue: str) -> list[str]:
    return [queue_name(purpose, default_queue) for purpose in PURPOSES]


def route_by_purpose(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    """Celery's task_routes: the queue of the task's purpose. The default queue is read when
    the task is sent, so a test that points the producer at its own workers moves them all."""
    from celery import current_app

    default_queue = (task.app if task is not None else current_app).conf.task_default_queue
    return {"queue": queue_name(purpose_of(name), default_queue)}


def main(argv: list[str]) -> int:
    """`python -m soundfusion_attendance.queues [PURPOSE...]`: the comma-separated queue names
    a worker of those purposes takes (all four by default), for the entrypoint."""
    import os

    unknown = [p for p in argv if p not in PURPOSES]
    if unknown:
        print(f"unknown purpose {', '.join(unknown)}: use {', '.join(PURPOSES)}", file=sys.stderr)
        return 64
    default_queue = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", DEFAULT)
    print(",".join(queue_name(p, default_queue) for p in (argv or PURPOSES)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
