import pytest
import requests
from django.utils import timezone

from attendance.models import MpesaCallback, MpesaPayment
from attendance.services.ledger import ledger_post
from tests.support.auth import log_in_staff
from tests.support.factories import PaymentFactory, UserFactory
from tests.support.jobs import export_rows, run_action
from tests.support.waiting import wait_until


def _pushes(daraja):
    return requests.get(f"{daraja.url}/simulator/stats", timeout=5).json()["stk_push"]


def test_changelist_shows_badges_and_resend_only_for_failed(staff_client):
    PaymentFactory(
        status="failed",
        result_description="Wrong PIN",
        user__first_name="Akinyi",
        user__last_name="Odhiambo",
    )
    PaymentFactory(status="pending", phone_number="254722000000")
    page = staff_client.get("/admin/attendance/mpesapayment/").content.decode()
    assert "Akinyi Odhiambo" in page
    assert 'class="sf-badge sf-failed"' in page
    assert 'class="sf-badge sf-pending"' in page
    assert page.count("Resend STK push") == 1


def test_callback_inbox_shows_each_outcome_as_a_badge(staff_client):
    MpesaCallback.objects.create(raw_body="{}", checkout_request_id="ws_CO_1", status="unmatched")
    MpesaCallback.objects.create(raw_body="x", status="malformed")
    page = staff_client.get("/admin/attendance/mpesacallback/").content.decode()
    assert 'class="sf-badge sf-callback-unmatched">Names nothing of ours (kept for staff)' in page
    assert 'class="sf-badge sf-callback-malformed">Malformed body (kept, never processed)' in page


@pytest.mark.parametrize("rows", [1, 80])
def test_payment_and_callback_changelists_query_counts_are_flat(
    staff_client, django_assert_max_num_queries, rows
):
    for n in range(rows):
        payment = PaymentFactory(phone_number=f"2547330{n:05d}")
        MpesaCallback.objects.create(raw_body="{}", payment=payment, checkout_request_id="x")
    with django_assert_max_num_queries(9):
        assert staff_client.get("/admin/attendance/mpesapayment/").status_code == 200
    with django_assert_max_num_queries(9):
        assert staff_client.get("/admin/attendance/mpesacallback/").status_code == 200


def test_money_fields_cannot_be_edited(staff_client):
    payment = PaymentFactory(amount=100)
    page = staff_client.get(f"/admin/attendance/mpesapayment/{payment.pk}/change/").content.decode()
    assert 'name="amount"' not in page
    assert "M-Pesa response" in page and "Timestamps" in page
    staff_client.post(f"/admin/attendance/mpesapayment/{payment.pk}/change/", {"amount": "1"})
    payment.refresh_from_db()
    assert payment.amount == 100
    assert staff_client.get("/admin/attendance/mpesapayment/add/").status_code == 403


def test_resend_asks_first_then_prompts_once(daraja, staff_client):
    member = UserFactory(profile__phone_number="0712000111")
    failed = PaymentFactory(user=member, phone_number="254712000111", status="cancelled")
    url = f"/admin/attendance/mpesapayment/{failed.pk}/resend/"
    page = staff_client.get(url).content.decode()
    assert "Resend STK push?" in page
    assert _pushes(daraja) == 0
    response = staff_client.post(url)
    assert response.status_code == 302
    assert _pushes(daraja) == 1
    new = MpesaPayment.objects.exclude(pk=failed.pk).get()
    assert new.status == "pending" and new.amount == failed.amount


def test_bulk_request_defaults_to_each_members_balance(
    daraja, staff_client, staff, django_capture_on_commit_callbacks
):
    owing = UserFactory(profile__phone_number="0712000222")
    clear = UserFactory(profile__phone_number="0712000333")
    ledger_post(user=owing, kind="charge", amount=1200, description="Lost DI box")
    selected = [owing.profile.pk, clear.profile.pk]
    form = staff_client.post(
        "/admin/attendance/profile/",
        {"action": "request_mpesa_payment", "_selected_action": selected},
    )
    assert "Send prompts" in form.content.decode()
    assert _pushes(daraja) == 0
    job, page = run_action(
        staff_client,
        "/admin/attendance/profile/",
        {
            "action": "request_mpesa_payment",
            "_selected_action": selected,
            "apply": "1",
            "amount": "",
            "purpose": "Balance payment",
        },
        capture=django_capture_on_commit_callbacks,
    )
    assert (job.status, job.done, job.skipped, job.failed) == ("done", 1, 1, 0)
    assert "Prompt for KES 1,200 sent to 2547*****222" in page
    assert "Nothing owed." in page
    payment = MpesaPayment.objects.get()
    assert payment.user == owing and payment.amount == 1200 and payment.requested_by == staff


def test_check_status_now_settles_a_lost_callback(
    daraja, staff_client, django_capture_on_commit_callbacks
):
    from attendance.services.payments import payment_request_stk_push

    member = UserFactory(profile__phone_number="0711110003")
    payment, _ = payment_request_stk_push(
        payer=member, amount=100, purpose="x", requested_by=member
    )
    assert wait_until(lambda: daraja.state.answered(payment.checkout_request_id))
    job, page = run_action(
        staff_client,
        "/admin/attendance/mpesapayment/",
        {"action": "check_status_now", "_selected_action": [payment.pk]},
        capture=django_capture_on_commit_callbacks,
    )
    assert job.done == 1 and "Settled by M-Pesa" in page
    payment.refresh_from_db()
    assert payment.status == "completed"


