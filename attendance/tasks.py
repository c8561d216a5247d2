"""The scheduled entry points (django-celery-beat): load, call a service, nothing else.

Each records its own runs (`beat_job`): readiness and the alerts compare them with the
schedule.

Tasks that a service queues itself live beside that service and are queued after commit
(`services/messaging/email.py`: email delivery; `services/messaging/sms.py`: SMS delivery;
`services/payments/inbox.py`: the callback batch task). Importing them here is what
registers them on a worker, under the names they have always had, so messages already in a
broker and beat rows still resolve.
"""

from celery import shared_task

from attendance.services.crew.followup import crew_send_reminders
from attendance.services.crew.showday import show_day_run
from attendance.services.jobs.runner import (  # noqa: F401  (registers the job task)
    bulk_job_run_task,
    bulk_jobs_resume,
)
from attendance.services.messaging.email import (  # noqa: F401  (registers the delivery tasks)
    notification_deliver_task,
    notification_sweep,
    notifications_deliver_batch_task,
)
from attendance.services.messaging.push import (  # noqa: F401  (registers the delivery tasks)
    push_deliver_batch_task,
    push_deliver_task,
    push_sweep,
)
from attendance.services.messaging.sms import (  # noqa: F401  (registers the delivery tasks)
    sms_deliver_batch_task,
    sms_deliver_task,
    sms_sweep,
)
from attendance.services.messaging.sms_inbox import (  # noqa: F401  (registers the callback task)
    sms_callback_process_task,
    sms_callbacks_process_pending,
)
from attendance.services.messaging.whatsapp import (  # noqa: F401  (registers the delivery tasks)
    whatsapp_deliver_batch_task,
    whatsapp_deliver_task,
    whatsapp_sweep,
)
from attendance.services.messaging.whatsapp_inbox import (  # noqa: F401  (registers the task)
    whatsapp_webhook_process_task,
    whatsapp_webhooks_process_pending,
    whatsapp_webhooks_process_received_task,
)
from attendance.services.ops.alerts import alerts_check
from attendance.services.ops.health import beat_job
from attendance.services.payments import (  # noqa: F401  (registers the callback batch task)
    callbacks_process_pending,
    callbacks_process_received_task,
    payments_reconcile,
)
from attendance.services.payments.paybill_inbox import (  # noqa: F401  (registers the tasks)
    paybill_notice_process_task,
    paybill_notices_process_pending,
    paybill_notices_process_received_task,
)
from attendance.services.payments.paybill_pull import paybill_pull
from attendance.services.payments.reversal_inbox import (  # noqa: F401  (registers the task)
    reversal_result_process_task,
    reversal_results_process_pending,
)
from attendance.services.payments.statement import statement_rematch
from attendance.services.payouts import (  # noqa: F401  (registers the result task)
    payout_result_process_task,
    payouts_reconcile,
)


@shared_task(ignore_result=False)
@beat_job
def notifications_sweep_task() -> dict:
    return notification_sweep()


@shared_task(ignore_result=False)
@beat_job
def sms_sweep_task() -> dict:
    # WhatsApp's messages and webhooks and the app's notifications too: the same job for the
    # other phone channels.
    return {
        **sms_sweep(),
        "callbacks": sms_callbacks_process_pending(),
        "whatsapp": whatsapp_sweep(),
        "whatsapp_webhooks": whatsapp_webhooks_process_pending(),
        "push": push_sweep(),
    }


@shared_task(ignore_result=False)
@beat_job
def callbacks_process_pending_task() -> int:
    return callbacks_process_pending()


@shared_task(ignore_result=False)
@beat_job
def payments_reconcile_task() -> dict:
    return payments_reconcile()


@shared_task(ignore_result=False)
@beat_job
def paybill_notices_process_pending_task() -> dict:
    return {
        "paybill_notices": paybill_notices_process_pending(),
        "reversal_results": reversal_results_process_pending(),
        "statement_rows_matched": statement_rematch(),
    }


@shared_task(ignore_result=False)
@beat_job
def paybill_pull_task() -> dict:
    return paybill_pull()


@shared_task(ignore_result=False)
@beat_job
def payouts_reconcile_task() -> dict:
    return payouts_reconcile()


@shared_task(ignore_result=False)
@beat_job
def bulk_jobs_resume_task() -> int:
    return bulk_jobs_resume()


@shared_task(ignore_result=False)
@beat_job
def crew_send_reminders_task() -> int:
    return crew_send_reminders()


@shared_task(ignore_result=False)
@beat_job
def show_day_task() -> dict:
    return show_day_run()


@shared_task(ignore_result=False)
@beat_job
def alerts_check_task() -> int:
    return len(alerts_check())
