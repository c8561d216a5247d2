"""Queueing Celery tasks from services: only after the caller's transaction commits.

A task queued inside a transaction can start before the rows it needs are committed (and find
nothing), or run for rows a rollback then removes. Every service queues through here instead,
pretix's TransactionAwareTask idea. A broker that is down at that moment is logged, never
raised into the request that already committed: every job queued this way has a sweeper
that finds what was left unqueued.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from django.db import transaction

logger = logging.getLogger(__name__)


def queue_after_commit(task: Task, *args: Any, countdown: float | None = None) -> None:
    """Queue `task(*args)` once the current transaction commits (at once outside one).

    With tasks run in-process (the demo, tests) a countdown cannot be honoured: running the
    task at once would spend every retry or "look again later" in the same instant. Such a
    task is left to its sweeper, which takes the row when its wait is over.
    """
    if countdown and task.app.conf.task_always_eager:
        return

    def send():
        try:
            task.apply_async(args=args, countdown=countdown or 0)
        except Exception:
            logger.warning("Could not queue %s%r; its sweeper will pick it up", task.name, args)

    transaction.on_commit(send)
