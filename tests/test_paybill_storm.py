"""Paybill payments end to end on PostgreSQL, over real HTTP: the local Daraja simulator pays
from the SIM menu and answers Pull Transactions; the app is a live server."""

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
import requests
from django.conf import settings
from django.db.models import Count, Sum

from attendance.models import LedgerEntry, MpesaPayment, PaybillNotice, PaybillPayment, Profile
from attendance.mpesa.simulator_c2b import NAIROBI, Payment
from attendance.services.payments import payment_request_stk_push, payments_reconcile
from attendance.services.payments.paybill_pull import paybill_pull
from attendance.services.payments.paybill_registration import (
    paybill_register_pull,
    paybill_register_urls,
)
from tests.support.factories import UserFactory
from tests.support.mpesa_wire import post_body
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
P = PaybillPayment.Status


@pytest.fixture
def paybill(daraja, live_server, settings):
    """The simulator's Paybill registered to the live server, Pull on."""
    settings.MPESA_C2B_SHORT_CODE = settings.MPESA_BUSINESS_SHORT_CODE
    settings.MPESA_C2B_URL = f"{live_server.url}/api/paybill"
    settings.MPESA_CALLBACK_URL = f"{live_server.url}/api/payments/callback"
    settings.MPESA_PULL_ENABLED = True
    settings.MPESA_PULL_NOMINATED_NUMBER = "0722000000"
    assert "Registered Paybill 174379 (v2)" in paybill_register_urls()
    assert "Registered" in paybill_register_pull()
    assert "already registered" in paybill_register_pull()
    return daraja.state.paybill


def _odd(code: str, n: int) -> str:
    """How people type an account number: any case, spaces, a leading #."""
    return [
        code,
        code.lower(),
        f" {code[:2]} {code[2:]} ",
        f"#{code}",
        code.lower()[:5] + code[5:],
    ][n % 5]


def test_a_storm_of_duplicates_and_lost_confirmations_credits_each_payment_once(paybill):
    rng = random.Random(28)
    members = UserFactory.create_batch(40)
    codes = {m.pk: Profile.objects.get(user=m).account_code for m in members}
    now = datetime.now(tz=NAIROBI)
    payments = [
        Payment(
            receipt=f"SKS{n:07d}",
            phone=f"2547{n:08d}",
            amount=Decimal(100 + n),
            bill_ref=_odd(codes[members[n % 40].pk], n),
            short_code=paybill.short_code,
            first_name="PAYER",
            at=now - timedelta(minutes=rng.randint(1, 90)),
        )
        for n in range(200)
    ]
    paybill.payments.extend(payments)  # what M-Pesa knows, and Pull will say
    lost = set(rng.sample(range(200), 20))
    bodies = []
    for n, payment in enumerate(payments):
        if n not in lost:
            body = json.dumps(paybill.body(payment, "v2", validation=False))
            bodies += [body] * rng.randint(1, 5)
    rng.shuffle(bodies)
    url = f"{settings.MPESA_C2B_URL}/confirmation/{settings.MPESA_C2B_TOKEN}/"

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(partial(post_body, url), bodies))

    assert set(statuses) == {200}
    assert PaybillNotice.objects.count() == len(bodies)
    assert PaybillPayment.objects.count() == 180
    # The lost ones are known only to M-Pesa: Pull Transactions finds them (two full pages
    # and an empty third), and skips the 180 it already has.
    assert paybill_pull() == {"seen": 200, "stored": 20}
    assert paybill_pull() == {"seen": 200, "stored": 0}

    assert PaybillPayment.objects.filter(status=P.CREDITED).count() == 200
    assert PaybillPayment.objects.filter(source="pull").count() == 20
    credits = LedgerEntry.objects.filter(kind="payment")
    assert credits.count() == 200
    assert credits.values("receipt").distinct().count() == 200
    assert not PaybillNotice.objects.filter(status__in=["received", "error", "waiting"]).exists()
    for member in members:
        owed = sum(p.amount for n, p in enumerate(payments) if members[n % 40] == member)
        assert Profile.objects.get(user=member).balance == -owed
    per_receipt = PaybillNotice.objects.values("receipt").annotate(n=Count("id"))
    assert max(row["n"] for row in per_receipt) <= 5


def test_a_member_pays_from_the_sim_menu_with_validation_and_scenarios(paybill, crew):
    paybill.validation_enabled = True
    code = crew.profile.account_code

    shown = paybill.pay(phone="254712345678", amount=500, account=code.lower())
    assert shown["paid"] and "Confirmed. Ksh500.00" in shown["message"]
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    assert payment.status == P.CREDITED and payment.user == crew
    validation = PaybillNotice.objects.get(kind="validation")
    assert validation.receipt == shown["receipt"] and validation.detail.startswith("Accepted")

    twice = paybill.pay(phone="254712345678", amount=611, account=code)
    lost = paybill.pay(phone="254712345678", amount=712, account=code)
    assert PaybillNotice.objects.filter(receipt=twice["receipt"], kind="confirmation").count() == 2
    assert not PaybillPayment.objects.filter(receipt=lost["receipt"]).exists()
    paybill_pull()
    assert PaybillPayment.objects.get(receipt=lost["receipt"]).status == P.CREDITED
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal(-(500 + 611 + 712))

    settings.MPESA_C2B_REJECT_UNKNOWN = True
    try:
        refused = paybill.pay(phone="254712345678", amount=300, account="SF9999990")
    finally:
        settings.MPESA_C2B_REJECT_UNKNOWN = False
    assert refused["paid"] is False and "C2B00012" in refused["message"]
    assert PaybillPayment.objects.count() == 3


