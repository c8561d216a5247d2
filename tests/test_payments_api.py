import json

import pytest
import requests
from django.test import Client

from attendance.models import MpesaPayment
from tests.support.auth import log_in_staff
from tests.support.factories import UserFactory
from tests.support.smtp import free_port

Status = MpesaPayment.Status


def _post(client, body, **headers):
    return client.post(
        "/api/mpesa/request-payment/",
        json.dumps(body),
        content_type="application/json",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    )


def _pushes(daraja):
    return requests.get(f"{daraja.url}/simulator/stats", timeout=5).json()["stk_push"]


def test_a_member_pays_their_own_balance_with_their_profile_phone(daraja, crew_client, crew):
    response = _post(crew_client, {"amount": 1500, "purpose": "Balance payment"})
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["success"] is True
    payment = MpesaPayment.objects.get(pk=data["payment_id"])
    assert payment.checkout_request_id == data["checkout_request_id"]
    assert payment.status == Status.PENDING
    assert payment.user == crew and payment.requested_by == crew
    assert payment.phone_number == crew.profile.phone_number
    # The prompt names the member's account, as a Paybill payment does.
    assert payment.account_reference == crew.profile.account_code
    assert len(payment.transaction_desc) <= 13


def test_idempotency_key_replays_the_first_answer_without_a_second_prompt(daraja, crew_client):
    first = _post(crew_client, {"amount": 200, "purpose": "Cable"}, **{"Idempotency-Key": "k-1"})
    again = _post(crew_client, {"amount": 200, "purpose": "Cable"}, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["payment_id"] == first.json()["payment_id"]
    assert again.json()["replayed"] is True
    assert _pushes(daraja) == 1
    different = _post(
        crew_client, {"amount": 300, "purpose": "Cable"}, **{"Idempotency-Key": "k-1"}
    )
    assert different.status_code == 422
    assert different.json()["error"]["code"] == "idempotency_conflict"


def test_no_second_prompt_while_one_is_pending_for_the_phone(daraja, crew_client):
    assert _post(crew_client, {"amount": 100}).status_code == 201
    second = _post(crew_client, {"amount": 100})
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "prompt_pending"
    assert "2547*****678" in second.json()["error"]["message"]
    assert _pushes(daraja) == 1


def test_staff_collect_from_a_member_with_the_members_phone(daraja, staff_client, crew):
    response = _post(staff_client, {"amount": 750, "purpose": "Lost mic", "user_id": crew.pk})
    assert response.status_code == 201
    payment = MpesaPayment.objects.get()
    assert payment.user == crew
    assert payment.phone_number == "254712345678"


def test_crew_cannot_collect_from_someone_else(daraja, crew_client, other_crew):
    response = _post(crew_client, {"amount": 750, "user_id": other_crew.pk})
    assert response.status_code == 403
    assert not MpesaPayment.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 10.5}, "invalid_amount"),
        ({"amount": 0}, "invalid_amount"),
        ({"amount": 250001}, "invalid_amount"),
        ({}, "nothing_owed"),  # no amount: the balance, and nothing is owed
        ({"amount": "abc"}, "invalid_amount"),
        ({"amount": 10, "phone": "0812 345 678"}, "invalid_phone"),
    ],
)
def test_bad_input_is_a_400_with_a_reason_and_no_prompt(daraja, crew_client, body, code):
    response = _post(crew_client, body)
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": {"code": code, "message": response.json()["error"]["message"]},
    }
    assert _pushes(daraja) == 0


