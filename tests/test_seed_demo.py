import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from attendance.models import Attendance, EmailNotification, Event, EventCrew, LedgerEntry, Profile
from attendance.services.ledger import ledger_balance_from_entries
from tests.support.workers import ROOT


def _counts():
    return (
        get_user_model().objects.count(),
        Event.objects.count(),
        Attendance.objects.count(),
        LedgerEntry.objects.count(),
        EventCrew.objects.count(),
    )


def test_seed_demo_is_idempotent_and_consistent(db, capsys):
    call_command("seed_demo")
    first = _counts()
    assert first[0] >= 12 and first[1] >= 7 and first[2] > 0 and first[3] > 0
    call_command("seed_demo")
    assert _counts() == first
    out = capsys.readouterr().out
    assert "admin" in out and "soundfusion-demo" in out
    for profile in Profile.objects.select_related("user"):
        assert profile.balance == ledger_balance_from_entries(profile.user)
    assert Profile.objects.exclude(phone_number__regex=r"^254[17]\d{8}$").count() == 0
    # The demo crew login sees every part of the assignments page.
    statuses = set(
        EventCrew.objects.filter(user__username="wanjiku").values_list("status", flat=True)
    )
    assert {"invited", "completed"} <= statuses


def test_seed_demo_generates_volume(db):
    from attendance.models import EmailNotification, MpesaPayment

    call_command("seed_demo", crew=30, events=12, payments=40, notifications=50, quiet=True)
    assert MpesaPayment.objects.count() == 40
    assert EmailNotification.objects.filter(subject__startswith="[seed]").count() == 50
    for profile in Profile.objects.select_related("user"):
        assert profile.balance == ledger_balance_from_entries(profile.user)
    call_command("seed_demo", crew=30, events=12, payments=40, notifications=50, quiet=True)
    assert MpesaPayment.objects.count() == 40
    assert Profile.objects.filter(user__username__startswith="crew").count() == 30
    assert Event.objects.filter(name__startswith="Generated event").count() == 12
    call_command("seed_demo", crew=30, events=12, quiet=True)
    assert Event.objects.filter(name__startswith="Generated event").count() == 12


def test_the_demo_follows_its_port_and_prints_the_logins_not_email_source(db, capsys, settings):
    settings.SITE_URL = "http://127.0.0.1:8010"  # what `make run PORT=8010` sets
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    call_command("seed_demo")
    out, err = capsys.readouterr()
    assert "Log in at http://127.0.0.1:8010/" in out
    assert "Content-Type:" not in out + err  # no email source on the console
    assert len(out.splitlines()) < 20
    invitation = EmailNotification.objects.filter(notification_type="crew_invitation").first()
    assert invitation is not None and "http://127.0.0.1:8010/crew/" in invitation.message


def test_commands_without_a_broker_do_not_warn_about_a_missing_hostname():
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env["DATABASE_URL"] = "sqlite:///:memory:"
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from soundfusion_attendance.celery import app; "
            "app.connection().info(); app.pool.acquire()",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "soundfusion_attendance.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "No hostname" not in run.stderr


def test_volume_in_bulk_keeps_every_balance_equal_to_its_ledger_and_spreads_a_year(db):
    from datetime import timedelta

    from django.utils import timezone

    from attendance.models import EmailNotification, MpesaPayment

    call_command("seed_demo", crew=20, events=6, payments=400, notifications=600, quiet=True)
    seeded = MpesaPayment.objects.filter(checkout_request_id__startswith="ws_CO_SEED")
    assert seeded.count() == 400
    assert not seeded.filter(status="completed", ledger_entry__isnull=True).exists()
    for profile in Profile.objects.select_related("user"):
        assert profile.balance == ledger_balance_from_entries(profile.user)
    first = seeded.order_by("initiated_at").first().initiated_at
    last = seeded.order_by("-initiated_at").first().initiated_at
    assert last - first > timedelta(days=300)  # history to filter by month
    emails = EmailNotification.objects.filter(subject__startswith="[seed]")
    assert emails.count() == 600
    assert emails.filter(created_at__lt=timezone.now() - timedelta(days=180)).exists()
    call_command("seed_demo", payments=400, notifications=600, quiet=True)  # tops up: nothing
    assert seeded.count() == 400 and emails.count() == 600


