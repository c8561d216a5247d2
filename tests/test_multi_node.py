"""Several machines on one (issue 30): two web nodes (own working and media directories, own
node names) behind nginx balancing between them, a `money` worker and a worker for the other
queues, one beat, on PostgreSQL, Redis and a local S3 server, in production settings, every
process started by the entrypoint. Through both nodes: STK callbacks, a bulk prompt job, a
payroll export started on one node and downloaded from the other, a pay run approved and paid
out, SMS replies. Afterwards nothing is lost or doubled, and no node kept a file of its own."""

import io
import re
import secrets
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from attendance.models import (
    BulkJob,
    BulkJobItem,
    EventCrew,
    LedgerEntry,
    MpesaCallback,
    MpesaPayment,
    Payout,
    PayRun,
    SmsCallback,
    TimesheetLine,
)
from attendance.services.crew.assignments import crew_invite
from attendance.services.crew.followup import crew_complete_event
from attendance.services.ledger import ledger_post
from attendance.services.pay.runs import pay_run_create
from attendance.services.pay.timesheets import timesheet_approve
from tests.support.auth import log_in_staff
from tests.support.cluster import Cluster
from tests.support.factories import EventFactory, PaymentFactory, UserFactory
from tests.support.mpesa_wire import success_callback
from tests.support.pay import role_with, worked
from tests.support.s3 import S3Server
from tests.support.waiting import wait_until
from tests.support.workers import database_url_of_this_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
]
REDIS_DB = 7  # the cluster's own broker, cache and rate: nothing from other tests


def _phones(count, block):
    """Numbers whose endings mean plain success to every simulator: the scenarios live on
    endings such as 1032, 2001 or 5040 (M-Pesa) and 91-95 (SMS); 6xxx endings hold none."""
    endings = [n for n in range(6000, 7000) if n % 100 < 90]
    assert count <= len(endings)
    return [f"0713{block:02d}{ending:04d}" for ending in endings[:count]]


def _staff(*codenames):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


class Browser:
    """A staff member's session (password and second factor, as the login does) used with
    plain HTTP against any node: the session lives in the database every node shares."""

    def __init__(self, user):
        client = log_in_staff(Client(), user)
        self.http = requests.Session()
        self.http.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies["sessionid"].value)
        self.csrf = uuid.uuid4().hex + uuid.uuid4().hex
        self.http.cookies.set(settings.CSRF_COOKIE_NAME, self.csrf)

    def post(self, url, data=None):
        return self.http.post(
            url,
            data={**(data or {}), "csrfmiddlewaretoken": self.csrf},
            allow_redirects=False,
            timeout=30,
        )

    def get(self, url):
        return self.http.get(url, allow_redirects=False, timeout=30)


def _state() -> str:
    callbacks = MpesaCallback.objects.values_list("status", "detail")
    payments = MpesaPayment.objects.values_list("status", flat=True)
    jobs = list(BulkJob.objects.values_list("kind", "status", "done", "failed", "error"))
    outcomes = sorted(set(BulkJobItem.objects.values_list("status", "outcome")))[:8]
    return (
        f"callbacks {sorted(set(callbacks))[:10]}, payments {sorted(set(payments))}\n"
        f"jobs {jobs}\nitems {outcomes}\n"
    )


def _job_of(response) -> BulkJob:
    assert response.status_code == 302, response.text[:2000]
    found = re.search(r"/admin/attendance/bulkjob/(\d+)/", response.headers["Location"])
    assert found, response.headers["Location"]
    return BulkJob.objects.get(pk=int(found.group(1)))


@pytest.fixture
def s3():
    with S3Server(bucket="sf-cluster") as server:
        yield server


