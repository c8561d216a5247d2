"""The audit trail: one row per staff action on money, access or personal data, never changed."""

import json

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection, transaction

from attendance.models import MpesaPayment
from attendance.services.core.audit import AuditEvent
from attendance.services.ledger import ledger_post
from tests.support.auth import log_in_staff
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.jobs import run_action


def rows(event=None):
    entries = LogEntry.objects.all()
    return entries.filter(additional_data__event=str(event)) if event else entries


@pytest.fixture
def finance(db):
    user = UserFactory(is_staff=True, username="mercy")
    user.groups.add(Group.objects.get(name="Finance"))
    return user


@pytest.fixture
def finance_client(client, finance):
    return log_in_staff(client, finance)


def test_a_prompt_for_a_member_from_admin_leaves_one_row_with_who_and_where(
    daraja, finance_client, finance
):
    member = UserFactory(profile__phone_number="0712000111")
    failed = PaymentFactory(user=member, phone_number="254712000111", status="cancelled")
    response = finance_client.post(
        f"/admin/attendance/mpesapayment/{failed.pk}/resend/",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 41.90.1.2",  # the first is the client's claim
    )
    assert response.status_code == 302
    entry = rows(AuditEvent.PROMPT_REQUESTED).get()
    new = MpesaPayment.objects.exclude(pk=failed.pk).get()
    assert (entry.actor, entry.object_id, entry.remote_addr) == (finance, new.pk, "41.90.1.2")
    assert entry.changes_dict["member"] == ["None", member.username]
    assert entry.additional_data["phone"] == "2547*****111"


