"""Callbacks arriving in bursts and stragglers, processed by a real worker's batch task.

The endpoint asks Redis whether a batch task is queued or running at most every
KICK_LOCAL_SECONDS per process, and the task lingers before it stops: whatever the timing,
no stored callback may be left for the minute-by-minute sweeper (which is not running here).
"""

import threading
import time

import pytest
import requests

from attendance.models import MpesaCallback, MpesaPayment
from attendance.services.payments import callback_kick
from soundfusion_attendance.celery import app as celery_app
from tests.conftest import set_celery_eager
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import success_callback
from tests.support.waiting import wait_until
from tests.support.workers import Workers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Seconds before each straggler. Short gaps land while the batch task is still looking; the
# last one after it has stopped, when the endpoint must ask Redis again and queue a new task:
# a process trusting what it saw for longer than the task lingers would leave it behind, and
# no later callback would come to sweep it up.
GAPS = [0.3, 0.2, 2.6]


def test_bursts_and_stragglers_are_all_processed_without_the_sweeper(live_server, settings):
    settings.MPESA_CALLBACK_TOKEN = "batch-test-token"
    payer = UserFactory()
    payment_rows = [
        PaymentFactory(user=payer, phone_number=f"2547110{n:05d}") for n in range(40 + len(GAPS))
    ]
    url = f"{live_server.url}/api/payments/callback/batch-test-token/"

    def send(payment, n):
        body = success_callback(payment.checkout_request_id, receipt=f"BAT{n:07d}")
        response = requests.post(url, data=body, timeout=10)
        assert response.status_code == 200, response.text

    set_celery_eager(False)
    callback_kick.clear()
    try:
        with Workers(count=1, concurrency=2) as workers:
            celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
            # A burst from eight connections at once...
            burst = payment_rows[:40]
            threads = [
                threading.Thread(
                    target=lambda i=i: [send(p, i * 100 + k) for k, p in enumerate(burst[i::8])]
                )
                for i in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            # ...then stragglers at awkward moments.
            for n, (gap, payment) in enumerate(zip(GAPS, payment_rows[40:], strict=True)):
                time.sleep(gap)
                send(payment, 9000 + n)

            def all_processed():
                return not MpesaCallback.objects.filter(status="received").exists()

            assert wait_until(all_processed, timeout=30)
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)
    assert MpesaCallback.objects.filter(status="processed").count() == len(payment_rows)
    assert MpesaPayment.objects.filter(status="completed").count() == len(payment_rows)
