"""1,000 STK pushes from two processes share one OAuth token: exactly one OAuth request.

Both processes use the Daraja client with the Redis cache (the production set-up) against the
local simulator over HTTP. Prints the simulator's request counts.
"""

import multiprocessing
import os
import sys

from common import REDIS, Timer, setup_django

PUSHES, PROCESSES = 1000, 2


def worker(base_url, start, count, db_url):
    os.environ["DATABASE_URL"] = db_url
    os.environ["REDIS_URL"] = REDIS
    import django

    django.setup()
    from django.core.cache import cache

    from attendance.mpesa.client import DarajaClient, DarajaConfig
    from attendance.mpesa.simulator import SANDBOX_PASSKEY

    client = DarajaClient(
        DarajaConfig(
            base_url=base_url,
            consumer_key="sim-consumer-key",
            consumer_secret="sim-consumer-secret",
            short_code="174379",
            pass_key=SANDBOX_PASSKEY,
        ),
        cache=cache,
    )
    for n in range(start, start + count):
        client.stk_push(
            phone=f"2547{n:08d}",
            amount=10,
            account_reference="SF Bench",
            transaction_desc="Bench",
            callback_url="http://127.0.0.1:9/never/",
        )


def main():
    db_url = setup_django()
    import requests
    from django.core.cache import cache

    from attendance.mpesa.simulator import DarajaSimulator

    cache.clear()
    simulator = DarajaSimulator(callback_delay=3600).start()  # callbacks never fire here
    per = PUSHES // PROCESSES
    context = multiprocessing.get_context("spawn")
    with Timer() as run:
        procs = [
            context.Process(target=worker, args=(simulator.url, i * per, per, db_url))
            for i in range(PROCESSES)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    stats = requests.get(f"{simulator.url}/simulator/stats", timeout=5).json()
    simulator.stop()
    print(f"{stats['stk_push']} STK pushes from {PROCESSES} processes in {run.seconds:.1f} s")
    print(f"OAuth requests: {stats['oauth']}  (target: exactly 1)")
    if stats["oauth"] != 1 or stats["stk_push"] != PUSHES or any(p.exitcode for p in procs):
        sys.exit("FAILED")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(__file__))
    main()
