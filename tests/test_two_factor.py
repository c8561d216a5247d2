"""Staff two-factor login: nothing in admin or the staff API without it, whichever login."""

import base64
import io
import json
import threading
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from attendance.models import MpesaPayment
from attendance.services.core.audit import AuditEvent
from attendance.services.people.two_factor import two_factor_check, two_factor_new_backup_codes
from tests.support.auth import app_device, backup_code, current_code, log_in_staff
from tests.support.factories import PaymentFactory, UserFactory

PASSWORD = "a-long-staff-password-2026"


@pytest.fixture
def finance(db):
    from django.contrib.auth.models import Group

    user = UserFactory(is_staff=True, username="mercy")
    user.set_password(PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name="Finance"))
    return user


def _admin_urls(payment) -> list[str]:
    urls = ["/admin/", "/admin/attendance/", f"/admin/attendance/mpesapayment/{payment.pk}/change/"]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(f"/admin/{meta.app_label}/{meta.model_name}/")
    urls.append(f"/admin/attendance/mpesapayment/status/?ids={payment.pk}")  # admin JSON
    return urls


def _password_login(client, path="/accounts/login/", next_url="/"):
    return client.post(
        f"{path}?next={next_url}",
        {"username": "mercy", "password": PASSWORD, "next": next_url},
    )


def test_staff_with_a_password_only_reach_no_admin_page_and_no_staff_api(client, finance):
    payment = PaymentFactory(phone_number="254712000001")
    assert _password_login(client).status_code == 302  # the crew portal's login
    assert client.get("/").status_code == 200  # the portal itself works
    for url in _admin_urls(payment):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith("/admin/login/"), url
    # The admin's login sends them on to the second step, not to a second password form.
    step = client.get("/admin/login/?next=/admin/")
    assert step.status_code == 302 and step.url.startswith("/admin/two-factor/")

    prompt = client.post(
        "/api/mpesa/request-payment/",
        json.dumps({"user_id": payment.user_id, "amount": 100}),
        content_type="application/json",
    )
    assert prompt.status_code == 403
    assert prompt.json()["error"]["code"] == "second_factor_required"
    status = client.get(f"/api/mpesa/payment-status/?payment_id={payment.pk}")
    assert status.status_code == 404  # someone else's payment, as for any member
    assert MpesaPayment.objects.count() == 1


def test_with_the_apps_code_staff_reach_admin_after_either_login(client, finance):
    device = app_device(finance)
    response = _password_login(client, "/admin/login/", "/admin/attendance/mpesapayment/")
    assert response.status_code == 302
    assert response.url == "/admin/two-factor/?next=%2Fadmin%2Fattendance%2Fmpesapayment%2F"
    page = client.get(response.url)
    assert page.status_code == 200 and "six digits" in page.content.decode()
    done = client.post(response.url, {"code": current_code(device)})
    assert done.status_code == 302 and done.url == "/admin/attendance/mpesapayment/"
    assert client.get("/admin/attendance/mpesapayment/").status_code == 200
    payment = PaymentFactory(phone_number="254712000002")
    status = client.get(f"/api/mpesa/payment-status/?payment_id={payment.pk}")
    assert status.status_code == 200  # staff see every payment once verified


def test_the_session_id_changes_when_the_second_factor_is_given(client, finance):
    device = app_device(finance)
    _password_login(client)
    before = client.cookies["sessionid"].value
    client.post("/admin/two-factor/", {"code": current_code(device)})
    assert client.cookies["sessionid"].value != before


def test_a_backup_code_works_once(client, finance):
    app_device(finance)
    code = backup_code(finance, "onceonly1")
    _password_login(client)
    assert client.post("/admin/two-factor/", {"code": "ONCE ONLY1"}).status_code == 302
    assert client.get("/admin/").status_code == 200

    client.logout()
    _password_login(client)
    again = client.post("/admin/two-factor/", {"code": code})
    assert again.status_code == 200 and "not right" in again.content.decode()
    assert client.get("/admin/").status_code == 302


