"""A month's returns from its payslips: the P10 sheet, the SHIF, NSSF, housing levy and
withholding schedules, P9 cards and payslips as PDFs; each total equals the payslips'."""

import csv
import io
from datetime import datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db.models import Sum
from django.test import Client
from openpyxl import load_workbook

from attendance.models import PayRunMember, StatutoryDeduction, StatutoryProfile
from attendance.services.jobs.returns import month_of_returns, p9_card, p10_rows
from tests.support.auth import log_in_staff
from tests.support.clock import NAIROBI
from tests.support.factories import UserFactory
from tests.support.pay import paid_run as _run
from tests.support.pay import worked_on as _worked_on

MARCH = datetime(2026, 3, 1).date()


@pytest.fixture
def people(db):
    return tuple(UserFactory(username=n, is_staff=True) for n in ("mgr", "drafter", "checker"))


@pytest.fixture
def march_paid(people):
    """March 2026: an employee with every number paid 60,000 in two runs, one whose main job
    is elsewhere, a DJ on fees, and a casual without a statutory profile."""
    wanjiru = UserFactory(first_name="Wanjiru", last_name="Kamau")
    StatutoryProfile.objects.create(
        user=wanjiru,
        kra_pin="A012345678Z",
        id_number="23456781",
        nssf_number="2001234567",
        shif_number="CR5647382910",
    )
    moonlighter = UserFactory(first_name="Kevin", last_name="Kiprop")
    StatutoryProfile.objects.create(
        user=moonlighter, kra_pin="A011122233C", id_number="30111222", secondary_employment=True
    )
    dj = UserFactory(first_name="Njeri", last_name="Wambui")
    StatutoryProfile.objects.create(user=dj, kra_pin="A098765432B", classification="contractor")
    casual = UserFactory(first_name="James", last_name="Mutua")
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=NAIROBI), tick=True):
        _worked_on(wanjiru, 2, "25000", people)
        _run(people, 2, 2)
        _worked_on(wanjiru, 4, "35000", people)
        _worked_on(moonlighter, 4, "8000", people)
        _worked_on(dj, 4, "30000", people)
        _worked_on(casual, 4, "8000", people)
        _run(people, 4, 4)
    return {"wanjiru": wanjiru, "moonlighter": moonlighter, "dj": dj, "casual": casual}


def _deducted(kind):
    return StatutoryDeduction.objects.filter(month=MARCH, kind=kind).aggregate(t=Sum("amount"))["t"]