def _export(staff_client, data, capture, filters=""):
    # Filters live in the query string, as on the page the staff member is looking at.
    return export_rows(
        staff_client,
        f"/admin/attendance/mpesapayment/{filters}",
        {"action": "export_csv", **data},
        capture=capture,
    )


def test_export_for_reconciliation_writes_the_filtered_payments_as_csv(
    staff_client, django_capture_on_commit_callbacks
):
    paid = PaymentFactory(
        status="completed", amount=1500, receipt_number="TKA1B2C3D4", phone_number="254711000001"
    )
    PaymentFactory(status="failed", phone_number="254711000002")
    # A purpose typed by a person, shaped like a spreadsheet formula.
    PaymentFactory(
        status="completed",
        phone_number="254711000003",
        receipt_number="TKA1B2C3D5",
        payment_purpose='=HYPERLINK("http://evil.example","Click")',
    )
    rows = _export(
        staff_client,
        {"select_across": "1", "index": "0", "_selected_action": [paid.pk]},
        django_capture_on_commit_callbacks,
        filters="?status__exact=completed",
    )
    header, *body = rows
    assert header[:3] == ["initiated_at", "transaction_date", "username"]
    assert sorted(r[header.index("receipt_number")] for r in body) == ["TKA1B2C3D4", "TKA1B2C3D5"]
    purposes = [r[header.index("purpose")] for r in body]
    assert '\'=HYPERLINK("http://evil.example","Click")' in purposes  # shown as text, not run
    assert {r[header.index("amount")] for r in body} >= {"1500.00"}


@pytest.mark.parametrize("rows", [1, 60])
def test_export_costs_the_same_queries_for_1_and_60_payments(
    staff_client, django_assert_max_num_queries, rows, django_capture_on_commit_callbacks
):
    payments = [PaymentFactory(phone_number=f"2547110{n:05d}") for n in range(rows)]
    with django_assert_max_num_queries(40):  # the action, the job, its page, the download
        rows_out = _export(
            staff_client,
            {"_selected_action": [p.pk for p in payments]},
            django_capture_on_commit_callbacks,
        )
    assert len(rows_out) == rows + 1


def test_the_list_totals_the_filtered_payments_and_open_rows_update_in_place(staff_client):
    PaymentFactory(status="completed", amount=500, phone_number="254722000001")
    PaymentFactory(status="completed", amount=250, phone_number="254722000002")
    waiting = PaymentFactory(status="pending", amount=100, phone_number="254722000003")
    PaymentFactory(status="cancelled", amount=100, phone_number="254722000004")
    unnarrowed = staff_client.get("/admin/attendance/mpesapayment/").content.decode()
    assert "4 payments:" not in unnarrowed and "Totals: choose a month" in unnarrowed
    assert f'data-open-payment="{waiting.pk}"' in unnarrowed
    month = timezone.localdate().strftime("%Y-%m")
    page = staff_client.get(f"/admin/attendance/mpesapayment/?month={month}").content.decode()
    assert "4 payments:" in page
    assert "2 completed (KES 750.00)" in page and "1 waiting, 1 failed or cancelled" in page
    filtered = staff_client.get(
        f"/admin/attendance/mpesapayment/?status__exact=cancelled&month={month}"
    )
    assert "1 payment:" in filtered.content.decode()

    status_url = f"/admin/attendance/mpesapayment/status/?ids={waiting.pk}"
    assert staff_client.get(status_url).json()[str(waiting.pk)]["open"] is True
    MpesaPayment.objects.filter(pk=waiting.pk).update(status="completed", receipt_number="LIVE1")
    row = staff_client.get(status_url).json()[str(waiting.pk)]
    assert row == {"open": False, "badge": row["badge"], "receipt": "LIVE1"}
    assert "sf-completed" in row["badge"]


def test_a_list_offers_at_most_a_hundred_pages_and_a_later_page_shows_the_last(
    staff_client, settings
):
    from attendance.admin.display import EstimatedCountPaginator

    paginator = EstimatedCountPaginator(list(range(5000)), 20)
    assert paginator.num_pages == EstimatedCountPaginator.MAX_PAGES
    assert paginator.page(5000).number == EstimatedCountPaginator.MAX_PAGES
    for n in range(3):
        PaymentFactory(phone_number=f"25472200010{n}")
    response = staff_client.get("/admin/attendance/mpesapayment/?p=40")
    assert response.status_code == 200  # not the admin's "?e=1" error redirect


def test_a_refused_money_page_says_which_role_it_needs(db, client):
    viewer = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_mpesapayment"))
    log_in_staff(client, viewer)
    payment = PaymentFactory(status="failed")
    response = client.get(f"/admin/attendance/mpesapayment/{payment.pk}/resend/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Can send M-Pesa prompts to members" in page and "Finance" in page
