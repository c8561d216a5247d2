"""Run by test_demo_sqlite.py in its own process: the demo's SQLite under concurrent callbacks.

Usage: python -m tests.support.sqlite_concurrency <sqlite file>. Prints a JSON report on stdout.
"""

import json
import os
import sys
import threading


def main(path: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "True"  # the demo: each request settles its own
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "soundfusion_attendance.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from attendance.models import LedgerEntry, MpesaPayment
    from tests.support.factories import PaymentFactory, UserFactory
    from tests.support.mpesa_wire import success_callback

    call_command("migrate", verbosity=0)
    payments = [
        PaymentFactory(amount=100, user=UserFactory(), phone_number=f"2547110{n:05d}")
        for n in range(40)
    ]
    url = f"/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"
    statuses, errors = [], []
    start = threading.Barrier(8)

    def send(share):
        start.wait()
        client = Client()
        for payment in share:
            try:
                body = success_callback(
                    payment.checkout_request_id,
                    receipt=f"R{payment.pk:09d}",
                    phone=int(payment.phone_number),
                )
                answer = client.post(
                    url, body, content_type="application/json", HTTP_HOST="localhost"
                )
                statuses.append(answer.status_code)
            except Exception as error:
                errors.append(repr(error))

    threads = [threading.Thread(target=send, args=(payments[n::8],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(
        json.dumps(
            {
                "statuses": statuses,
                "errors": errors,
                "completed": MpesaPayment.objects.filter(status="completed").count(),
                "credits": LedgerEntry.objects.filter(kind="payment").count(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