def _finance(client):
    finance = UserFactory(is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    return log_in_staff(client, finance)


def test_the_p10_sheet_has_an_employee_per_row_and_its_paye_is_the_payslips(march_paid):
    rows = list(p10_rows(MARCH))
    by_pin = {row[0]: row for row in rows}
    assert len(rows) == 3  # the contractor is not on PAYE
    wanjiru = by_pin["A012345678Z"]
    # The worked example to the cent: A, B, C, D, G, N, O, P, T, U, V, X.
    assert wanjiru[:5] == ["A012345678Z", "Wanjiru Kamau", "Resident", "Primary Employee", "No"]
    assert (wanjiru[6], wanjiru[13], wanjiru[14], wanjiru[15], wanjiru[19]) == (
        D("60000.00"),
        D("60000.00"),
        D("1650.00"),
        D("3600.00"),
        D("900.00"),
    )
    assert (wanjiru[20], wanjiru[21], wanjiru[23]) == (D("53850.00"), D("2400.00"), D("8538.35"))
    moonlighter = by_pin["A011122233C"]
    assert moonlighter[3] == "Secondary Employee" and moonlighter[21] == 0
    assert "" in by_pin  # the casual without a PIN is listed (Finance is told to add it)
    assert sum(row[23] for row in rows) == _deducted("paye")
    assert sum(row[6] for row in rows) == sum(
        m.earned for m in PayRunMember.objects.exclude(user=march_paid["dj"])
    )


def test_each_schedule_downloads_and_its_totals_equal_the_payslips(client, march_paid):
    staff = _finance(client)

    def sheet(name):
        response = staff.get(f"/admin/attendance/statutorydeduction/returns/2026-03/{name}/")
        assert response.status_code == 200
        rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
        return rows[0], rows[1:]

    def total(rows, header, column):
        return sum(D(str(row[header.index(column)])) for row in rows)

    header, rows = sheet("shif")
    assert header[:3] == ("Payroll Number", "First Name", "Last Name")
    assert len(rows) == 2  # a secondary employment pays no SHIF (the table's rule)
    assert total(rows, header, "Contribution Amount") == _deducted("shif") == D("1950.00")
    header, rows = sheet("nssf")
    assert total(rows, header, "Employee Contribution") == _deducted("nssf")
    assert total(rows, header, "Employer Contribution") == _deducted("employer_nssf")
    assert total(rows, header, "Gross Pay") == D("68000.00")
    header, rows = sheet("ahl")
    assert total(rows, header, "Employee Levy") == _deducted("ahl") == D("1140.00")
    assert total(rows, header, "Employer Levy") == _deducted("employer_ahl")
    header, rows = sheet("wht")
    fee = "Professional or management fee"
    assert rows == [(march_paid["dj"].pk, "Njeri Wambui", "A098765432B", fee, 30000, 1500)]
    p10 = staff.get("/admin/attendance/statutorydeduction/returns/2026-03/p10/")
    lines = list(csv.reader(io.StringIO(b"".join(p10.streaming_content).decode())))
    assert len(lines) == 3 and lines[0][0] != "PIN of employee"  # no header row
    assert staff.get("/admin/attendance/statutorydeduction/returns/2026-03/nhif/").status_code == (
        404
    )


def test_the_returns_page_shows_the_months_totals_and_when_to_remit(client, march_paid):
    staff = _finance(client)
    page = staff.get("/admin/attendance/statutorydeduction/returns/", {"month": "2026-03"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "4 members paid" in html and "KES 106,000.00" in html
    assert "Thursday 9 April 2026" in html
    # PAYE: 8,538.35 on the 60,000, and 35 % of the secondary job's 7,880 taxable.
    assert "KES 11,296.35" in html and "as contractor)" in html
    assert html.count("/returns/p9/2026/") == 3
    crew = Client()
    crew.force_login(UserFactory(is_staff=True))
    assert crew.get("/admin/attendance/statutorydeduction/returns/").status_code in (302, 403)


def test_a_p9_card_adds_up_the_employees_months_and_is_a_pdf(client, march_paid, people):
    wanjiru = march_paid["wanjiru"]
    with time_machine.travel(datetime(2026, 4, 20, 12, tzinfo=NAIROBI), tick=True):
        _worked_on(wanjiru, 6, "8000", people, month=4)
        _run(people, 6, 6, month=4)
    card = p9_card(wanjiru, 2026)
    assert [m.month.month for m in card.months] == [3, 4]
    assert card.totals.gross == D("68000.00")
    assert card.totals.paye == D("8538.35")
    assert card.totals.nssf == sum(
        StatutoryDeduction.objects.filter(user=wanjiru, kind="nssf").values_list(
            "amount", flat=True
        )
    )
    staff = _finance(client)
    pdf = staff.get(f"/admin/attendance/statutorydeduction/returns/p9/2026/{wanjiru.pk}/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    contractor = f"/admin/attendance/statutorydeduction/returns/p9/2026/{march_paid['dj'].pk}/"
    assert staff.get(contractor).status_code == 404


def test_a_member_downloads_their_payslip_as_a_pdf_and_nobody_elses(march_paid):
    from attendance.models import PayRunMember as Slip

    slip = Slip.objects.filter(user=march_paid["wanjiru"]).order_by("pk").last()
    crew = Client()
    crew.force_login(march_paid["wanjiru"])
    page = crew.get(f"/pay/runs/{slip.pay_run_id}/")
    assert b'id="payslip-pdf"' in page.content
    pdf = crew.get(f"/pay/runs/{slip.pay_run_id}/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    # The casual was paid in the second run only: the first is nobody's business of theirs.
    first_run = Slip.objects.filter(user=march_paid["wanjiru"]).order_by("pk").first().pay_run_id
    crew.force_login(march_paid["casual"])
    assert crew.get(f"/pay/runs/{first_run}/pdf/").status_code == 404


def test_the_month_is_read_in_a_fixed_number_of_queries(march_paid, django_assert_num_queries):
    with django_assert_num_queries(3):  # payslips (with users), rate bands, deductions
        rows = month_of_returns(MARCH)
    assert len(rows) == 4


def _pdf_text(data):
    from pypdf import PdfReader

    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_the_pdf_payslip_carries_the_html_payslips_figures(march_paid):
    import re

    slip = PayRunMember.objects.filter(user=march_paid["wanjiru"]).order_by("pk").last()
    crew = Client()
    crew.force_login(march_paid["wanjiru"])
    html = crew.get(f"/pay/runs/{slip.pay_run_id}/").content.decode()
    text = _pdf_text(crew.get(f"/pay/runs/{slip.pay_run_id}/pdf/").content)
    figures = set(re.findall(r"KES [\d,]+\.\d\d", html))
    # The second run of the month: gross 35,000, its share of the month's deductions, the net.
    assert {"KES 35,000.00", f"KES {slip.net:,.2f}"} <= figures
    for figure in figures:
        assert figure in text, figure
    assert "PAYE" in text and "How the deductions were worked out" in text


def test_the_payslip_email_carries_its_pdf(people, smtp_server, django_capture_on_commit_callbacks):
    member = UserFactory(email="wanjiru@example.com")
    with (
        time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=NAIROBI), tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _worked_on(member, 3, "60000", people)
        _run(people, 3, 3)
    [message] = [m for m in smtp_server.messages if m["To"] == "wanjiru@example.com"]
    [pdf] = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    assert pdf.get_filename().startswith("payslip-2026-03-03-")
    text = _pdf_text(pdf.get_payload(decode=True))
    assert "KES 8,538.35" in text and "KES 45,311.65" in text


def test_an_email_whose_pdf_cannot_be_made_goes_without_it(
    people, smtp_server, django_capture_on_commit_callbacks, monkeypatch
):
    from attendance.services.core.pdf import PdfUnavailable
    from attendance.services.messaging import email

    def no_pango(member_id):
        raise PdfUnavailable("PDFs cannot be made on this server")

    monkeypatch.setitem(email.DOCUMENTS, "payslip", no_pango)
    member = UserFactory(email="otieno@example.com")
    with (
        time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=NAIROBI), tick=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        _worked_on(member, 3, "8000", people)
        _run(people, 3, 3)
    [message] = [m for m in smtp_server.messages if m["To"] == "otieno@example.com"]
    assert not [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    [plain] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    assert "/pay/runs/" in plain.get_payload(decode=True).decode()