@pytest.fixture
def cluster(daraja, at_sms, s3, smtp_worker_env):
    tokens = {
        name: str(getattr(settings, name))
        for name in ("MPESA_CALLBACK_TOKEN", "MPESA_B2C_RESULT_TOKEN", "SMS_CALLBACK_TOKEN")
    }
    # One secret for the whole deployment: a session signed by one node is read by the other
    # (and by this test, which makes the staff sessions).
    settings.SECRET_KEY = secrets.token_urlsafe(50)
    env = {
        "SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url_of_this_process(),
        "CONN_MAX_AGE": "60",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        **s3.env(),
        **smtp_worker_env,
        **tokens,
        "MPESA_BASE_URL": daraja.url,
        "MPESA_CONSUMER_KEY": settings.MPESA_CONSUMER_KEY,
        "MPESA_CONSUMER_SECRET": settings.MPESA_CONSUMER_SECRET,
        "MPESA_BUSINESS_SHORT_CODE": settings.MPESA_BUSINESS_SHORT_CODE,
        "MPESA_PASS_KEY": settings.MPESA_PASS_KEY,
        "MPESA_B2C_CONSUMER_KEY": settings.MPESA_CONSUMER_KEY,
        "MPESA_B2C_CONSUMER_SECRET": settings.MPESA_CONSUMER_SECRET,
        "MPESA_B2C_INITIATOR_NAME": "sim-initiator",
        "MPESA_B2C_INITIATOR_PASSWORD": "Sim#Initiator1",
        "MPESA_B2C_CERTIFICATE": daraja.state.b2c.certificate.decode(),
        "PAYOUT_FLOAT_WAIT_SECONDS": "10",
        "DARAJA_RATE_PER_SECOND": "40",
        "SMS_ENABLED": "True",
        "SMS_REPLIES_ENABLED": "True",
        "SMS_DEFAULT_CHANNEL": "sms",
        "AT_USERNAME": at_sms.state.username,
        "AT_API_KEY": at_sms.state.api_key,
        "AT_BASE_URL": at_sms.url,
    }
    import redis

    redis.Redis(db=REDIS_DB).flushdb()
    nodes = Cluster(env)
    nodes.env["MPESA_CALLBACK_URL"] = f"{nodes.url}/api/payments/callback"
    nodes.env["MPESA_B2C_RESULT_URL"] = f"{nodes.url}/api/payouts"
    at_sms.state.report_url = f"{nodes.url}/api/sms/delivery/{tokens['SMS_CALLBACK_TOKEN']}/"
    at_sms.state.incoming_url = f"{nodes.url}/api/sms/incoming/{tokens['SMS_CALLBACK_TOKEN']}/"
    try:
        nodes.run_role("migrate")  # the release step, against the live database: a no-op
        nodes.start_web(count=2)
        nodes.start_worker("money")
        nodes.start_worker("messages", "background", "default")
        nodes.start_beat()
        yield nodes
    finally:
        nodes.stop()


