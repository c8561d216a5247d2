"""The M-Pesa statement: reading the org portal's export, importing it once, and the
reconciliation page's figures against an independent computation."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from attendance.models import (
    LedgerEntry,
    PaybillPayment,
    Payout,
    PayRunMember,
    StatementImport,
    StatementRow,
)
from attendance.mpesa.paybill import PaybillTransaction
from attendance.mpesa.statement import Statement, UnreadableStatement, read_statement
from attendance.services.payments.books import reconciliation
from attendance.services.payments.paybill import paybill_record
from attendance.services.payments.statement import (
    StatementError,
    statement_import,
    statement_record_paybill,
)
from tests.support.auth import log_in_staff
from tests.support.factories import PaymentFactory, PayRunFactory, UserFactory

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 12, 3, tzinfo=timezone.get_fixed_timezone(180))
HEADER = (
    "Receipt No.,Completion Time,Initiation Time,Details,Transaction Status,Paid In,Withdrawn,"
    "Balance,Balance Confirmed,Reason Type,Other Party Info,Linked Transaction ID,A/C No."
)


def csv_statement(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Account Holder:", "SOUND FUSION LTD"])
    writer.writerow(["Short Code:", "174379"])
    writer.writerow(["Time Period:", "03-12-2026 to 03-12-2026"])
    writer.writerow([])
    writer.writerow(HEADER.split(","))
    for r in rows:
        when = r["at"].strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow(
            [
                r["receipt"],
                when,
                when,
                r["details"],
                r.get("status", "Completed"),
                r.get("in", ""),
                r.get("out", ""),
                "1,000,000.00",
                "true",
                r.get("reason", ""),
                "",
                r.get("linked", ""),
                r.get("account", ""),
            ]
        )
    writer.writerow(["", "", "", "Totals"])
    return out.getvalue().encode()


def upload(content, name="statement.csv"):
    return SimpleUploadedFile(name, content)


@pytest.fixture
def books(crew, other_crew):
    """Our books for 3 Dec: two prompts paid, a Paybill payment, a payout; and one prompt
    paid on 3 Dec that the statement will not show."""
    at = DAY.replace(hour=10)
    stk = [
        PaymentFactory(
            user=crew,
            amount=amount,
            status="completed",
            receipt_number=receipt,
            transaction_date=at + timedelta(minutes=n),
            paid_amount=amount,
        )
        for n, (receipt, amount) in enumerate(
            [("SKA0000001", 500), ("SKA0000002", 700), ("SKA0000009", 900)]
        )
    ]
    paybill_record(
        PaybillTransaction(
            receipt="SKP0000001",
            amount=Decimal("1200"),
            paid_at=at + timedelta(hours=1),
            bill_ref=other_crew.profile.account_code,
        ),
        source="confirmation",
    )
    run = PayRunFactory()
    payslip = PayRunMember.objects.create(
        pay_run=run,
        user=crew,
        earned=3000,
        balance_before=0,
        balance_after=0,
        deducted=0,
        to_pay=3000,
    )
    payout = Payout.objects.create(
        pay_run=run,
        payslip=payslip,
        user=crew,
        phone_number=crew.profile.phone_number,
        amount=3000,
        status=Payout.Status.COMPLETED,
        receipt_number="SKB0000001",
        paid_at=at + timedelta(hours=2),
        originator_conversation_id="sf-payout-1",
    )
    return stk, payout


def statement_for_books(extra=()):
    at = DAY.replace(hour=10)
    rows = [
        {
            "receipt": "SKA0000001",
            "at": at,
            "details": "Pay Bill Online from 2547***678",
            "in": "500.00",
        },
        # The statement says 750 where our books say 700.
        {
            "receipt": "SKA0000002",
            "at": at,
            "details": "Pay Bill Online from 2547***678",
            "in": "750.00",
        },
        {
            "receipt": "SKP0000001",
            "at": at,
            "details": "Pay Bill from 2547***111 Acc. SF",
            "in": "1,200.00",
        },
        {
            "receipt": "SKB0000001",
            "at": at,
            "details": "Business Payment to 2547***678 - JANE",
            "out": "-3,000.00",
            "reason": "Business Payment",
        },
        {
            "receipt": "SKB0000001",
            "at": at,
            "details": "Business Payment Charge",
            "out": "-15.00",
            "reason": "Business Payment Charge",
        },
        # Money nobody recorded: a stranger's payment, and a payslip M-Pesa paid twice.
        {
            "receipt": "SKX0000001",
            "at": at,
            "details": "Pay Bill from 2547***999 Acc. HELLO",
            "in": "2,500.00",
            "account": "HELLO",
        },
        {
            "receipt": "SKB0000002",
            "at": at,
            "details": "Business Payment to 2547***678 - JANE",
            "out": "-3,000.00",
            "reason": "Business Payment",
        },
        {
            "receipt": "SKO0000001",
            "at": at,
            "details": "Organization Settlement to bank",
            "out": "-50,000.00",
        },
        {
            "receipt": "SKF0000001",
            "at": at,
            "details": "Pay Bill from 2547***555",
            "in": "40.00",
            "status": "Failed",
        },
        *extra,
    ]
    return csv_statement(rows)


def test_the_portal_export_is_read_with_its_header_lines_charges_and_totals():
    info = Statement()
    content = statement_for_books().decode()
    lines = list(read_statement(csv.reader(content.splitlines()), info))
    assert info.short_code == "174379"
    kinds = [line.kind for line in lines]
    assert kinds.count("paid_in") == 4 and kinds.count("payout") == 2
    assert kinds.count("charge") == 1 and kinds.count("other") == 2
    charge = next(line for line in lines if line.kind == "charge")
    assert charge.withdrawn == Decimal("15.00") and charge.receipt == "SKB0000001"
    assert charge.completed_at.utcoffset() == timedelta(hours=3)


def test_something_that_is_not_a_statement_is_refused_in_finances_words(staff):
    with pytest.raises(StatementError, match=r"No header row with Receipt No\."):
        statement_import(file=upload(b"name,amount\nx,1\n"), name="notes.csv", by=staff)
    with pytest.raises(UnreadableStatement):
        list(
            read_statement(
                [[HEADER.split(",")[0], "Completion Time", "Paid In"], ["SK1", "when?", "1"]],
                Statement(),
            )
        )
    assert not StatementImport.objects.exists()


def test_importing_twice_changes_nothing_and_the_figures_are_right(books, staff):
    first = statement_import(file=upload(statement_for_books()), name="dec.csv", by=staff)
    assert (first.statement.rows_read, first.statement.rows_new) == (9, 9)
    again = statement_import(file=upload(statement_for_books()), name="dec (1).csv", by=staff)
    assert again.already and again.statement.rows_new == 0
    assert StatementRow.objects.count() == 9

    report = reconciliation(DAY.date(), DAY.date())

    # An independent computation from the fixtures above.
    assert report.statement_in.total == Decimal("500") + 750 + 1200 + 2500
    assert report.statement_payouts.total == Decimal("6000")
    assert report.statement_charges.total == Decimal("15")
    assert report.statement_other_out.total == Decimal("50000")
    assert report.books_in.total == Decimal("500") + 700 + 900 + 1200
    assert report.books_payouts.total == Decimal("3000")
    assert report.matched.count == 3  # SKA0000001, SKP0000001, SKB0000001 (not its charge)
    assert {row.receipt for row in report.statement_only_rows} == {"SKX0000001", "SKB0000002"}
    assert report.statement_only.total == Decimal("2500") - 3000
    assert [(r.what, r.receipt) for r in report.books_only_rows] == [
        ("M-Pesa prompt", "SKA0000009")
    ]
    assert [(r.receipt, r.amount, r.books_amount) for r in report.mismatched_rows] == [
        ("SKA0000002", Decimal("750.00"), Decimal("700.00"))
    ]
    assert report.in_difference == Decimal("4950") - Decimal("3300")
    assert not report.agrees


def test_a_foreign_row_recorded_as_a_paybill_payment_goes_to_the_queue_once(books, staff):
    statement_import(file=upload(statement_for_books()), name="dec.csv", by=staff)
    row = StatementRow.objects.get(receipt="SKX0000001")
    payment = statement_record_paybill(row=row, by=staff)
    assert payment.status == PaybillPayment.Status.UNATTRIBUTED and payment.source == "statement"
    with pytest.raises(StatementError, match="in our books already"):
        statement_record_paybill(row=row, by=staff)
    report = reconciliation(DAY.date(), DAY.date())
    assert {r.receipt for r in report.statement_only_rows} == {"SKB0000002"}


def test_a_member_payment_only_the_statement_knows_is_credited_from_it(crew, staff):
    at = DAY.replace(hour=9)
    code = crew.profile.account_code
    content = csv_statement(
        [
            {
                "receipt": "SKY0000001",
                "at": at,
                "details": f"Pay Bill Acc. {code}",
                "in": "640.00",
                "account": code.lower(),
            }
        ]
    )
    statement_import(file=upload(content), name="dec.csv", by=staff)
    statement_record_paybill(row=StatementRow.objects.get(), by=staff)
    assert LedgerEntry.objects.get(user=crew).receipt == "SKY0000001"
    report = reconciliation(DAY.date(), DAY.date())
    assert report.agrees and report.matched.count == 1


def test_an_xlsx_export_reads_like_the_csv(books, staff):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in csv.reader(statement_for_books().decode().splitlines()):
        sheet.append(row)
    sheet["B6"].value = DAY.replace(hour=10, tzinfo=None)  # a real spreadsheet date
    buffer = io.BytesIO()
    book.save(buffer)
    done = statement_import(file=upload(buffer.getvalue(), "dec.xlsx"), name="dec.xlsx", by=staff)
    assert done.statement.rows_read == 9


def test_the_page_needs_the_permission_and_shows_the_differences(client, books, staff):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_statementimport"))
    log_in_staff(client, viewer)
    assert client.get("/admin/attendance/statementimport/reconcile/").status_code == 403

    log_in_staff(client, staff)
    response = client.post(
        "/admin/attendance/statementimport/import/",
        {"file": upload(statement_for_books())},
        follow=True,
    )
    page = response.content.decode()
    assert "9 rows read, 9 new." in page
    assert "Reconciliation 3 Dec 2026 to 3 Dec 2026" in page
    assert "SKX0000001" in page and "Record as Paybill payment" in page
    assert "1 with another amount" in page
    again = client.post(
        "/admin/attendance/statementimport/import/",
        {"file": upload(statement_for_books())},
        follow=True,
    )
    assert "all imported before: nothing changed" in again.content.decode()
    foreign = StatementRow.objects.get(receipt="SKX0000001")
    recorded = client.post(f"/admin/attendance/statementimport/rows/{foreign.pk}/record/")
    payment = PaybillPayment.objects.get(receipt="SKX0000001")
    # Nobody named: straight to the payment, to assign it or mark it not ours.
    assert recorded["Location"] == f"/admin/attendance/paybillpayment/{payment.pk}/change/"
    assert (
        client.get(f"/admin/attendance/statementimport/rows/{foreign.pk}/record/").status_code
        == 405
    )
    bad = client.get(
        "/admin/attendance/statementimport/reconcile/", {"start": "2026-12-05", "end": "2026-12-01"}
    )
    assert "The period ends before it starts." in bad.content.decode()


@pytest.mark.parametrize("rows", [2, 60])
def test_the_paybill_list_and_the_reconciliation_page_take_the_same_queries_at_any_size(
    client, staff, crew, rows, django_assert_max_num_queries
):
    at = DAY.replace(hour=8)
    lines = []
    for n in range(rows):
        receipt = f"SKQ{n:07d}"
        account = crew.profile.account_code if n % 2 else f"UNKNOWN{n}"
        paybill_record(
            PaybillTransaction(
                receipt=receipt, amount=Decimal(100 + n), paid_at=at, bill_ref=account
            ),
            source="confirmation",
        )
        lines.append({"receipt": receipt, "at": at, "details": "Pay Bill", "in": f"{100 + n}"})
        lines.append({"receipt": f"SKZ{n:07d}", "at": at, "details": "Pay Bill", "in": "5"})
    statement_import(file=upload(csv_statement(lines)), name="q.csv", by=staff)
    log_in_staff(client, staff)
    with django_assert_max_num_queries(14):
        assert client.get("/admin/attendance/paybillpayment/").status_code == 200
    with django_assert_max_num_queries(14):
        page = client.get("/admin/attendance/paybillpayment/", {"status__exact": "unattributed"})
        assert page.status_code == 200
    with django_assert_max_num_queries(30):
        page = client.get(
            "/admin/attendance/statementimport/reconcile/",
            {"start": "2026-12-03", "end": "2026-12-03"},
        )
    assert page.status_code == 200
    assert f"In the statement only ({rows})" in page.content.decode()


def test_a_row_our_books_catch_up_with_is_matched_by_the_beat_not_by_the_page(crew, staff):
    from attendance.services.payments.statement import statement_rematch

    at = DAY.replace(hour=9)
    content = csv_statement(
        [{"receipt": "SKW0000001", "at": at, "details": "Pay Bill", "in": "300"}]
    )
    statement_import(file=upload(content), name="early.csv", by=staff)
    # The statement came before our books knew the payment (Pull credits it a moment later).
    paybill_record(
        PaybillTransaction(
            receipt="SKW0000001",
            amount=Decimal(300),
            paid_at=at,
            bill_ref=crew.profile.account_code,
        ),
        source="pull",
    )
    assert reconciliation(DAY.date(), DAY.date()).statement_only.count == 1  # the page reads
    assert statement_rematch() == 1
    report = reconciliation(DAY.date(), DAY.date())
    assert report.agrees and report.matched.count == 1
    assert statement_rematch() == 0
