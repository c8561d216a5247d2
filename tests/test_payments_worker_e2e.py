"""End to end with every real part: the simulator over HTTP, the app serving its callback
endpoint, a real Celery worker on Redis processing the callback, PostgreSQL, SMTP on loopback."""

import pytest

from attendance.models import EmailNotification, LedgerEntry, MpesaPayment
from attendance.services.payments import payment_request_stk_push
from soundfusion_attendance.celery import app as celery_app
from tests.conftest import set_celery_eager
from tests.support.factories import UserFactory
from tests.support.waiting import wait_until
from tests.support.workers import Workers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_payment_settled_by_a_real_worker_and_the_payer_emailed(
    callbacks_to_live_server, smtp_server, smtp_worker_env
):
    member = UserFactory(email="payer@example.com", profile__phone_number="0708374149")
    set_celery_eager(False)
    try:
        with Workers(count=1, env=smtp_worker_env) as workers:
            celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
            payment, _ = payment_request_stk_push(
                payer=member, amount=300, purpose="Balance payment", requested_by=member
            )

            def settled():
                payment.refresh_from_db()
                return payment.status == "completed"

            assert wait_until(settled, timeout=60)
            assert wait_until(
                lambda: EmailNotification.objects.filter(status="sent").exists(), timeout=60
            )
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)
    assert payment.ledger_entry.amount == -300
    assert LedgerEntry.objects.count() == 1
    [message] = smtp_server.messages
    assert message["To"] == "payer@example.com"
    assert payment.receipt_number in message["Subject"]
    assert MpesaPayment.objects.get().settled_via == "callback"


def test_paybill_confirmations_settled_by_a_real_worker_in_one_batch_per_burst(
    daraja, live_server, settings, smtp_worker_env
):
    """SIM-menu payments confirmed to the app, stored, and credited by a real worker's batch
    task (one task per burst, woken by the Redis flag)."""
    from attendance.models import PaybillNotice, PaybillPayment
    from attendance.services.payments.paybill_registration import paybill_register_urls

    settings.MPESA_C2B_SHORT_CODE = settings.MPESA_BUSINESS_SHORT_CODE
    settings.MPESA_C2B_URL = f"{live_server.url}/api/paybill"
    paybill_register_urls()
    members = [UserFactory() for _ in range(3)]
    set_celery_eager(False)
    try:
        with Workers(count=1, env=smtp_worker_env) as workers:
            celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
            for n in range(12):
                member = members[n % 3]
                daraja.state.paybill.pay(
                    phone="254712345678", amount=300 + n, account=member.profile.account_code
                )
            assert wait_until(
                lambda: PaybillPayment.objects.filter(status="credited").count() == 12, timeout=60
            )
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)
    # 311 ends in 11: the simulator confirms it twice; the second is a duplicate.
    assert PaybillNotice.objects.filter(status="duplicate").count() == 1
    assert not PaybillNotice.objects.exclude(status__in=["processed", "duplicate"]).exists()
    assert LedgerEntry.objects.filter(kind="payment").count() == 12
