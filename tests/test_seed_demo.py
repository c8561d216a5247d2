from django.contrib.auth import get_user_model
from django.core.management import call_command

from attendance.models import Attendance, Event, EventCrew, LedgerEntry, Profile
from attendance.services.ledger import ledger_balance_from_entries


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
