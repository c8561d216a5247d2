"""Readiness, the periodic jobs' own records, and the alerts staff get when something is wrong."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from attendance.models import Alert, BeatRun, EmailNotification, MpesaCallback, MpesaPayment
from attendance.mpesa.transport import DarajaError
from attendance.services.core.pacing import daraja_problem_note
from attendance.services.ops.alerts import alerts_check
from attendance.services.ops.health import beat_job
from attendance.services.ops.schedules import PERIODIC_TASKS
from attendance.services.payments import PaymentError, payment_request_stk_push
from tests.conftest import set_celery_eager
from tests.support.factories import PaymentFactory, UserFactory

Kind = Alert.Kind


@pytest.fixture
def jobs_on_time(db):
    """Every periodic job ran a moment ago."""
    now = timezone.now()
    for task, _ in PERIODIC_TASKS.values():
        BeatRun.objects.update_or_create(task=task, defaults={"last_succeeded_at": now})


def _ready(client):
    response = client.get("/api/ready/")
    return response.status_code, response.json()


def test_health_is_liveness_only_and_costs_no_query(db, client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/api/health/").json() == {"ok": True}


def test_ready_is_200_when_everything_works(client, jobs_on_time):
    status, body = _ready(client)
    assert status == 200, body
    assert body["ok"] is True
    assert set(body["checks"]) == {
        "database", "redis", "broker", "queue", "beat", "emails", "payments", "payouts"
    }  # fmt: skip


def test_ready_is_503_when_redis_is_unreachable(client, jobs_on_time, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    status, body = _ready(client)
    assert status == 503
    assert body["checks"]["redis"] == {"ok": False, "detail": "unreachable: ConnectionError"}
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.redis
def test_ready_reports_the_broker_and_its_queue(client, jobs_on_time, settings):
    set_celery_eager(False)
    try:
        settings.CELERY_BROKER_URL = settings.REDIS_URL
        status, body = _ready(client)
        assert status == 200, body
        assert body["checks"]["queue"]["detail"].endswith("tasks waiting (limit 5000)")
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        status, body = _ready(client)
        assert status == 503 and body["checks"]["broker"]["ok"] is False
    finally:
        set_celery_eager(True)


def test_ready_is_503_when_a_periodic_job_is_overdue(client, jobs_on_time):
    BeatRun.objects.filter(task="attendance.tasks.payments_reconcile_task").update(
        last_succeeded_at=timezone.now() - timedelta(minutes=10)
    )
    status, body = _ready(client)
    assert status == 503
    detail = body["checks"]["beat"]["detail"]
    assert "M-Pesa: query pending payments" in detail and "last ran 10 min ago" in detail


def test_a_job_paused_by_an_admin_is_not_overdue(client, jobs_on_time):
    from django_celery_beat.models import PeriodicTask

    name = "Crew: remind confirmed crew the day before"
    PeriodicTask.objects.filter(name=name).update(enabled=False)
    BeatRun.objects.filter(task="attendance.tasks.crew_send_reminders_task").update(
        last_succeeded_at=timezone.now() - timedelta(days=2)
    )
    status, body = _ready(client)
    assert status == 200 and "paused in admin: " + name in body["checks"]["beat"]["detail"]


def test_ready_is_503_when_an_email_or_a_payment_is_stuck(client, jobs_on_time, settings):
    old = timezone.now() - timedelta(hours=2)
    email = EmailNotification.objects.create(
        recipient="a@example.com", notification_type="alert", subject="s", message="m"
    )
    EmailNotification.objects.filter(pk=email.pk).update(created_at=old)
    status, body = _ready(client)
    assert status == 503 and body["checks"]["emails"]["ok"] is False
    EmailNotification.objects.filter(pk=email.pk).update(status="sent")

    payment = PaymentFactory(status="pending", phone_number="254712000001")
    assert _ready(client)[0] == 200
    limit = settings.MPESA_PENDING_TIMEOUT_SECONDS + settings.READY_PAYMENT_GRACE_SECONDS
    MpesaPayment.objects.filter(pk=payment.pk).update(
        initiated_at=timezone.now() - timedelta(seconds=limit + 60)
    )
    status, body = _ready(client)
    assert status == 503 and "oldest open for" in body["checks"]["payments"]["detail"]


def test_a_periodic_job_records_its_success_and_its_failure(db):
    from attendance.tasks import payments_reconcile_task

    payments_reconcile_task.apply()
    run = BeatRun.objects.get(task="attendance.tasks.payments_reconcile_task")
    assert run.last_succeeded_at and run.last_started_at and not run.last_error

    @beat_job
    def broken_job():
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        broken_job()
    run = BeatRun.objects.get(task=f"{__name__}.broken_job")
    assert run.last_failed_at and run.last_succeeded_at is None
    assert run.last_error == "RuntimeError: the database went away"


# --- Alerts ---------------------------------------------------------------------------------


@pytest.fixture
def on_call(db):
    """Who receives alerts: a superuser, an operator by group, an ops mailbox; not others."""
    boss = UserFactory(is_staff=True, is_superuser=True, email="boss@example.com")
    ops = Group.objects.create(name="Operations")
    ops.permissions.add(Permission.objects.get(codename="receive_alerts"))
    operator = UserFactory(is_staff=True, email="ops@example.com")
    operator.groups.add(ops)
    UserFactory(is_staff=True, email="clerk@example.com")  # staff without the permission
    UserFactory(email="crew@example.com")
    return boss, operator


def _alert_emails():
    return EmailNotification.objects.filter(notification_type="alert")


def _fires_once_then_waits(kind, settings) -> Alert:
    """The condition holds: one alert now, none on the next check, one again after the
    interval."""
    first = alerts_check()
    assert [a.kind for a in first] == [kind]
    assert alerts_check() == []
    Alert.objects.filter(pk=first[0].pk).update(
        fired_at=timezone.now() - timedelta(seconds=settings.ALERT_INTERVAL_SECONDS + 1)
    )
    again = alerts_check()
    assert [a.kind for a in again] == [kind]
    return first[0]


def test_no_alert_when_nothing_is_wrong(on_call, jobs_on_time):
    PaymentFactory(status="completed", phone_number="254712000009")
    assert alerts_check() == []
    assert not _alert_emails().exists()


def test_many_failed_payments_alert_once_per_interval(on_call, jobs_on_time, settings):
    settings.ALERT_EMAILS = ["duty@soundfusion.co.ke", "OPS@example.com"]
    for n in range(6):
        PaymentFactory(status="failed", phone_number=f"25471200010{n}")
    for n in range(4):
        PaymentFactory(status="completed", phone_number=f"25471200020{n}")
    alert = _fires_once_then_waits(Kind.PAYMENT_FAILURES, settings)
    assert "60% of the last hour's 10 payments" in alert.summary
    recipients = sorted(_alert_emails().values_list("recipient", flat=True))
    assert recipients == sorted(
        2 * ["boss@example.com", "duty@soundfusion.co.ke", "ops@example.com"]
    )
    assert alert.recipients == 3  # two alerts, three people each


def test_a_few_failures_or_a_low_rate_do_not_alert(on_call, jobs_on_time):
    for n in range(5):
        PaymentFactory(status="failed", phone_number=f"25471200030{n}")
    assert alerts_check() == []  # 5 payments: too few to judge
    for n in range(7):
        PaymentFactory(status="completed", phone_number=f"25471200040{n}")
    assert alerts_check() == []  # 5 of 12: under half


def test_daraja_refusals_over_http_alert(on_call, jobs_on_time, daraja, settings):
    settings.ALERT_DARAJA_PROBLEMS = 4
    member = UserFactory()
    for n in range(4):  # the simulator refuses phones ending in 5000
        with pytest.raises(PaymentError):
            payment_request_stk_push(
                payer=member, amount=10, purpose="x", requested_by=None, phone=f"07{n}0115000"
            )
    alert = _fires_once_then_waits(Kind.DARAJA_PROBLEMS, settings)
    assert alert.details["error"] + alert.details["rate_limited"] == 4


def test_rate_limit_answers_are_counted_apart(db):
    from attendance.services.core.pacing import daraja_problems

    daraja_problem_note(DarajaError("Spike arrest", code="500.003.02", retryable=True))
    daraja_problem_note(DarajaError("Bad phone", code="invalid_request"))  # ours, not Daraja's
    assert daraja_problems(5) == {"error": 0, "rate_limited": 1}


def test_payments_past_their_timeout_alert(on_call, jobs_on_time, settings):
    payment = PaymentFactory(status="pending", phone_number="254712000501")
    assert alerts_check() == []
    MpesaPayment.objects.filter(pk=payment.pk).update(
        initiated_at=timezone.now() - timedelta(hours=1)
    )
    _fires_once_then_waits(Kind.PAYMENTS_OVERDUE, settings)


def test_failing_emails_alert(on_call, jobs_on_time, settings):
    for n in range(settings.ALERT_EMAIL_FAILURES - 1):
        EmailNotification.objects.create(
            recipient=f"x{n}@example.com", notification_type="crew_reminder", subject="s",
            message="m", status="failed",
        )  # fmt: skip
    assert alerts_check() == []
    EmailNotification.objects.create(
        recipient="y@example.com", notification_type="crew_reminder", subject="s", message="m",
        status="queued", failed_attempts=2, next_attempt_at=timezone.now(),
    )  # fmt: skip
    _fires_once_then_waits(Kind.EMAILS_FAILING, settings)


def test_a_periodic_job_that_has_not_run_alerts(on_call, jobs_on_time, settings):
    BeatRun.objects.filter(task="attendance.tasks.notifications_sweep_task").update(
        last_succeeded_at=timezone.now() - timedelta(minutes=30), last_error="SMTP down"
    )
    alert = _fires_once_then_waits(Kind.BEAT_STALE, settings)
    assert "Send queued emails" in alert.summary
    assert alert.details["attendance.tasks.notifications_sweep_task"] == "SMTP down"


def _open_payout(**fields):
    from datetime import date

    from attendance.models import Payout, PayRun, PayRunMember

    member = UserFactory()
    run = PayRun.objects.create(
        period_start=date(2026, 11, 1), period_end=date(2026, 11, 30), status="approved"
    )
    slip = PayRunMember.objects.create(
        pay_run=run, user=member, earned=1500, balance_before=0, balance_after=-1500,
        deducted=0, to_pay=1500,
    )  # fmt: skip
    return Payout.objects.create(
        pay_run=run, payslip=slip, user=member, phone_number="254712000777", amount=1500,
        originator_conversation_id=f"SF-test-{member.pk}", **fields,
    )  # fmt: skip


def test_ready_is_503_when_a_payout_stays_unsettled_past_the_reconciler(client, jobs_on_time):
    from attendance.services.ops.health import payout_settle_limit_seconds

    payout = _open_payout(status="submitted", submitted_at=timezone.now())
    assert _ready(client)[0] == 200
    type(payout).objects.filter(pk=payout.pk).update(
        submitted_at=timezone.now() - timedelta(seconds=payout_settle_limit_seconds() + 60)
    )
    status, body = _ready(client)
    assert status == 503 and "oldest unsettled for" in body["checks"]["payouts"]["detail"]


def test_a_payout_flagged_for_a_person_alerts(on_call, jobs_on_time, settings):
    _open_payout(status="unknown", submitted_at=timezone.now())
    assert alerts_check() == []
    _open_payout(
        status="unknown", submitted_at=timezone.now(), needs_review=True,
        review_reason="No answer from M-Pesa after 6 status checks",
    )  # fmt: skip
    alert = _fires_once_then_waits(Kind.PAYOUTS_UNSETTLED, settings)
    assert (alert.details["review"], alert.details["overdue"]) == (1, 0)


def test_quarantined_callbacks_alert(on_call, jobs_on_time, settings):
    MpesaCallback.objects.create(raw_body="{}", status=MpesaCallback.Status.QUARANTINED)
    _fires_once_then_waits(Kind.CALLBACKS_QUARANTINED, settings)


def test_an_alert_arrives_by_smtp_with_a_link(
    on_call, jobs_on_time, smtp_server, django_capture_on_commit_callbacks
):
    payment = PaymentFactory(status="pending", phone_number="254712000601")
    MpesaPayment.objects.filter(pk=payment.pk).update(
        initiated_at=timezone.now() - timedelta(hours=1)
    )
    from attendance.tasks import alerts_check_task

    with django_capture_on_commit_callbacks(execute=True):
        assert alerts_check_task.apply().get() == 1
    delivered = {m["To"]: m for m in smtp_server.messages}
    assert set(delivered) == {"boss@example.com", "ops@example.com"}
    message = delivered["ops@example.com"]
    assert message["Subject"] == "Sound Fusion alert: Payments pending past their timeout"
    text = message.get_payload(0).get_payload(decode=True).decode()
    assert "/admin/attendance/mpesapayment/?status__exact=pending" in text
    assert "at most once every hour while it lasts" in text
    assert BeatRun.objects.get(task="attendance.tasks.alerts_check_task").last_succeeded_at


def test_readiness_is_for_the_internal_network_or_the_token_only(client, jobs_on_time, settings):
    settings.READINESS_TOKEN = "ready-token-for-the-balancer"
    outside = {"REMOTE_ADDR": "196.201.214.200"}
    assert client.get("/api/ready/", **outside).status_code == 404
    wrong = client.get("/api/ready/", HTTP_AUTHORIZATION="Bearer guess", **outside)
    assert wrong.status_code == 404
    right = client.get(
        "/api/ready/", HTTP_AUTHORIZATION="Bearer ready-token-for-the-balancer", **outside
    )
    assert right.status_code == 200 and "queue" in right.json()["checks"]
    # Behind our nginx the address is the one nginx saw, not what a client forged.
    forged = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1, 41.90.1.2"}
    assert client.get("/api/ready/", **forged).status_code == 404
    assert client.get("/api/ready/").status_code == 200  # this host
    assert client.get("/api/health/", **outside).status_code == 200  # liveness stays open


def test_every_page_carries_a_content_security_policy_without_inline_scripts(client, db):
    header = client.get("/accounts/login/")["Content-Security-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    assert policy["script-src"] == "'self'"  # no inline script, no eval
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"


def test_no_template_has_an_inline_script_or_handler():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=\"", re.I)
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.html")
        if "emails" not in path.parts and inline.search(path.read_text())
    ]
    assert found == []
