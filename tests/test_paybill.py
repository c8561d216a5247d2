"""Paybill payments from the SIM menu (C2B): reading them, whose money it is, crediting it
exactly once per receipt, the validation answer, and forged or hostile requests."""

import hashlib
import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse

from attendance.models import LedgerEntry, MpesaPayment, PaybillNotice, PaybillPayment
from attendance.mpesa.client import DarajaValidationError
from attendance.mpesa.paybill import (
    MalformedPaybill,
    check_registered_url,
    parse_paybill_body,
    parse_pull_row,
    pull_rows,
)
from attendance.services.payments import callback_receive
from attendance.services.payments.paybill import (
    PaybillError,
    paybill_assign,
    paybill_find_member,
    paybill_not_ours,
)
from attendance.services.payments.paybill_inbox import paybill_notices
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.mpesa_wire import paybill_body, success_callback

P = PaybillPayment.Status
# Committed for real: the inbox processes a stored body after its commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


def confirm(client, body, *, token=None):
    url = reverse(
        "attendance:api_paybill", args=["confirmation", token or settings.MPESA_C2B_TOKEN]
    )
    return client.post(url, data=body, content_type="application/json")


def validate(client, body):
    url = reverse("attendance:api_paybill", args=["validation", settings.MPESA_C2B_TOKEN])
    return client.post(url, data=body, content_type="application/json")


# --- The wire ------------------------------------------------------------------------------


def test_confirmation_amounts_are_decimals_and_the_msisdn_is_never_a_phone():
    txn = parse_paybill_body(paybill_body("RKL51ZDR4F", amount="5.00", account=" #sf123 "))
    assert txn.amount == Decimal("5.00") and isinstance(txn.amount, Decimal)
    assert txn.msisdn == "2547 ***** 126" and txn.msisdn_digest == ""
    assert txn.bill_ref == "#sf123"
    assert txn.paid_at.isoformat() == "2026-12-05T12:13:25+03:00"
    digest = hashlib.sha256(b"254712345678").hexdigest()
    assert parse_paybill_body(paybill_body("RKL51ZDR4G", msisdn=digest.upper())).msisdn_digest == (
        digest
    )


@pytest.mark.parametrize(
    "change",
    [
        {"TransID": ""},
        {"TransID": "NOT A RECEIPT"},
        {"TransAmount": "abc"},
        {"TransAmount": "-5"},
        {"TransAmount": "0"},
        {"TransAmount": "1.001"},
        {"TransAmount": "NaN"},
        {"TransAmount": [1]},
        {"TransAmount": True},
    ],
)
def test_a_body_that_is_not_a_payment_is_refused_with_the_reason(change):
    body = json.loads(paybill_body("RKL51ZDR4F"))
    body.update(change)
    with pytest.raises(MalformedPaybill):
        parse_paybill_body(json.dumps(body))


def test_pull_answers_are_read_whatever_their_nesting():
    row = {"transactionId": "yzlyrEsRG1", "trxDate": "2020-08-05T10:13:00Z", "amount": 168}
    assert pull_rows({"ResponseCode": "1000", "Response": [[row]]}) == [row]
    assert pull_rows({"ResponseCode": "1000", "Transaction": [row, [row]]}) == [row, row]
    assert pull_rows({"ResponseCode": "1001", "Response": [[row]]}) == []
    assert pull_rows({"ResponseCode": "1001", "Transaction": "[[]]"}) == []
    txn = parse_pull_row({**row, "msisdn": 72200000, "billreference": "SF 123"})
    assert txn.amount == Decimal("168") and txn.msisdn == "72200000"
    assert txn.paid_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "url", ["https://x.example/mpesa/c", "https://x.example/Query/c", "ftp://x", "https://a b"]
)
def test_urls_daraja_refuses_are_refused_before_sending(url):
    with pytest.raises(DarajaValidationError):
        check_registered_url("ConfirmationURL", url)


# --- Attribution and crediting -------------------------------------------------------------