def test_wrong_codes_are_throttled_and_then_even_the_right_one_waits(client, finance):
    device = app_device(finance)
    _password_login(client)
    first = client.post("/admin/two-factor/", {"code": "000000"})
    assert first.status_code == 200 and "not right" in first.content.decode()
    # The next try comes too soon: refused without being checked, with how long to wait.
    for _ in range(5):
        response = client.post("/admin/two-factor/", {"code": "111111"})
        assert response.status_code == 429
        assert "Too many wrong codes" in response.content.decode()
    right = client.post("/admin/two-factor/", {"code": current_code(device)})
    assert right.status_code == 429
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # only the first guess was checked

    # Once the wait is over the right code works, and the count starts again.
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=5)
    )
    assert client.post("/admin/two-factor/", {"code": current_code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_are_checked_one_at_a_time(finance):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; CI runs this on PostgreSQL")
    app_device(finance)
    guesses = [f"{n:06d}" for n in range(100000, 100012)]
    results, barrier = [], threading.Barrier(len(guesses))

    def guess(code):
        barrier.wait()
        try:
            results.append(two_factor_check(finance, code))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(code,)) for code in guesses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    device = TOTPDevice.objects.get(user=finance)
    # Twelve guesses at once: the lock lets the first be checked, the rest find it throttled.
    assert device.throttling_failure_count <= 2
    assert sum(r.locked_until is not None for r in results) >= len(guesses) - 2


def test_a_new_staff_member_sets_up_the_app_on_first_admin_visit(client, finance):
    _password_login(client, "/admin/login/", "/admin/")
    step = client.get("/admin/two-factor/?next=/admin/")
    assert step.status_code == 302 and step.url.startswith("/admin/two-factor/set-up/")
    page = client.get(step.url).content.decode()
    assert "<svg" in page and "Set up two-factor login" in page

    def shown_key(page):
        return page.split('id="setup-key">')[1].split("</code>")[0].replace(" ", "")

    key = shown_key(page)
    assert shown_key(client.get(step.url).content.decode()) == key  # the same on reload
    secret = base64.b32decode(key + "=" * (-len(key) % 8))
    wrong = client.post(step.url, {"code": "123456"})
    assert "not right" in wrong.content.decode()
    assert "Too many wrong codes" in client.post(step.url, {"code": "123456"}).content.decode()
    TOTPDevice.objects.filter(user=finance).update(throttling_failure_timestamp=None)
    code = f"{TOTP(secret).token():06d}"
    done = client.post(step.url, {"code": code})
    assert done.status_code == 302 and done.url.startswith("/admin/two-factor/backup-codes/")
    codes_page = client.get(done.url).content.decode()
    assert codes_page.count("<li><code>") == 10 and "shown only this once" in codes_page
    assert "<li><code>" not in client.get(done.url).content.decode()  # once
    assert client.get("/admin/").status_code == 200
    device = TOTPDevice.objects.get(user=finance)
    assert device.confirmed
    entry = _audit_rows(AuditEvent.TWO_FACTOR_ENROLLED).get()
    assert entry.actor == finance


def test_new_backup_codes_replace_the_old_ones(client, finance):
    log_in_staff(client, finance)
    old = two_factor_new_backup_codes(finance)
    response = client.post("/admin/two-factor/backup-codes/")
    assert response.status_code == 302
    new_page = client.get(response.url).content.decode()
    assert new_page.count("<li><code>") == 10
    tokens = set(StaticDevice.objects.get(user=finance).token_set.values_list("token", flat=True))
    assert not tokens & set(old)


def test_crew_accounts_are_not_asked_for_a_second_factor(client, crew):
    crew.set_password(PASSWORD)
    crew.save()
    client.post("/accounts/login/", {"username": crew.username, "password": PASSWORD})
    assert client.get("/").status_code == 200
    assert client.get("/crew/assignments/").status_code == 200
    assert client.get("/admin/two-factor/").url == "/"


def test_a_superuser_resets_a_lost_phone_and_the_reset_is_audited(client, finance):
    finance_client = type(client)()
    log_in_staff(finance_client, finance)
    assert finance_client.get("/admin/").status_code == 200
    boss = UserFactory(is_staff=True, is_superuser=True)
    log_in_staff(client, boss)
    response = client.post(
        "/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [finance.pk]}
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=finance).exists()
    # The session verified with the lost phone is verified no more.
    assert finance_client.get("/admin/").status_code == 302
    entry = _audit_rows(AuditEvent.TWO_FACTOR_RESET).get()
    assert (entry.actor, entry.object_id) == (boss, finance.pk)


def test_only_superusers_may_reset_a_second_factor(client, finance):
    from django.contrib.auth.models import Permission

    manager = UserFactory(is_staff=True)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user"])
    )
    log_in_staff(client, manager)
    listing = client.get("/admin/auth/user/").content.decode()
    assert "reset_two_factor" not in listing
    client.post(
        "/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [finance.pk]}
    )
    app_device(finance)  # (created now: the post above must not have touched anything)
    assert TOTPDevice.objects.filter(user=finance).count() == 1


def test_the_first_superuser_sets_up_the_app_at_the_terminal(db):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    out = io.StringIO()
    call_command("two_factor_setup", "root", "--no-qr", stdout=out)
    text = out.getvalue()
    assert "Or type this key:" in text and "Backup codes" in text
    codes = text.strip().splitlines()[-1].split()
    assert len(codes) == 10
    assert TOTPDevice.objects.get(user=root).confirmed
    assert two_factor_check(root, codes[0]).ok
    with pytest.raises(Exception, match="already has an authenticator app"):
        call_command("two_factor_setup", "root", stdout=io.StringIO())
    assert _audit_rows(AuditEvent.TWO_FACTOR_ENROLLED).get().actor is None  # the terminal


def test_djangos_own_device_pages_are_not_in_admin(admin_client):
    assert admin_client.get("/admin/otp_totp/totpdevice/").status_code == 404
    assert admin_client.get("/admin/otp_static/staticdevice/").status_code == 404
    assert reverse("admin:two_factor_backup_codes") == "/admin/two-factor/backup-codes/"


def _audit_rows(event):
    from auditlog.models import LogEntry

    return LogEntry.objects.filter(additional_data__event=str(event))