def test_prompts_listed_by_pull_are_credited_once_and_a_query_settled_one_gets_its_receipt(
    paybill, crew, other_crew, settings
):
    """A prompt paid with its callback, and one whose callback was lost (settled by the
    status query, which carries no receipt): Pull lists both with their receipts."""
    settings.MPESA_QUERY_AFTER_SECONDS = 0
    paid, _ = payment_request_stk_push(payer=crew, amount=250, purpose="Balance", requested_by=crew)
    lost_callback, _ = payment_request_stk_push(
        payer=other_crew, amount=260, purpose="Balance", requested_by=other_crew, phone="0712340003"
    )
    assert wait_until(
        lambda: MpesaPayment.objects.filter(pk=paid.pk, status="completed").exists(), 10
    )
    assert wait_until(
        lambda: (
            payments_reconcile(),
            MpesaPayment.objects.filter(pk=lost_callback.pk, status="completed").exists(),
        )[1],
        10,
        interval=0.3,
    )
    lost_callback.refresh_from_db()
    assert lost_callback.receipt_number == "" and lost_callback.ledger_entry_id

    assert paybill_pull()["stored"] == 2

    paid.refresh_from_db()
    lost_callback.refresh_from_db()
    rows = {p.stk_payment_id: p for p in PaybillPayment.objects.all()}
    assert rows[paid.pk].status == P.STK and rows[paid.pk].receipt == paid.receipt_number
    assert rows[lost_callback.pk].status == P.STK
    assert lost_callback.receipt_number == rows[lost_callback.pk].receipt
    assert LedgerEntry.objects.filter(kind="payment").count() == 2
    assert LedgerEntry.objects.aggregate(total=Sum("amount"))["total"] == Decimal(-510)


def test_the_simulators_statement_reconciles_then_shows_a_foreign_row(paybill, daraja, crew, staff):
    """Done when: members pay by Paybill and by prompt, one confirmation is lost (Pull credits
    it), Finance imports the simulator's statement: all matched; then one payment the app
    never heard of shows as in the statement only."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from attendance.services.payments.books import reconciliation
    from attendance.services.payments.statement import statement_import

    code = crew.profile.account_code
    paybill.pay(phone="254712345678", amount=500, account=code)
    paybill.pay(phone="254712345678", amount=611, account=f"#{code.lower()}")
    paybill.pay(phone="254712345678", amount=712, account=code)  # lost: Pull credits it
    prompt, _ = payment_request_stk_push(
        payer=crew, amount=250, purpose="Balance", requested_by=crew
    )
    assert wait_until(
        lambda: MpesaPayment.objects.filter(pk=prompt.pk, status="completed").exists(), 10
    )
    paybill_pull()

    def import_statement(name):
        export = requests.get(f"{daraja.url}/simulator/statement", timeout=10)
        assert export.headers["Content-Type"].startswith("text/csv")
        upload = SimpleUploadedFile(name, export.content)
        return statement_import(file=upload, name=name, by=staff).statement

    first = import_statement("today.csv")
    assert first.rows_new == 4
    today = timezone.localdate()
    report = reconciliation(today - timedelta(days=1), today)
    assert report.agrees, (
        report.statement_only_rows,
        report.books_only_rows,
        report.mismatched_rows,
    )
    assert report.matched.count == 4 and report.statement_in.total == Decimal(500 + 611 + 712 + 250)

    # Amount ending in 15: no confirmation, never listed by Pull; only the statement knows.
    foreign = paybill.pay(phone="254799000111", amount=4215, account="INV-2291")
    paybill_pull()
    assert not PaybillPayment.objects.filter(receipt=foreign["receipt"]).exists()
    second = import_statement("today (again).csv")
    assert second.rows_new == 1
    report = reconciliation(today - timedelta(days=1), today)
    assert [row.receipt for row in report.statement_only_rows] == [foreign["receipt"]]
    assert not report.books_only_rows and not report.agrees
    assert report.in_difference == Decimal(4215)


def test_a_validation_answer_too_late_leaves_it_to_the_response_type(paybill, settings):
    """Amount ending in 14: our answer comes too late. ResponseType Completed: the payment
    goes through even though we would have refused the account, and waits for Finance."""
    paybill.validation_enabled = True
    settings.MPESA_C2B_REJECT_UNKNOWN = True
    shown = paybill.pay(phone="254799000014", amount=514, account="NOBODY")
    assert shown["paid"]
    payment = PaybillPayment.objects.get(receipt=shown["receipt"])
    assert payment.status == P.UNATTRIBUTED
    assert PaybillNotice.objects.get(kind="validation").detail.startswith("Rejected")