def test_a_confirmation_credits_the_member_its_account_code_names_once(client, crew):
    code = crew.profile.account_code
    typed = f" #{code[:4].lower()} {code[4:]} "
    body = paybill_body("SKA1B2C3D4", amount="750.00", account=typed)

    first, second = confirm(client, body), confirm(client, body)

    assert first.status_code == second.status_code == 200
    assert first.json() == {"ResultCode": 0, "ResultDesc": "Success"}
    payment = PaybillPayment.objects.get()
    assert (payment.status, payment.user, payment.attributed_by) == (P.CREDITED, crew, "code")
    assert payment.ledger_entry.receipt == "SKA1B2C3D4"
    assert LedgerEntry.objects.filter(user=crew, kind="payment").count() == 1
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("-750.00")
    statuses = sorted(PaybillNotice.objects.values_list("status", flat=True))
    assert statuses == ["duplicate", "processed"]
    # The member is told, as after a prompt.
    assert crew.notifications.filter(notification_type="payment_confirmation").exists()


def test_a_v1_body_is_attributed_by_the_hash_of_the_members_number(client, crew):
    digest = hashlib.sha256(crew.profile.phone_number.encode()).hexdigest()
    confirm(client, paybill_body("SKA1B2C3D5", account="wrong", msisdn=digest))
    payment = PaybillPayment.objects.get()
    assert (payment.status, payment.user, payment.attributed_by) == (P.CREDITED, crew, "hash")


def test_a_masked_number_or_a_name_never_credits_anyone(client, crew):
    confirm(client, paybill_body("SKA1B2C3D6", account="", first_name=crew.first_name.upper()))
    payment = PaybillPayment.objects.get()
    assert payment.status == P.UNATTRIBUTED and payment.user is None
    assert payment.detail == "No account number was given."
    assert not LedgerEntry.objects.exists()


def test_an_unknown_code_waits_for_finance_who_assigns_it_once_audited(client, crew, staff):
    confirm(client, paybill_body("SKA1B2C3D7", amount="300", account="SF0000000"))
    payment = PaybillPayment.objects.get()
    assert payment.status == P.UNATTRIBUTED
    assert "belongs to no member" in payment.detail or "not a member's" in payment.detail

    assert paybill_find_member(crew.profile.account_code.lower()) == crew
    assert paybill_find_member("0712 345 678") == crew
    paybill_assign(payment=payment, member=crew, by=staff)
    with pytest.raises(PaybillError, match="only unattributed"):
        paybill_assign(payment=payment, member=crew, by=staff)

    payment.refresh_from_db()
    assert (payment.status, payment.attributed_by, payment.assigned_by) == (
        P.CREDITED,
        "staff",
        staff,
    )
    assert LedgerEntry.objects.get(user=crew).amount == Decimal("-300.00")
    from auditlog.models import LogEntry

    entry = LogEntry.objects.get(additional_data__event="paybill_assigned")
    assert entry.actor == staff and entry.additional_data["receipt"] == "SKA1B2C3D7"


def test_not_ours_needs_a_reason_and_credits_nobody(client, staff):
    confirm(client, paybill_body("SKA1B2C3D8", account="ACC-9981"))
    payment = PaybillPayment.objects.get()
    with pytest.raises(PaybillError, match="Say why"):
        paybill_not_ours(payment=payment, by=staff, reason=" ")
    paybill_not_ours(payment=payment, by=staff, reason="Paid to our Paybill by mistake")
    payment.refresh_from_db()
    assert payment.status == P.NOT_OURS and not LedgerEntry.objects.exists()


# --- The same money as a prompt ------------------------------------------------------------


def _now():
    from django.utils import timezone

    return timezone.localtime().strftime("%Y%m%d%H%M%S")


def _paid_prompt(client, user, receipt, amount=400):
    payment = PaymentFactory(user=user, amount=amount, phone_number=user.profile.phone_number)
    callback_receive(
        body=success_callback(
            payment.checkout_request_id,
            amount=amount,
            receipt=receipt,
            phone=int(user.profile.phone_number),
        ).encode(),
        remote_addr=None,
    )
    payment.refresh_from_db()
    return payment


