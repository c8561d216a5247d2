"""One Daraja rate for the deployment: processes that each keep to their own pace together stay
under the rate, because every call takes its place in one window in Redis."""

import threading
import time
from decimal import Decimal

import pytest
import requests
from django.contrib.auth.models import Permission

from attendance.models import BulkJob
from attendance.mpesa.rate import DarajaRate, MemoryWindow, RedisWindow
from attendance.redis_client import redis_client
from attendance.services.ledger import ledger_post
from tests.support.factories import UserFactory
from tests.support.workers import daraja_env

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def busiest_second(times: list[float]) -> int:
    """The most calls in any one-second window (sliding, so also in any clock second)."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_busiest_second_counts_a_sliding_window():
    assert busiest_second([0.0, 0.5, 0.99, 1.0, 1.4]) == 4
    assert busiest_second([0.0, 1.0, 2.0]) == 1


def test_the_window_in_memory_frees_its_oldest_place_after_a_second_and_the_margin():
    now = [100.0]
    window = MemoryWindow(clock=lambda: now[0])
    assert [window.take("k", 2, 1.05) for _ in range(2)] == [0.0, 0.0]
    assert window.take("k", 2, 1.05) == pytest.approx(1.05)
    now[0] = 101.0  # a second later: still inside the margin
    assert window.take("k", 2, 1.05) == pytest.approx(0.05)
    now[0] = 101.06
    assert window.take("k", 2, 1.05) == 0.0
    assert window.take("other", 2, 1.05) == 0.0  # a key of its own


def test_under_one_a_second_means_one_call_per_interval():
    rate = DarajaRate(per_second=0.5, overrides={"b2c": 3})
    assert rate.limits["stk_push"] == (1, pytest.approx(2.05))
    assert rate.limits["b2c"] == (3, pytest.approx(1.05))


def test_threads_with_separate_limiters_on_one_redis_share_the_rate(settings):
    """Three limiters (as three processes would have) on one Redis, 4 a second between them."""
    app = f"test-{time.time_ns()}"  # a fresh window, whatever ran before
    sent: list[float] = []
    lock = threading.Lock()

    def process():
        rate = DarajaRate(per_second=4, window=RedisWindow(redis_client()))
        for _ in range(6):
            rate.wait(app, "stk_push")
            with lock:
                sent.append(time.time())

    threads = [threading.Thread(target=process) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 18
    assert busiest_second(sent) <= 4
    assert sent[-1] - min(sent) >= 3.5  # 18 calls at 4 a second: the rate was the limit
    # Another API family has a window of its own.
    other = DarajaRate(per_second=4, window=RedisWindow(redis_client()))
    assert other.wait(app, "b2c") == 0


def _owing_members(count, first):
    members = []
    for n in range(count):
        member = UserFactory(profile__phone_number=f"0712{first + n:06d}")
        ledger_post(user=member, kind="charge", amount=Decimal("300"), description="Hire")
        members.append(member)
    return members


@pytest.mark.django_db(transaction=True)
def test_two_workers_and_two_bulk_jobs_never_exceed_the_rate(daraja, settings):
    """Two worker processes run two bulk prompt jobs, each job paced at 50 a second and four
    at a time: Daraja's log never shows more than the deployment's 5 a second."""
    from attendance.services.jobs.runner import bulk_job_create, bulk_job_progress
    from soundfusion_attendance.celery import app as celery_app
    from tests.conftest import set_celery_eager
    from tests.support.waiting import wait_until
    from tests.support.workers import Workers

    rate = 5
    # A fresh Daraja app, so the window holds nothing from other tests.
    settings.MPESA_CONSUMER_KEY = daraja.state.consumer_key = f"rate-test-{time.time_ns()}"
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    worker_env = daraja_env()
    worker_env |= {"DARAJA_RATE_PER_SECOND": str(rate), "MPESA_BULK_PER_SECOND": "50"}
    set_celery_eager(False)
    seen_waiting = False
    try:
        with Workers(count=2, concurrency=1, env=worker_env) as workers:
            celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = workers.queue
            jobs = [
                bulk_job_create(
                    kind=BulkJob.Kind.PROMPT_PAYMENTS,
                    by=finance,
                    targets=[(m.profile.pk, m.username) for m in _owing_members(20, first)],
                    params={"amount": None, "purpose": "Balance payment"},
                )
                for first in (0, 100)
            ]

            def finished():
                nonlocal seen_waiting
                for job in jobs:
                    seen_waiting |= bool(bulk_job_progress(job=job)["waiting"])
                return all(BulkJob.objects.get(pk=j.pk).is_finished for j in jobs)

            assert wait_until(finished, timeout=90, interval=0.2), workers.output()
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)
    for job in jobs:
        job.refresh_from_db()
        assert (job.done, job.failed) == (20, 0)
    calls = requests.get(f"{daraja.url}/simulator/log", timeout=5).json()["calls"]
    pushes = [at for at, path in calls if path == "/mpesa/stkpush/v1/processrequest"]
    assert len(pushes) == 40
    assert busiest_second(pushes) <= rate
    assert max(pushes) - min(pushes) >= (40 / rate) - 1.5  # the rate, not the workers, limited
    assert daraja.state.stats["spike_arrests"] == 0
    assert seen_waiting  # the progress page said the jobs were waiting for the rate
