"""Celery tasks: load by id, call a service, decide about retry. Nothing else."""

from celery import shared_task

from attendance.services.crew import crew_send_reminders
from attendance.services.notifications import notification_deliver, notification_sweep
from attendance.services.payments import (
    callback_process,
    callbacks_process_pending,
    callbacks_process_received,
    payments_reconcile,
)


@shared_task(bind=True, max_retries=None, acks_late=True, ignore_result=True)
def notification_deliver_task(self, notification_id: int) -> str:
    result = notification_deliver(notification_id=notification_id)
    if result.outcome == "retry":
        raise self.retry(countdown=result.retry_in)
    return result.outcome


@shared_task(acks_late=True, ignore_result=True)
def notifications_deliver_batch_task(notification_ids: list[int]) -> dict:
    outcomes: dict[str, int] = {}
    for notification_id in notification_ids:
        result = notification_deliver(notification_id=notification_id)
        if result.outcome == "retry":
            # Each retry is its own delayed task, so one slow recipient holds up no batch.
            notification_deliver_task.apply_async(args=[notification_id], countdown=result.retry_in)
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return outcomes


@shared_task(ignore_result=False)
def notifications_sweep_task() -> dict:
    return notification_sweep()


@shared_task(acks_late=True, ignore_result=True)
def callback_process_task(callback_id: int) -> str:
    return callback_process(callback_id=callback_id)


@shared_task(acks_late=True, ignore_result=True)
def callbacks_process_received_task() -> int:
    return callbacks_process_received()


@shared_task(ignore_result=False)
def callbacks_process_pending_task() -> int:
    return callbacks_process_pending()


@shared_task(ignore_result=False)
def payments_reconcile_task() -> dict:
    return payments_reconcile()


@shared_task(ignore_result=False)
def crew_send_reminders_task() -> int:
    return crew_send_reminders()
