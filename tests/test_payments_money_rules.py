"""One set of money rules: how a balance with cents becomes a prompt, and the limits, the same
in the portal, the admin and the API."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from attendance.models import MpesaPayment
from attendance.services.ledger import ledger_post
from attendance.services.payments.amounts import PROMPT_MAXIMUM, PROMPT_MINIMUM
from tests.support.auth import log_in_staff
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db


def _owing(amount: str, phone: str):
    member = UserFactory(profile__phone_number=phone)
    ledger_post(user=member, kind="charge", amount=Decimal(amount), description="Lost cable")
    return member


def test_a_balance_with_cents_becomes_the_same_prompt_in_portal_admin_and_api(
    daraja, client, django_capture_on_commit_callbacks
):
    portal_member = _owing("100.50", "0711000101")
    client.force_login(portal_member)
    page = client.get("/").content.decode()
    assert 'id="pay-amount"' in page and 'value="101"' in page  # what the portal offers

    api_member = _owing("100.50", "0711000102")
    client.force_login(api_member)
    answer = client.post("/api/mpesa/request-payment/", {}, content_type="application/json")
    assert answer.status_code == 201, answer.content  # no amount given: the balance
    assert MpesaPayment.objects.get(user=api_member).amount == 101

    admin_member = _owing("100.50", "0711000103")
    finance = UserFactory(is_staff=True)
    finance.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_profile", "change_profile", "request_mpesapayment"]
        )
    )
    log_in_staff(client, finance)
    with django_capture_on_commit_callbacks(execute=True):  # the job runs after commit
        client.post(
            "/admin/attendance/profile/",
            {
                "action": "request_mpesa_payment",
                "_selected_action": [admin_member.profile.pk],
                "apply": "1",
                "amount": "",
                "purpose": "Balance payment",
            },
        )
    assert MpesaPayment.objects.get(user=admin_member).amount == 101


def test_the_limit_the_portal_shows_is_the_one_enforced_everywhere(daraja, client):
    member = _owing("300000", "0711000104")
    client.force_login(member)
    page = client.get("/").content.decode()
    shown = re.search(r'id="pay-amount"[^>]*\bmax="(\d+)"', page)
    assert shown and int(shown.group(1)) == PROMPT_MAXIMUM
    assert re.search(r'id="pay-amount"[^>]*\bmin="(\d+)"', page).group(1) == str(PROMPT_MINIMUM)
    assert f'value="{PROMPT_MAXIMUM}"' in page  # a larger debt is asked for in pieces

    over = client.post(
        "/api/mpesa/request-payment/",
        {"amount": PROMPT_MAXIMUM + 1},
        content_type="application/json",
    )
    assert over.status_code == 400
    assert f"KES {PROMPT_MAXIMUM:,}" in over.json()["error"]["message"]
    at_limit = client.post(
        "/api/mpesa/request-payment/", {"amount": PROMPT_MAXIMUM}, content_type="application/json"
    )
    assert at_limit.status_code == 201

    from attendance.admin.payments import RequestPaymentForm

    form = RequestPaymentForm({"amount": PROMPT_MAXIMUM + 1, "purpose": "x"})
    assert not form.is_valid() and "amount" in form.errors