def test_a_receipt_a_prompt_credited_is_never_credited_again(client, crew):
    prompt = _paid_prompt(client, crew, "SKB0000001")
    assert prompt.status == MpesaPayment.Status.COMPLETED and prompt.ledger_entry_id

    confirm(client, paybill_body("SKB0000001", amount="400.00", account=crew.profile.account_code))

    payment = PaybillPayment.objects.get()
    assert payment.status == P.STK and payment.stk_payment == prompt
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_a_paybill_credit_first_then_the_prompts_callback_credits_once(client, crew):
    prompt = PaymentFactory(user=crew, amount=400, phone_number=crew.profile.phone_number)
    # Seen first as a Paybill confirmation; the prompt is still open, so it waits.
    confirm(
        client,
        paybill_body("SKB0000002", amount="400", account=crew.profile.account_code, when=_now()),
    )
    assert PaybillPayment.objects.get().status == P.WAITING_STK, PaybillPayment.objects.get().detail
    assert PaybillNotice.objects.get().status == "waiting"

    callback_receive(
        body=success_callback(
            prompt.checkout_request_id, amount=400, receipt="SKB0000002", phone=254712345678
        ).encode(),
        remote_addr=None,
    )
    # The notice's next look finds the prompt paid with this receipt.
    paybill_notices.process(PaybillNotice.objects.get().pk)
    payment = PaybillPayment.objects.get()
    assert payment.status == P.STK and payment.stk_payment == prompt
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_a_prompt_settled_by_query_takes_the_paybill_receipt_and_is_credited_once(client, crew):
    from attendance.mpesa.callbacks import StkResult
    from attendance.services.payments import payment_apply_result

    prompt = PaymentFactory(user=crew, amount=400, phone_number=crew.profile.phone_number)
    query = StkResult(prompt.merchant_request_id, prompt.checkout_request_id, "0", "Paid")
    payment_apply_result(result=query, via="query")
    prompt.refresh_from_db()
    assert prompt.ledger_entry_id and prompt.receipt_number == ""

    confirm(
        client,
        paybill_body("SKB0000003", amount="400", account=crew.profile.account_code, when=_now()),
    )

    prompt.refresh_from_db()
    assert prompt.receipt_number == "SKB0000003"
    assert prompt.ledger_entry.receipt == "SKB0000003"
    assert PaybillPayment.objects.get().status == P.STK
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


def test_a_paybill_credit_then_a_prompt_settled_by_query_is_credited_once(client, crew):
    from attendance.mpesa.callbacks import StkResult
    from attendance.services.payments import payment_apply_result

    # The prompt exists, but was already failed as unanswered; the payment was credited
    # as a Paybill payment; then a late query says the prompt was paid.
    prompt = PaymentFactory(
        user=crew, amount=400, phone_number=crew.profile.phone_number, status="failed"
    )
    confirm(
        client,
        paybill_body("SKB0000004", amount="400", account=crew.profile.account_code, when=_now()),
    )
    assert PaybillPayment.objects.get().status == P.CREDITED

    query = StkResult(prompt.merchant_request_id, prompt.checkout_request_id, "0", "Paid")
    payment_apply_result(result=query, via="query")

    prompt.refresh_from_db()
    assert prompt.status == MpesaPayment.Status.COMPLETED
    assert prompt.ledger_entry_id is None and prompt.receipt_number == "SKB0000004"
    assert PaybillPayment.objects.get().stk_payment == prompt
    assert LedgerEntry.objects.filter(kind="payment").count() == 1


# --- Validation ----------------------------------------------------------------------------


def test_validation_accepts_a_members_code_and_keeps_the_body(client, crew):
    response = validate(client, paybill_body("SKC0000001", account=crew.profile.account_code))
    assert response.json() == {"ResultCode": "0", "ResultDesc": "Accepted"}
    notice = PaybillNotice.objects.get()
    assert notice.kind == "validation" and notice.status == "noted"
    assert notice.detail.startswith("Accepted: account")
    assert not PaybillPayment.objects.exists()  # a validation is not a payment


def test_an_unknown_account_is_rejected_only_when_the_setting_says_so(client, settings):
    body = paybill_body("SKC0000002", account="HELLO")
    assert validate(client, body).json()["ResultCode"] == "0"
    settings.MPESA_C2B_REJECT_UNKNOWN = True
    assert validate(client, body).json() == {"ResultCode": "C2B00012", "ResultDesc": "Rejected"}
    assert PaybillNotice.objects.count() == 2


# --- Forged and hostile --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["confirmation", "validation", "pull", "result"])
def test_a_wrong_token_or_kind_is_a_404_with_nothing_stored(client, kind):
    url = reverse("attendance:api_paybill", args=[kind, "wrong-token"])
    assert client.post(url, data="{}", content_type="application/json").status_code == 404
    if kind not in ("confirmation", "validation"):
        url = reverse("attendance:api_paybill", args=[kind, settings.MPESA_C2B_TOKEN])
        assert client.post(url, data="{}", content_type="application/json").status_code == 404
    assert not PaybillNotice.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"TransID": "X"}',
        b'{"TransID": {"a": 1}, "TransAmount": "5"}',
        b'{"TransID": "SKD0000001", "TransAmount": "1e999999"}',
        "\x00\u202e".encode(),
        b"\xff\xfe",
        b"[" * 5000,
    ],
)
def test_hostile_bodies_are_stored_raw_and_never_a_5xx(client, body):
    response = confirm(client, body)
    assert response.status_code == 400
    notice = PaybillNotice.objects.get()
    assert notice.status == "malformed" and notice.body_bytes == body
    assert not PaybillPayment.objects.exists()
    response = validate(client, body)
    assert response.status_code == 200  # only a confirmation credits: say yes, as M-Pesa would


