"""Background jobs: bulk work off the request, an outcome per member, paced under Daraja's
limits, and exactly once through a worker's death."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.contrib.auth.models import Permission
from django.utils import timezone

from attendance.models import BulkJob, BulkJobItem, EmailNotification, MpesaPayment
from attendance.services.crew.assignments import crew_invite
from attendance.services.jobs.kinds import prompt_one
from attendance.services.jobs.runner import bulk_job_create, bulk_job_run, bulk_jobs_resume
from attendance.services.ledger import ledger_post
from tests.support.auth import log_in_staff
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.jobs import run_action
from tests.support.workers import daraja_env

Item = BulkJobItem.Status
pytestmark = pytest.mark.django_db


def _stats(daraja):
    return requests.get(f"{daraja.url}/simulator/stats", timeout=5).json()


def _owing_members(count, amount="500"):
    members = []
    for n in range(count):
        member = UserFactory(profile__phone_number=f"07120{n:05d}")
        ledger_post(user=member, kind="charge", amount=Decimal(amount), description="Hire")
        members.append(member)
    return members


def _finance(client):
    finance = UserFactory(is_staff=True, email="finance@example.com")
    finance.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_profile", "change_profile", "request_mpesapayment"]
        )
    )
    log_in_staff(client, finance)
    return finance


def test_the_progress_page_shows_each_members_outcome(
    daraja, client, django_capture_on_commit_callbacks
):
    paying = _owing_members(2)
    clear = UserFactory(first_name="Clear", last_name="Member", profile__phone_number="0712999000")
    _finance(client)
    profiles = [m.profile.pk for m in paying] + [clear.profile.pk]
    job, page = run_action(
        client,
        "/admin/attendance/profile/",
        {
            "action": "request_mpesa_payment",
            "_selected_action": profiles,
            "apply": "1",
            "amount": "",
            "purpose": "Balance payment",
        },
        capture=django_capture_on_commit_callbacks,
    )
    assert (job.total, job.done, job.skipped, job.failed, job.status) == (3, 2, 1, 0, "done")
    assert page.count("Prompt for KES 500 sent to") == 2
    assert "Clear Member" in page and "Nothing owed." in page
    progress = client.get(f"/admin/attendance/bulkjob/{job.pk}/progress/").json()
    assert (progress["done"], progress["skipped"], progress["remaining"]) == (2, 1, 0)
    assert progress["finished"] is True
    assert {i["status"] for i in progress["items"]} == {"done", "skipped"}
    # Only what changed since a moment is sent again while the page polls.
    later = client.get(
        f"/admin/attendance/bulkjob/{job.pk}/progress/", {"since": progress["now"]}
    ).json()
    assert later["items"] == []


def test_a_job_belongs_to_staff_who_may_see_it(daraja, client, django_capture_on_commit_callbacks):
    _owing_members(1)
    job = bulk_job_create(kind=BulkJob.Kind.CHECK_PAYMENTS, by=UserFactory(is_staff=True))
    log_in_staff(client, UserFactory(is_staff=True))  # neither its owner nor a job viewer
    assert client.get(f"/admin/attendance/bulkjob/{job.pk}/change/").status_code == 403
    assert client.get(f"/admin/attendance/bulkjob/{job.pk}/progress/").status_code == 403


@pytest.mark.parametrize("items", [1, 500])
def test_the_progress_page_and_its_json_cost_the_same_queries_for_1_and_500_items(
    admin_client, django_assert_max_num_queries, items
):
    job = bulk_job_create(
        kind=BulkJob.Kind.RESEND_EMAILS, by=None, targets=[(n, f"row {n}") for n in range(items)]
    )
    with django_assert_max_num_queries(12):
        assert admin_client.get(f"/admin/attendance/bulkjob/{job.pk}/change/").status_code == 200
    with django_assert_max_num_queries(6):
        assert admin_client.get(f"/admin/attendance/bulkjob/{job.pk}/progress/").status_code == 200
    with django_assert_max_num_queries(8):
        assert admin_client.get("/admin/attendance/bulkjob/").status_code == 200


def test_a_prompt_item_done_twice_after_a_crash_prompts_once(daraja):
    """The worker died after the push and before it wrote the outcome down."""
    members = _owing_members(3)
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    job = bulk_job_create(
        kind=BulkJob.Kind.PROMPT_PAYMENTS,
        by=finance,
        targets=[(m.profile.pk, m.username) for m in members],
        params={"amount": None, "purpose": "Balance payment"},
    )
    first = job.items.order_by("position").first()
    first.status, first.claimed_at = Item.RUNNING, timezone.now() - timedelta(minutes=10)
    first.save()
    prompt_one(job, first)  # the push that happened before the crash
    assert _stats(daraja)["stk_push"] == 1

    assert bulk_job_run(job_id=job.pk) == "done"

    job.refresh_from_db()
    assert (job.done, job.failed) == (3, 0)
    assert _stats(daraja)["stk_push"] == 3  # not 4: the first member's push was not sent again
    assert MpesaPayment.objects.count() == 3
    assert set(_stats(daraja)["prompts_per_phone"].values()) == {1}


def test_a_job_whose_worker_stopped_is_resumed_by_the_beat(db):
    job = bulk_job_create(kind=BulkJob.Kind.RESEND_EMAILS, by=None, targets=[(1, "x")])
    BulkJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    assert bulk_jobs_resume() == 0  # beating: left alone
    later = timezone.now() + timedelta(minutes=3)
    assert bulk_jobs_resume(now=later) == 1
    assert bulk_jobs_resume(now=later) == 0  # queued once per stale spell


@pytest.mark.django_db(transaction=True)
def test_a_spike_arrest_answer_slows_the_job_instead_of_failing_members(daraja, settings):
    """Daraja allows 3 pushes a second here; the job starts at 20 a second, 4 at a time."""
    daraja.state.max_pushes_per_second = 3
    members = _owing_members(12)
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    from attendance.services.jobs import kinds as job_kinds

    settings.MPESA_BULK_PER_SECOND = 20
    kind = job_kinds.KINDS[BulkJob.Kind.PROMPT_PAYMENTS]
    fast = job_kinds.Kind(handle=kind.handle, concurrency=4, per_second=20)
    job_kinds.KINDS[BulkJob.Kind.PROMPT_PAYMENTS] = fast
    original_retry = job_kinds.RETRY_FIRST_SECONDS
    job_kinds.RETRY_FIRST_SECONDS = 0.5
    try:
        job = bulk_job_create(
            kind=BulkJob.Kind.PROMPT_PAYMENTS,
            by=finance,
            targets=[(m.profile.pk, m.username) for m in members],
            params={"amount": None, "purpose": "Balance payment"},
        )
        job.refresh_from_db()
    finally:
        job_kinds.KINDS[BulkJob.Kind.PROMPT_PAYMENTS] = kind
        job_kinds.RETRY_FIRST_SECONDS = original_retry
    assert (job.status, job.done, job.failed) == ("done", 12, 0)
    stats = _stats(daraja)
    assert stats["spike_arrests"] > 0  # Daraja did push back ...
    assert set(stats["prompts_per_phone"].values()) == {1}  # ... and everyone got one prompt
    assert len(stats["prompts_per_phone"]) == 12


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_bulk_job_survives_its_worker_being_killed_without_repeating_a_prompt_or_an_email(
    daraja, settings
):
    from soundfusion_attendance.celery import app as celery_app
    from tests.conftest import set_celery_eager
    from tests.support.waiting import wait_until
    from tests.support.workers import Workers

    daraja.state.push_latency = 0.25  # a real Daraja answers in hundreds of ms
    members = _owing_members(24)
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="request_mpesapayment"))
    event = EventFactory(starts_at=timezone.now() + timedelta(days=3))
    event.ends_at = event.starts_at + timedelta(hours=5)
    event.save()
    assignments = [EventCrewFactory(event=event, user=m) for m in members]
    worker_env = daraja_env()
    set_celery_eager(False)
    try:
        first = Workers(count=1, pool="solo", env=worker_env).__enter__()
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = first.queue
        prompts = bulk_job_create(
            kind=BulkJob.Kind.PROMPT_PAYMENTS,
            by=finance,
            targets=[(m.profile.pk, m.username) for m in members],
            params={"amount": None, "purpose": "Balance payment"},
        )
        invitations = bulk_job_create(
            kind=BulkJob.Kind.SEND_INVITATIONS,
            by=finance,
            targets=[(a.pk, a.user.username) for a in assignments],
        )

        def halfway():
            done = BulkJob.objects.get(pk=prompts.pk).done
            return 4 <= done < 20

        assert wait_until(halfway, timeout=60, interval=0.05), first.output()
        first.kill()  # mid-job: items claimed, outcomes unwritten, the message unacked
        assert BulkJob.objects.get(pk=prompts.pk).status == "running"

        with Workers(count=1, pool="solo", env=worker_env, queue=first.queue) as second:
            # The beat notices the silent jobs (their heartbeat is older than STALE_JOB).
            assert bulk_jobs_resume(now=timezone.now() + timedelta(minutes=3)) >= 1
            time.sleep(0.1)

            def finished():
                rows = BulkJob.objects.filter(pk__in=[prompts.pk, invitations.pk])
                return all(j.status == "done" for j in rows)

            # Items the dead worker had claimed wait out their lease; shorten the wait.
            BulkJobItem.objects.filter(status="running").update(
                claimed_at=timezone.now() - timedelta(minutes=5)
            )
            assert wait_until(finished, timeout=120), second.output()
    finally:
        celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = "default"
        set_celery_eager(True)

    prompts.refresh_from_db()
    invitations.refresh_from_db()
    assert (prompts.done, prompts.failed, invitations.done, invitations.failed) == (24, 0, 24, 0)
    per_phone = _stats(daraja)["prompts_per_phone"]
    assert len(per_phone) == 24 and set(per_phone.values()) == {1}  # nobody prompted twice
    assert MpesaPayment.objects.count() == 24
    sent = EmailNotification.objects.filter(notification_type="crew_invitation")
    assert sorted(sent.values_list("crew_assignment_id", flat=True)) == sorted(
        a.pk for a in assignments
    )  # one invitation each, not one more


def test_invitations_for_a_big_event_are_a_job_and_each_goes_once(
    staff_client, django_capture_on_commit_callbacks
):
    event = EventFactory(starts_at=timezone.now() + timedelta(days=2))
    event.ends_at = event.starts_at + timedelta(hours=4)
    event.save()
    assignments = [EventCrewFactory(event=event, user=UserFactory()) for _ in range(30)]
    crew_invite(assignment=assignments[0])
    job, _page = run_action(
        staff_client,
        "/admin/attendance/event/",
        {"action": "send_invitations", "_selected_action": [event.pk]},
        capture=django_capture_on_commit_callbacks,
    )
    assert (job.total, job.done) == (29, 29)  # the one already invited is not asked again
    assert EmailNotification.objects.filter(notification_type="crew_invitation").count() == 30


def test_a_double_clicked_bulk_action_makes_one_job_and_the_second_press_lands_on_it(
    daraja, client, django_capture_on_commit_callbacks
):
    paying = _owing_members(4)
    _finance(client)
    form = {
        "action": "request_mpesa_payment",
        "_selected_action": [m.profile.pk for m in paying],
        "apply": "1",
        "amount": "",
        "purpose": "Balance payment",
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/admin/attendance/profile/", form)
        second = client.post("/admin/attendance/profile/", form)
    assert BulkJob.objects.count() == 1
    assert first["Location"] == second["Location"]
    page = client.get(second["Location"]).content.decode()
    assert "Already started a moment ago" in page
    job = BulkJob.objects.get()
    assert (job.done, job.failed) == (4, 0)  # the one job sent all four
    assert _stats(daraja)["stk_push"] == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_presses_at_the_same_instant_make_one_job():
    import threading

    from django.db import connection

    finance = UserFactory(is_staff=True)
    targets = [(n, f"member {n}") for n in range(1, 4)]
    barrier = threading.Barrier(2)
    jobs = []

    def press():
        barrier.wait()
        try:
            jobs.append(
                bulk_job_create(kind=BulkJob.Kind.CHECK_PAYMENTS, by=finance, targets=targets)
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert BulkJob.objects.count() == 1
    assert sorted(job.repeated for job in jobs) == [False, True]