def test_a_prompt_through_the_api_for_a_member_is_audited_and_ones_own_is_not(
    daraja, finance_client, finance, crew, client
):
    body = json.dumps({"user_id": crew.pk, "amount": 150})
    response = finance_client.post(
        "/api/mpesa/request-payment/", body, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert rows(AuditEvent.PROMPT_REQUESTED).get().actor == finance
    finance_client.logout()
    client.force_login(crew)
    own = client.post(
        "/api/mpesa/request-payment/",
        json.dumps({"amount": 100, "phone": "0712999888"}),
        content_type="application/json",
    )
    assert own.status_code == 201, own.content
    assert rows(AuditEvent.PROMPT_REQUESTED).count() == 1


def test_bulk_prompts_are_one_row_for_the_whole_request(
    daraja, finance_client, finance, django_capture_on_commit_callbacks
):
    members = [UserFactory(profile__phone_number=f"071200033{n}") for n in range(3)]
    job, _ = run_action(
        finance_client,
        "/admin/attendance/profile/",
        {
            "action": "request_mpesa_payment",
            "_selected_action": [m.profile.pk for m in members],
            "apply": "1",
            "amount": "200",
            "purpose": "Crew shirts",
        },
        capture=django_capture_on_commit_callbacks,
    )
    assert MpesaPayment.objects.count() == 3
    entry = rows(AuditEvent.PROMPTS_REQUESTED).get()
    assert (entry.actor, entry.object_id) == (finance, job.pk)
    assert (
        entry.additional_data["amount"] == 200 and entry.additional_data["purpose"] == "Crew shirts"
    )
    assert sorted(entry.additional_data["ids"]) == sorted(m.profile.pk for m in members)
    assert not rows(AuditEvent.PROMPT_REQUESTED).exists()


def test_crediting_after_review_is_audited_with_the_balance_before_and_after(
    finance_client, finance
):
    member = UserFactory()
    ledger_post(user=member, kind="charge", amount=100, description="Shirt")
    payment = PaymentFactory(
        user=member, status="completed", receipt_number="TKR1", needs_review=True, paid_amount=90
    )
    finance_client.post(
        "/admin/attendance/mpesapayment/",
        {"action": "credit_after_review", "_selected_action": [payment.pk]},
    )
    entry = rows(AuditEvent.PAYMENT_CREDITED).get()
    assert entry.actor == finance and entry.object_id == payment.pk
    assert entry.changes_dict["balance"] == ["100.00", "10.00"]


def test_a_ledger_entry_added_by_hand_is_audited(finance_client, finance, crew):
    response = finance_client.post(
        "/admin/attendance/ledgerentry/add/",
        {"user": crew.pk, "kind": "charge", "amount": "750", "description": "Broken XLR"},
    )
    assert response.status_code == 302
    entry = rows(AuditEvent.LEDGER_ENTRY_ADDED).get()
    assert entry.actor == finance
    assert entry.changes_dict["balance"] == ["0.00", "750.00"]
    assert entry.additional_data["description"] == "Broken XLR"


def test_exporting_payments_is_audited_as_personal_data(
    finance_client, finance, django_capture_on_commit_callbacks
):
    payments = [PaymentFactory(phone_number=f"25471100000{n}") for n in range(2)]
    run_action(
        finance_client,
        "/admin/attendance/mpesapayment/",
        {"action": "export_csv", "_selected_action": [p.pk for p in payments]},
        capture=django_capture_on_commit_callbacks,
    )
    entry = rows(AuditEvent.PERSONAL_DATA_EXPORTED).get()
    assert entry.actor == finance and entry.changes_dict["rows"] == ["None", "2"]


def test_access_changes_in_admin_are_audited_with_the_actor(admin_client, admin_user):
    clerk = UserFactory(username="clerk")
    finance_group = Group.objects.get(name="Finance")
    last = LogEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = admin_client.post(
        f"/admin/auth/user/{clerk.pk}/change/",
        {
            "username": "clerk",
            "first_name": clerk.first_name,
            "last_name": clerk.last_name,
            "email": clerk.email,
            "is_active": "on",
            "is_staff": "on",
            "groups": [finance_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "09:00:00",
            "profile-TOTAL_FORMS": "1",
            "profile-INITIAL_FORMS": "1",
            "profile-0-id": clerk.profile.pk,
            "profile-0-user": clerk.pk,
            "profile-0-phone_number": "",
            "profile-0-department": "",
            "profile-0-skills": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    new = list(rows(AuditEvent.ACCESS_CHANGED).filter(pk__gt=last))
    assert len(new) == 2 and {e.object_id for e in new} == {clerk.pk}  # the flag, the group
    assert {e.actor for e in new} == {admin_user}
    changes = [e.changes_dict for e in new]
    assert {"is_staff": ["False", "True"]} in changes
    assert any(c.get("groups", {}).get("objects") == ["Finance"] for c in changes)

    perm = Permission.objects.get(codename="delete_event")
    finance_group.permissions.add(perm)
    entry = rows(AuditEvent.ACCESS_CHANGED).filter(object_id=finance_group.pk).latest("pk")
    assert entry.changes_dict["permissions"]["operation"] == "add"


def test_the_trail_is_shown_in_admin_and_cannot_be_changed_there(admin_client, finance):
    from attendance.services.people.two_factor import two_factor_reset

    two_factor_reset(finance, by=None)
    entry = rows(AuditEvent.TWO_FACTOR_RESET).get()
    listing = admin_client.get("/admin/auditlog/logentry/?event=two_factor_reset")
    page = listing.content.decode()
    assert listing.status_code == 200 and "Two-factor login reset" in page
    assert 'name="action"' not in page  # no bulk delete
    url = f"/admin/auditlog/logentry/{entry.pk}/"
    assert admin_client.get(f"{url}change/").status_code == 200  # read-only view
    assert admin_client.post(f"{url}change/", {"object_repr": "x"}).status_code == 403
    assert admin_client.post(f"{url}delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/auditlog/logentry/add/").status_code == 403
    entry.refresh_from_db()
    assert entry.object_repr == str(finance)


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_to_change_or_delete_a_row_but_lets_a_user_go(finance):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger is PostgreSQL's; CI runs this on PostgreSQL")
    from attendance.services.people.two_factor import two_factor_reset

    boss = UserFactory(is_staff=True, is_superuser=True, email="boss@example.com")
    two_factor_reset(finance, by=boss)
    entry = rows(AuditEvent.TWO_FACTOR_RESET).get()
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).update(object_repr="nothing happened")
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    boss.delete()  # the foreign key's SET NULL is the one change allowed
    entry.refresh_from_db()
    assert entry.actor_id is None and entry.actor_email == "boss@example.com"