def test_two_web_nodes_two_workers_and_one_beat_lose_and_double_nothing(
    cluster, daraja, at_sms, s3, settings
):
    logs = cluster.logs
    payer = _staff("view_profile", "change_profile", "request_mpesapayment")
    finance = _staff("view_payrun", "submit_payout")
    checker = _staff("view_payrun", "approve_payrun")

    # --- 1. 200 STK callbacks, each sent twice, through the balancer --------------------
    pending = [
        PaymentFactory(amount=100, phone_number="254" + phone[1:]) for phone in _phones(200, 10)
    ]
    url = f"{cluster.url}/api/payments/callback/{settings.MPESA_CALLBACK_TOKEN}/"
    for payment in pending + pending[:50]:
        body = success_callback(
            payment.checkout_request_id,
            receipt=f"TST{payment.pk:07d}",
            phone=int(payment.phone_number),
        )
        answer = requests.post(url, data=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 200

    def settled():
        return (
            MpesaPayment.objects.filter(
                pk__in=[p.pk for p in pending], status=MpesaPayment.Status.COMPLETED
            ).count()
            == 200
        )

    assert wait_until(settled, timeout=120, interval=0.5), _state() + logs()
    assert MpesaCallback.objects.count() == 250  # every body stored, duplicates included
    # Both nodes took callbacks (nginx's round robin), and each settled once.
    assert "/api/payments/callback/" in cluster.access_log(0)
    assert "/api/payments/callback/" in cluster.access_log(1)
    credited = LedgerEntry.objects.filter(
        source_type=ContentType.objects.get_for_model(MpesaPayment),
        source_id__in=[p.pk for p in pending],
    )
    assert credited.count() == 200

    # --- 2. A 100-member bulk prompt job, started on node A ----------------------------
    owing = [UserFactory(profile__phone_number=phone) for phone in _phones(100, 11)]
    for member in owing:
        ledger_post(user=member, kind="charge", amount=Decimal("250"), description="Hire")
    job = _job_of(
        Browser(payer).post(
            f"{cluster.node_url(0)}/admin/attendance/profile/",
            {
                "action": "request_mpesa_payment",
                "_selected_action": [m.profile.pk for m in owing],
                "apply": "1",
                "amount": "",
                "purpose": "Balance payment",
            },
        )
    )

    def prompted_and_paid():
        job.refresh_from_db()
        paid = MpesaPayment.objects.filter(
            user__in=owing, status=MpesaPayment.Status.COMPLETED
        ).count()
        return job.is_finished and paid == 100

    assert wait_until(prompted_and_paid, timeout=180, interval=0.5), _state() + logs()
    assert (job.done, job.failed) == (100, 0)
    per_phone = requests.get(f"{daraja.url}/simulator/stats", timeout=5).json()
    prompts = per_phone["prompts_per_phone"]
    assert len(prompts) == 100 and set(prompts.values()) == {1}  # each phone prompted once
    for member in owing:
        member.profile.refresh_from_db()
        assert member.profile.balance == 0

    # --- 3. A pay run approved on node B, exported on A and downloaded from B, paid out --
    starts = timezone.now() - timedelta(hours=12)
    event = EventFactory(starts_at=starts, ends_at=starts + timedelta(hours=8))
    role = role_with(
        "Stagehand", day_rate=Decimal("1500"), hourly_rate=None, minimum_hours=Decimal(0)
    )
    crew = [UserFactory(profile__phone_number=phone) for phone in _phones(12, 12)]
    for member in crew:
        worked(event, member, role, "6")
    manager = UserFactory(is_staff=True)
    crew_complete_event(event=event, by=manager)
    timesheet_approve(lines=TimesheetLine.objects.filter(event=event), by=manager)
    day = timezone.localtime(starts).date()
    run = pay_run_create(period_start=day, period_end=day, by=finance)
    approval = _job_of(
        Browser(checker).post(f"{cluster.node_url(1)}/admin/attendance/payrun/{run.pk}/approve/")
    )
    assert wait_until(
        lambda: PayRun.objects.get(pk=run.pk).status == PayRun.Status.APPROVED, timeout=90
    ), logs() + str(BulkJob.objects.get(pk=approval.pk).error)
    run.refresh_from_db()

    export = _job_of(
        Browser(finance).post(
            f"{cluster.node_url(0)}/admin/attendance/payrun/{run.pk}/export/xlsx/"
        )
    )
    assert wait_until(lambda: BulkJob.objects.get(pk=export.pk).is_finished, timeout=60), logs()
    export.refresh_from_db()
    assert export.status == BulkJob.Status.DONE, export.error
    download = Browser(finance).get(
        f"{cluster.node_url(1)}/admin/attendance/bulkjob/{export.pk}/download/"
    )
    assert download.status_code == 200
    rows = list(load_workbook(io.BytesIO(download.content))["Payroll"].iter_rows(values_only=True))
    to_pay = rows[0].index("To pay")
    # 12 x 1,500 gross, each less NSSF 90, SHIF 300 and housing levy 22.50.
    assert sum(Decimal(str(r[to_pay])) for r in rows[1:-1]) == run.to_pay == Decimal("13050.00")
    assert any(key.endswith(export.file.name) for key in s3.keys())  # noqa: SIM118 - the bucket's

    payout_job = _job_of(
        Browser(finance).post(f"{cluster.url}/admin/attendance/payrun/{run.pk}/payout/")
    )

    def paid_out():
        return Payout.objects.filter(pay_run=run, status="completed").count() == 12

    assert wait_until(paid_out, timeout=120, interval=0.5), logs() + str(
        BulkJob.objects.get(pk=payout_job.pk).error
    )
    assert daraja.state.b2c.snapshot()["b2c"] == 12  # each member paid once

    # --- 4. SMS replies, each texted twice ---------------------------------------------
    show = EventFactory(starts_at=timezone.now() + timedelta(days=5))
    show.ends_at = show.starts_at + timedelta(hours=6)
    show.save()
    invited = [UserFactory(profile__phone_number=phone) for phone in _phones(10, 13)]
    assignments = []
    for member in invited:
        assignment = EventCrew.objects.create(event=show, user=member, role=role)
        crew_invite(assignment=assignment)
        assignment.refresh_from_db()
        assignments.append(assignment)
    for assignment in assignments + assignments[:4]:
        number = "+254" + assignment.user.profile.phone_number[-9:]
        sent = requests.post(
            f"{at_sms.url}/simulator/reply",
            json={"from": number, "text": f"yes {assignment.reply_code}"},
            timeout=10,
        )
        assert sent.ok

    def all_confirmed():
        return (
            EventCrew.objects.filter(pk__in=[a.pk for a in assignments], status="confirmed").count()
            == 10
        )

    assert wait_until(all_confirmed, timeout=90, interval=0.5), logs()
    assert SmsCallback.objects.filter(kind="incoming").count() == 14

    # --- Afterwards ---------------------------------------------------------------------
    doubled = (
        LedgerEntry.objects.exclude(source_id=None)
        .values("kind", "source_type", "source_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not doubled.exists()
    assert cluster.node_local_files() == []  # no node kept a file of its own
    for n in (0, 1):
        assert "/admin/" in cluster.access_log(n)
        # Each node counts its own requests, under its own name (all its gunicorn workers).
        scraped = requests.get(f"{cluster.node_url(n)}/api/metrics/", timeout=10).text
        node = f"node-{'ab'[n]}"
        assert re.search(
            rf'sf_http_requests_total{{method="POST",node="{node}",status="200"}}', scraped
        )
        assert 'sf_inbox_backlog{inbox="mpesa_callbacks"} 0.0' in scraped
