"""Time of `POST /api/mpesa/request-payment/` minus the simulator's own time.

Both are measured in this run, against the same simulator over HTTP:
- baseline: the bare STK push HTTP call (token cached), i.e. what the simulator and HTTP cost;
- the API: the whole request (auth, validation, the payment row committed, the push, the
  update), through Django's request handling on PostgreSQL.
Target: median overhead under 30 ms.
"""

import statistics
import sys

from common import Timer, empty_tables, setup_django, summary

N = 300


def main():
    setup_django()
    import json

    from django.conf import settings
    from django.test import Client

    from attendance import mpesa
    from attendance.models import MpesaPayment
    from attendance.mpesa import daraja_client
    from attendance.mpesa.simulator import SANDBOX_PASSKEY, DarajaSimulator
    from tests.support.factories import UserFactory

    simulator = DarajaSimulator(callback_delay=3600).start()
    settings.MPESA_BASE_URL = simulator.url
    settings.MPESA_CONSUMER_KEY, settings.MPESA_CONSUMER_SECRET = (
        "sim-consumer-key",
        "sim-consumer-secret",
    )
    settings.MPESA_PASS_KEY = SANDBOX_PASSKEY
    settings.MPESA_CALLBACK_URL = "http://127.0.0.1:9/api/payments/callback"
    settings.ALLOWED_HOSTS = ["testserver"]
    # The payers log in with force_login: skip a second of password hashing per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    mpesa._clients.clear()
    empty_tables(MpesaPayment)

    client = daraja_client()
    client.access_token()
    bare = []
    for n in range(N):
        with Timer() as t:
            client.stk_push(
                phone=f"25471{n:07d}",
                amount=10,
                account_reference="SF",
                transaction_desc="x",
                callback_url=settings.MPESA_CALLBACK_URL + "/t/",
            )
        bare.append(t.seconds * 1000)

    users = [UserFactory(username=f"bench-payer-{n}") for n in range(N)]
    api = []
    for n, user in enumerate(users):
        http = Client()
        http.force_login(user)
        body = json.dumps({"amount": 100, "phone": f"25472{n:07d}", "purpose": "Bench"})
        with Timer() as t:
            response = http.post(
                "/api/mpesa/request-payment/", body, content_type="application/json"
            )
        assert response.status_code == 201, response.content
        api.append(t.seconds * 1000)
    simulator.stop()
    empty_tables(MpesaPayment)
    for user in users:
        user.delete()

    overhead = statistics.median(api) - statistics.median(bare)
    print(f"bare STK push (simulator + HTTP): {summary(bare)}")
    print(f"POST /api/mpesa/request-payment/: {summary(api)}")
    print(f"median overhead of the API:       {overhead:.1f} ms  (target < 30 ms)")
    if overhead >= 30:
        sys.exit("FAILED")


if __name__ == "__main__":
    main()