def test_the_demo_shows_every_scheduling_feature(db):
    from attendance.models import EventCrew, EventRoleRequirement, ReplacementRequest
    from attendance.services.crew.offers import open_roles_for

    call_command("seed_demo", quiet=True)
    call_command("seed_demo", quiet=True)  # idempotent: nothing doubled
    statuses = set(EventCrew.objects.values_list("status", flat=True))
    assert {"standby", "offered"} <= statuses
    assert ReplacementRequest.objects.filter(status="pending").count() == 1
    assert EventCrew.objects.exclude(rating=None).count() == 6
    wanjiku = get_user_model().objects.get(username="wanjiku")
    assert {o.event.name for o in open_roles_for(wanjiku)} == {"Safaricom Jazz Festival"}
    koroga = EventRoleRequirement.objects.filter(event__name="Koroga Festival")
    assert sum(r.needed for r in koroga) == 40
    assert get_user_model().objects.filter(username__startswith="stagehand").count() == 40


@pytest.mark.parametrize("hour", ["00:30", "12:00", "19:30", "23:50"])
def test_the_demo_seeds_sensibly_at_any_hour(db, capsys, hour):
    """Nothing printed as an error, today's event staffed and still to come, someone owes
    money, and every staff login has backup codes on the console."""
    from tests.support.clock import nairobi_at

    with nairobi_at(hour):
        call_command("seed_demo")
        out, err = capsys.readouterr()
        assert err == "", err
        launch = Event.objects.get(name="Product launch")
        assert launch.starts_at > timezone.now() + timedelta(hours=2)
        assert launch.starts_at < timezone.now() + timedelta(hours=22)
        confirmed = EventCrew.objects.filter(event=launch, status="confirmed")
        assert confirmed.filter(user__username="wanjiku").exists()
        # Show day: the call sheet is filled in, and by day a stagehand is late already.
        assert launch.venue_position and launch.run_of_show.count() == 5
        assert EventCrew.objects.filter(event=launch, status="standby").exists()
        from attendance.services.crew.showday import show_day_run

        late = show_day_run()["late"]
        assert late == (1 if hour in ("12:00", "19:30") else 0)
    wanjiku = Profile.objects.get(user__username="wanjiku")
    assert wanjiku.balance > 0  # she owes: Pay with M-Pesa shows on her portal
    for name in ("admin", "manager", "finance"):
        assert re.search(rf"^  {name}\s+(\w{{8}} ){{3}}\w{{8}}$", out, re.M), out


def test_the_demo_console_prints_one_line_per_email_and_no_static_files(db, capsys, settings):
    import logging

    from attendance.management.demo_console import not_a_static_file
    from attendance.services.messaging.email import notification_create, notification_deliver

    settings.EMAIL_BACKEND = "attendance.management.demo_console.OneLineEmailBackend"
    settings.SITE_URL = "http://127.0.0.1:8000"
    row = notification_create(
        recipient="wanjiku@example.com",
        notification_type="alert",
        context={"title": "Payouts M-Pesa has not settled", "detail": "2 open", "lines": []},
    )
    notification_deliver(notification_id=row.pk)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Email to wanjiku@example.com:" in out
    assert f"/admin/attendance/emailnotification/{row.pk}/change/" in out
    static = logging.LogRecord(
        "django.server", 20, "", 0, '"GET /static/css/app.css" 200', (), None
    )
    page = logging.LogRecord("django.server", 20, "", 0, '"GET /pay/ HTTP/1.1" 200', (), None)
    assert not not_a_static_file(static) and not_a_static_file(page)


def test_the_logs_of_a_year_are_seeded_once_and_spread_over_their_window(db):
    from axes.models import AccessLog
    from django_celery_results.models import TaskResult

    from attendance.models import SmsMessage

    call_command("seed_demo", texts=90, task_results=60, sign_ins=70, quiet=True)
    texts = SmsMessage.objects.filter(message__startswith="SoundFusion: Generated event")
    results = TaskResult.objects.filter(task_id__startswith="seed-")
    sign_ins = AccessLog.objects.filter(session_hash__startswith="seed")
    assert (texts.count(), results.count(), sign_ins.count()) == (90, 60, 70)
    assert texts.filter(encoding="UCS-2", parts=2).count() == 10  # one in nine
    assert texts.filter(created_at__lt=timezone.now() - timedelta(days=180)).exists()
    assert not results.filter(date_done__lt=timezone.now() - timedelta(days=8)).exists()
    assert {r.path_info for r in sign_ins} == {"/accounts/login/", "/admin/login/"}
    call_command("seed_demo", texts=90, task_results=60, sign_ins=70, quiet=True)  # tops up
    assert (texts.count(), results.count(), sign_ins.count()) == (90, 60, 70)


def test_pdfs_made_for_payslip_emails_do_not_fill_the_log_with_their_steps():
    import logging

    # WeasyPrint logs seven INFO lines per PDF; the demo's console and the workers' logs
    # would carry thousands for one pay run.
    assert logging.getLogger("weasyprint").getEffectiveLevel() >= logging.WARNING
