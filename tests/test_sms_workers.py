"""End to end: two real Celery workers on Redis and PostgreSQL draining SMS through the
Africa's Talking simulator over HTTP."""

import pytest
import requests

from attendance.models import SmsMessage
from attendance.services.messaging.sms import sms_deliver_task
from tests.conftest import set_celery_eager
from tests.support.waiting import wait_until
from tests.support.workers import Workers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_two_workers_draining_the_same_1000_texts_send_each_once(at_sms, settings):
    rows = SmsMessage.objects.bulk_create(
        SmsMessage(
            phone_number=f"2547{n:08d}"[:10] + "01",
            notification_type="crew_reminder",
            message=f"Sound Fusion reminder {n}: call 16:00 at KICC.",
        )
        for n in range(1000)
    )
    env = {
        "SMS_ENABLED": "True",
        "AT_USERNAME": at_sms.state.username,
        "AT_API_KEY": at_sms.state.api_key,
        "AT_BASE_URL": at_sms.url,
    }
    set_celery_eager(False)
    try:
        with Workers(count=2, concurrency=2, env=env) as workers:
            # Every text is queued twice, so both workers race for each one.
            for _ in range(2):
                for row in rows:
                    sms_deliver_task.apply_async(args=[row.pk], queue=workers.queue)
            sent = wait_until(
                lambda: SmsMessage.objects.filter(status="sent").count() == 1000, timeout=240
            )
    finally:
        set_celery_eager(True)
    assert sent, list(SmsMessage.objects.values_list("status", "last_error").distinct()[:5])
    texts = [
        m["message"] for m in requests.get(f"{at_sms.url}/simulator/messages", timeout=10).json()
    ]
    assert len(texts) == 1000
    assert len(set(texts)) == 1000
    ids = SmsMessage.objects.values_list("provider_message_id", flat=True)
    assert len(set(ids)) == 1000