def test_invalid_json_is_a_400(crew_client):
    response = crew_client.post(
        "/api/mpesa/request-payment/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_login_and_csrf_are_required(daraja, crew):
    anonymous = _post(Client(), {"amount": 10})
    assert anonymous.status_code == 401
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(crew)
    assert _post(strict, {"amount": 10}).status_code == 403
    assert not MpesaPayment.objects.exists()


def test_get_is_not_allowed(crew_client):
    assert crew_client.get("/api/mpesa/request-payment/").status_code == 405


def test_daraja_unreachable_is_a_503_saying_nothing_was_sent_and_the_payment_is_kept_as_failed(
    crew_client, settings
):
    from attendance import mpesa

    settings.MPESA_BASE_URL = f"http://127.0.0.1:{free_port()}"
    mpesa._clients.clear()
    response = _post(crew_client, {"amount": 100})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "mpesa_unavailable"
    assert "nothing was sent to the phone" in response.json()["error"]["message"]
    payment = MpesaPayment.objects.get(pk=response.json()["payment_id"])
    assert payment.status == Status.FAILED
    assert "could not be reached" in payment.result_description
    mpesa._clients.clear()


def test_daraja_answering_500_is_a_502_with_its_reason(daraja, crew_client):
    response = _post(crew_client, {"amount": 100, "phone": "0711115000"})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "daraja_error"
    payment = MpesaPayment.objects.get()
    assert payment.status == Status.FAILED
    assert payment.result_code == "push_refused"
    assert payment.result_description.startswith("500.003.1001: ")


def test_daraja_too_slow_is_a_502_timeout(daraja, crew_client, settings):
    settings.MPESA_READ_TIMEOUT = 0.5
    response = _post(crew_client, {"amount": 100, "phone": "0711115040"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "daraja_no_answer"
    assert "did not answer in time. If a prompt still reaches the phone" in error["message"]
    assert response.json()["payment_id"] == MpesaPayment.objects.get().pk
    assert MpesaPayment.objects.get().result_code == "push_unanswered"


def test_a_failed_payment_frees_the_phone_for_a_new_prompt(daraja, crew_client):
    assert _post(crew_client, {"amount": 100, "phone": "0711115000"}).status_code == 502
    assert _post(crew_client, {"amount": 100, "phone": "0711115000"}).status_code == 502
    assert MpesaPayment.objects.count() == 2


def test_payment_status_for_the_payer_and_staff_only(daraja, client, crew, other_crew, staff):
    client.force_login(crew)
    payment_id = _post(client, {"amount": 100}).json()["payment_id"]
    own = client.get(f"/api/mpesa/payment-status/?payment_id={payment_id}")
    assert own.status_code == 200
    assert own.json()["status"] == "pending"
    assert own.json()["amount"] == "100.00"
    assert set(own.json()) >= {"status", "amount", "receipt_number", "completed_at"}
    client.force_login(other_crew)
    other = client.get(f"/api/mpesa/payment-status/?payment_id={payment_id}")
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "not_found"
    log_in_staff(client, staff)
    assert client.get(f"/api/mpesa/payment-status/?payment_id={payment_id}").status_code == 200
    assert client.get("/api/mpesa/payment-status/?payment_id=x").status_code == 400


def test_member_without_a_phone_gets_a_clear_message(daraja, client, db):
    member = UserFactory()
    client.force_login(member)
    response = _post(client, {"amount": 100})
    assert response.status_code == 400
    assert "profile has none" in response.json()["error"]["message"]


def test_every_api_failure_is_answered_in_json(crew_client, monkeypatch):
    def errors(response):
        assert response["Content-Type"] == "application/json", response.content[:200]
        return response.status_code, response.json()["error"]["code"]

    anonymous = Client().post("/api/mpesa/request-payment/", {})
    assert errors(anonymous) == (401, "not_authenticated")
    assert errors(crew_client.get("/api/mpesa/request-payment/")) == (405, "method_not_allowed")
    assert errors(crew_client.get("/api/no-such-thing/")) == (404, "not_found")

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(UserFactory())
    refused = strict.post(
        "/api/mpesa/request-payment/", {"amount": 1}, content_type="application/json"
    )
    assert errors(refused) == (403, "csrf_failed")

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("attendance.views.api.payment_request_stk_push", broken)
    failed = _post(crew_client, {"amount": 100})
    assert errors(failed) == (500, "server_error")
    assert "nothing was charged" in failed.json()["error"]["message"]