def test_get_is_refused_and_a_second_assign_of_a_credited_receipt_fails(client, crew, staff):
    url = reverse("attendance:api_paybill", args=["confirmation", settings.MPESA_C2B_TOKEN])
    assert client.get(url).status_code == 405
    other = UserFactory()
    confirm(client, paybill_body("SKE0000001", account=crew.profile.account_code))
    with pytest.raises(PaybillError):
        paybill_assign(payment=PaybillPayment.objects.get(), member=other, by=staff)


# --- The screens ---------------------------------------------------------------------------


def test_the_portal_says_how_to_pay_by_paybill_only_where_it_is_offered(client, crew, settings):
    from attendance.services.ledger import ledger_post

    ledger_post(user=crew, kind="charge", amount=900, description="Transport advance")
    client.force_login(crew)
    settings.MPESA_C2B_SHORT_CODE = ""
    assert "Pay by Paybill" not in client.get("/").content.decode()
    settings.MPESA_C2B_SHORT_CODE = "174379"
    line = f"Pay by Paybill 174379, account {crew.profile.account_code}"
    assert line in client.get("/").content.decode()
    assert line in client.get("/balance/").content.decode()


def test_finance_assigns_from_the_admin_page_others_are_refused(client, crew, staff):
    from django.contrib.auth.models import Permission

    from tests.support.auth import log_in_staff

    confirm(client, paybill_body("SKG0000001", amount="450", account="my phone"))
    payment = PaybillPayment.objects.get()
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_paybillpayment"))
    log_in_staff(client, viewer)
    page = client.get(f"/admin/attendance/paybillpayment/{payment.pk}/change/").content.decode()
    assert "paybill-assign-link" not in page
    assert client.get(f"/admin/attendance/paybillpayment/{payment.pk}/assign/").status_code == 403

    log_in_staff(client, staff)
    listing = client.get("/admin/attendance/paybillpayment/", {"status__exact": "unattributed"})
    assert "SKG0000001" in listing.content.decode()
    page = client.get(f"/admin/attendance/paybillpayment/{payment.pk}/change/").content.decode()
    assert "paybill-assign-link" in page and "paybill-not-ours-link" in page
    url = f"/admin/attendance/paybillpayment/{payment.pk}/assign/"
    wrong = client.post(url, {"member": "SF0000000"})
    assert "No member has the account code" in wrong.content.decode()
    done = client.post(url, {"member": crew.profile.account_code.lower()})
    assert done.status_code == 302
    # Back to the form (or a second tab): nothing left to decide, nothing credited twice.
    again = client.post(url, {"member": crew.profile.account_code}, follow=True)
    assert "is credited: nothing to decide" in again.content.decode()
    assert LedgerEntry.objects.get(user=crew).receipt == "SKG0000001"


def test_a_phone_number_typed_as_the_account_is_a_hint_for_finance_never_a_credit(client, crew):
    confirm(client, paybill_body("SKH0000001", account="0712-345-678"))
    payment = PaybillPayment.objects.get()
    assert payment.status == P.UNATTRIBUTED and not LedgerEntry.objects.exists()
    assert "is a phone number" in payment.detail and "Assign it to them" in payment.detail


def test_a_payslip_that_leaves_the_member_owing_says_how_to_pay_by_paybill(crew, settings):
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    settings.MPESA_C2B_SHORT_CODE = "174379"
    member = SimpleNamespace(
        user=crew, earned=1000, deducted=1000, to_pay=0, balance_after=Decimal(400)
    )
    context = {"slip": SimpleNamespace(member=member, lines=[]), "run": "Week 49"}
    words = f"Pay by Paybill 174379, account {crew.profile.account_code}"
    assert words in render_to_string("attendance/emails/payslip.txt", context)
    assert words in render_to_string("attendance/emails/payslip.html", context)
    member.balance_after = Decimal(-50)  # owed to them: nothing to pay
    assert "Paybill" not in render_to_string("attendance/emails/payslip.txt", context)
