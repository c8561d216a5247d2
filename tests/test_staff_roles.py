"""Staff roles: what migrate creates, and money actions only for staff allowed to move money."""

import json

import pytest
from django.contrib.auth.models import Group, Permission

from attendance.models import MpesaPayment
from attendance.services.people.roles import roles_ensure
from tests.support.auth import log_in_staff, staff_in
from tests.support.factories import PaymentFactory, UserFactory


@pytest.fixture
def manager(db):
    return staff_in("Event managers")


@pytest.fixture
def finance(db):
    return staff_in("Finance")


@pytest.fixture
def review_payment(db):
    return PaymentFactory(
        status="completed",
        receipt_number="TKR0000001",
        needs_review=True,
        review_reason="paid KES 90, requested KES 100",
        paid_amount=90,
    )


def _credit(client, payment):
    return client.post(
        "/admin/attendance/mpesapayment/",
        {"action": "credit_after_review", "_selected_action": [payment.pk]},
    )


def test_migrate_creates_the_two_roles_with_their_permissions(db):
    managers = set(
        Group.objects.get(name="Event managers").permissions.values_list("codename", flat=True)
    )
    finance = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    assert {"change_event", "add_eventcrew", "change_attendance", "view_profile"} <= managers
    assert "view_user" in managers and "view_user" in finance  # the admin's member pickers
    assert not {"delete_event", "delete_attendance"} & managers  # hours history stays
    assert not {p for p in managers if p.endswith(("mpesapayment", "ledgerentry"))}
    assert {"request_mpesapayment", "review_mpesapayment", "add_ledgerentry"} <= finance
    assert {"view_paybillpayment", "assign_paybillpayment", "view_paybillnotice"} <= finance
    assert "change_event" not in finance


def test_a_role_edited_by_admins_is_left_alone_by_the_next_migrate(db):
    group = Group.objects.get(name="Finance")
    group.permissions.clear()
    roles_ensure()
    assert group.permissions.count() == 0


def test_an_event_manager_works_on_events_and_has_no_payment_pages(client, manager, crew):
    log_in_staff(client, manager)
    assert client.get("/admin/attendance/event/").status_code == 200
    assert client.get("/admin/attendance/eventcrew/").status_code == 200
    # The member picker when assigning crew.
    picker = client.get(
        "/admin/autocomplete/",
        {
            "term": crew.username,
            "app_label": "attendance",
            "model_name": "eventcrew",
            "field_name": "user",
        },
    )
    assert picker.status_code == 200
    assert [r["id"] for r in picker.json()["results"]] == [str(crew.pk)]
    assert client.get("/admin/attendance/mpesapayment/").status_code == 403


def test_staff_who_may_only_view_payments_cannot_move_money(client, review_payment, crew):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_mpesapayment", "view_profile"])
    )
    log_in_staff(client, viewer)
    listing = client.get("/admin/attendance/mpesapayment/").content.decode()
    assert "credit_after_review" not in listing and "Resend STK push" not in listing

    _credit(client, review_payment)
    review_payment.refresh_from_db()
    assert review_payment.needs_review and review_payment.ledger_entry_id is None

    failed = PaymentFactory(status="failed", phone_number="254722000001")
    assert client.get(f"/admin/attendance/mpesapayment/{failed.pk}/resend/").status_code == 403
    assert client.post(f"/admin/attendance/mpesapayment/{failed.pk}/resend/").status_code == 403
    assert MpesaPayment.objects.count() == 2  # no new prompt

    assert "request_mpesa_payment" not in client.get("/admin/attendance/profile/").content.decode()
    response = client.post(
        "/api/mpesa/request-payment/",
        data=json.dumps({"amount": 100, "user_id": crew.pk}),
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_finance_credits_a_reviewed_payment(client, finance, review_payment):
    log_in_staff(client, finance)
    listing = client.get("/admin/attendance/mpesapayment/").content.decode()
    assert "credit_after_review" in listing
    assert "request_mpesa_payment" in client.get("/admin/attendance/profile/").content.decode()
    _credit(client, review_payment)
    review_payment.refresh_from_db()
    assert not review_payment.needs_review
    assert review_payment.ledger_entry.amount == -90
