"""Crew pay as staff and crew use it: admin (answer, approve, pay runs, exports) and the portal."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from attendance.models import (
    Attendance,
    BulkJob,
    EmailNotification,
    EventCrew,
    LedgerEntry,
    PayRun,
    PayRunMember,
    TimesheetLine,
)
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import timesheet_approve
from tests.support.auth import log_in_staff, staff_in
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.jobs import export_bytes
from tests.support.pay import role_with, worked

D = Decimal


def _client(user):
    return log_in_staff(Client(), user)


@pytest.fixture
def event(db):
    starts = timezone.now() - timedelta(hours=12)
    return EventFactory(
        name="Blankets & Wine",
        starts_at=starts,
        ends_at=starts + timedelta(hours=8),
        call_time=starts - timedelta(hours=1),
    )


@pytest.fixture
def role(db):
    return role_with("Stagehand", day_rate=D("1500"), hourly_rate=D("200"), minimum_hours=D("4"))


@pytest.fixture
def manager(db):
    return staff_in("Event managers")


@pytest.fixture
def finance(db):
    return staff_in("Finance")


@pytest.fixture
def checker(db):
    return staff_in("Finance")


def _lines(event, role, manager, count, *, hours="6"):
    members = [UserFactory() for _ in range(count)]
    for member in members:
        worked(event, member, role, hours)
    crew_complete_event(event=event, by=manager)
    return members


def _period(event):
    day = timezone.localtime(event.starts_at).date()
    return {"period_start": day, "period_end": day}


def test_a_manager_answers_a_dispute_on_the_line_page(event, role, manager):
    _lines(event, role, manager, 1)
    line = TimesheetLine.objects.get()
    client = _client(manager)
    url = f"/admin/attendance/timesheetline/{line.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"Day rate KES 1,500.00" in page.content
    # No reason: refused, with the field named, and nothing changed.
    refused = client.post(url, {"decision": "adjust", "new_amount": "2000", "reason": ""})
    assert b"Say why" in refused.content
    line.refresh_from_db()
    assert line.amount == D("1500.00")
    client.post(url, {"decision": "adjust", "new_amount": "2000", "reason": "Stayed for get-out"})
    line.refresh_from_db()
    assert (line.amount, line.changed_by) == (D("2000.00"), manager)
    assert b"Stayed for get-out" in client.get(url).content  # in the history


def test_approving_lines_needs_the_permission(event, role, manager):
    _lines(event, role, manager, 2)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_timesheetline"))
    data = {
        "action": "approve_lines",
        "_selected_action": list(TimesheetLine.objects.values_list("pk", flat=True)),
    }
    listing = "/admin/attendance/timesheetline/"
    assert b"approve_lines" not in _client(viewer).get(listing).content
    _client(viewer).post(listing, data)
    assert not TimesheetLine.objects.filter(status="approved").exists()
    # A view-only staff member cannot change a line either.
    line = TimesheetLine.objects.first()
    change = f"/admin/attendance/timesheetline/{line.pk}/change/"
    _client(viewer).post(change, {"decision": "adjust", "new_amount": "1", "reason": "x"})
    line.refresh_from_db()
    assert line.amount == D("1500.00")
    _client(manager).post(listing, data)
    assert TimesheetLine.objects.filter(status="approved").count() == 2


def test_pay_run_in_admin_maker_cannot_approve_viewer_gets_403_checker_approves(
    event, role, manager, finance, checker, django_capture_on_commit_callbacks
):
    _lines(event, role, manager, 3)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    client = _client(finance)
    added = client.post(
        "/admin/attendance/payrun/add/",
        {
            "period_start": _period(event)["period_start"].isoformat(),
            "period_end": _period(event)["period_end"].isoformat(),
        },
    )
    assert added.status_code == 302
    run = PayRun.objects.get()
    assert run.total == D("4500.00")
    page = client.get(f"/admin/attendance/payrun/{run.pk}/change/")
    assert b"you drew it up" in page.content and b"approve-payrun" not in page.content
    # The maker posts anyway: refused, nothing on the ledger.
    client.post(f"/admin/attendance/payrun/{run.pk}/approve/")
    assert not LedgerEntry.objects.exists()
    viewer = UserFactory(is_staff=True, is_superuser=False)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_payrun"))
    assert _client(viewer).post(f"/admin/attendance/payrun/{run.pk}/approve/").status_code == 403
    assert _client(checker).get(f"/admin/attendance/payrun/{run.pk}/approve/").status_code == 405
    other = _client(checker)
    assert b"approve-payrun" in other.get(f"/admin/attendance/payrun/{run.pk}/change/").content
    with django_capture_on_commit_callbacks(execute=True):
        started = other.post(f"/admin/attendance/payrun/{run.pk}/approve/")
    # The earnings go on in a background job, member by member, with a progress page.
    job = BulkJob.objects.get(kind="approve_pay_run")
    assert started["Location"] == f"/admin/attendance/bulkjob/{job.pk}/change/"
    assert (job.status, job.done, job.total) == ("done", 3, 3)
    run.refresh_from_db()
    assert run.status == "approved" and run.approved_by == checker
    assert LedgerEntry.objects.filter(kind="earning").count() == 3
    # Approving again: refused, nothing posted twice.
    other.post(f"/admin/attendance/payrun/{run.pk}/approve/")
    assert LedgerEntry.objects.filter(kind="earning").count() == 3


def test_the_xlsx_opens_and_its_totals_equal_the_pay_runs_and_csv_cells_are_safe(
    event, role, manager, finance, checker, django_capture_on_commit_callbacks
):
    members = _lines(event, role, manager, 4, hours="9")
    hostile = members[0]
    hostile.first_name = "=HYPERLINK(evil)"
    hostile.save()
    from attendance.services.ledger import ledger_post

    ledger_post(user=members[1], kind="charge", amount="500", description="Lost radio")
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    run = pay_run_create(**_period(event), by=finance)
    pay_run_approve(pay_run=run, by=checker)
    run.refresh_from_db()
    client = _client(finance)
    url = f"/admin/attendance/payrun/{run.pk}/export/xlsx/"
    assert client.get(url).status_code == 405  # a job is started by a POST, not a link
    body = export_bytes(client, url, {}, capture=django_capture_on_commit_callbacks)
    job = BulkJob.objects.get(kind="export_payroll")
    assert (job.done, job.total) == (4, 4)  # the page reads "4 done ... of 4"
    book = load_workbook(io.BytesIO(body))
    sheet = book["Payroll"]
    rows = list(sheet.iter_rows(values_only=True))
    header, body, total_row = rows[0], rows[1:-1], rows[-1]
    assert header[0] == "Member" and len(body) == 4
    gross, kept, net, owed, to_pay, employer = (
        header.index(n)
        for n in (
            "Gross",
            "Statutory deductions",
            "Net",
            "Set against owed",
            "To pay",
            "Employer cost",
        )
    )

    def total(column):
        return sum(D(str(r[column])) for r in body)

    slips = PayRunMember.objects.filter(pay_run=run)
    assert total(gross) == run.total == D("7200.00")
    # Each 1,800: NSSF 108, SHIF 300 (its minimum), housing levy 27.
    assert total(kept) == sum(s.withheld for s in slips) == D("1740.00")
    assert total(net) == D("5460.00")
    assert total(owed) == D("500.00")
    assert total(to_pay) == run.to_pay == D("4960.00")
    assert total(employer) == sum(s.employer_cost for s in slips) == D("540.00")
    assert str(total_row[gross]).startswith("=SUM(")
    assert all(not str(r[0]).startswith("=") for r in body)
    text = b"".join(client.get(f"/admin/attendance/payrun/{run.pk}/export/csv/").streaming_content)
    parsed = list(csv.reader(io.StringIO(text.decode())))
    assert parsed[0][0] == "member" and len(parsed) == 5
    assert any(row[0].startswith("'=HYPERLINK") for row in parsed[1:])


def test_crew_see_only_their_own_lines_and_payslips(event, role, manager, finance, checker):
    mine, theirs = _lines(event, role, manager, 2)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    run = pay_run_create(**_period(event), by=finance)
    pay_run_approve(pay_run=run, by=checker)
    client = Client()
    client.force_login(mine)
    page = client.get("/pay/")
    assert page.status_code == 200 and b"Blankets &amp; Wine" in page.content
    their_line = TimesheetLine.objects.get(user=theirs)
    assert client.post(f"/pay/lines/{their_line.pk}/dispute/", {"reason": "x"}).status_code == 404
    assert client.get(f"/pay/lines/{their_line.pk}/dispute/").status_code == 405
    assert client.get(f"/pay/runs/{run.pk}/").status_code == 200
    client.force_login(UserFactory())  # someone with no payslip in that run
    assert client.get(f"/pay/runs/{run.pk}/").status_code == 404


def test_a_member_disputes_on_the_portal_and_sees_the_answer(event, role, manager):
    [member] = _lines(event, role, manager, 1)
    line = TimesheetLine.objects.get()
    client = Client()
    client.force_login(member)
    answer = client.post(
        f"/pay/lines/{line.pk}/dispute/", {"reason": "I was there 9 hours"}, follow=True
    )
    assert b"Sent to the event manager" in answer.content
    line.refresh_from_db()
    assert line.status == "disputed"
    again = client.post(f"/pay/lines/{line.pk}/dispute/", {"reason": "again"}, follow=True)
    assert b"already disputed" in again.content


@pytest.mark.parametrize("count", [1, 200])
def test_pay_pages_cost_the_same_queries_for_1_and_200_lines(
    event, role, manager, finance, checker, django_assert_max_num_queries, count
):
    _lines(event, role, manager, count)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    run = pay_run_create(**_period(event), by=finance)
    staff = _client(UserFactory(is_staff=True, is_superuser=True))
    pages = {
        # the event page with its pay inline (and every other inline)
        # +1: texts beside the emails; +1: whether it has a manager (warned if not);
        # +1: the run of show.
        # +1: its labour cost.
        f"/admin/attendance/event/{event.pk}/change/": 24,
        # +1: its payouts; +2: rates in force, members missing statutory numbers.
        f"/admin/attendance/payrun/{run.pk}/change/": 18,
        "/admin/attendance/timesheetline/": 9,
    }
    for url, budget in pages.items():
        staff.get(url)  # warm per-process caches (content types)
        with django_assert_max_num_queries(budget):
            assert staff.get(url).status_code == 200, url


@pytest.mark.parametrize("count", [1, 200])
def test_my_pay_costs_the_same_queries_for_1_and_200_lines(
    role, django_assert_max_num_queries, count
):
    member = UserFactory()
    start = timezone.now() - timedelta(days=400)
    events = EventFactory.create_batch(count, starts_at=start, ends_at=start + timedelta(hours=5))
    assignments = EventCrew.objects.bulk_create(
        [EventCrew(event=e, user=member, role=role, status="completed") for e in events]
    )
    TimesheetLine.objects.bulk_create(
        [
            TimesheetLine(
                assignment=a,
                event_id=a.event_id,
                user=member,
                role_name="Stagehand",
                attendance_status="present",
                rule="Day rate KES 1,500.00",
                base_pay=D("1500"),
                amount=D("1500"),
            )
            for a in assignments
        ]
    )
    portal = Client()
    portal.force_login(member)
    portal.get("/pay/")
    with django_assert_max_num_queries(6):  # session, user, lines (count, page), slips, payouts
        page = portal.get("/pay/")
    assert page.status_code == 200
    assert page.content.count(b'class="card pay-line') == min(count, 20)


def test_a_rate_that_cannot_be_paid_is_refused_on_the_crew_role_page_naming_the_field(manager):
    role = role_with("Driver", day_rate=None, hourly_rate=None)
    client = _client(manager)
    page = client.post(
        f"/admin/attendance/crewrole/{role.pk}/change/",
        {
            "name": "Driver",
            "description": "",
            "sort_order": 50,
            "day_rate": "",
            "hourly_rate": "-250",
            "minimum_hours": "6",
            "overtime_after_hours": "",
            "overtime_multiplier": "1.5",
        },
    )
    assert page.status_code == 200  # the form again, not a redirect
    assert b"Hourly rate cannot be negative." in page.content
    role.refresh_from_db()
    assert role.hourly_rate is None


def test_a_worked_member_cannot_be_taken_off_the_crew(event, role, manager):
    from attendance.services.crew.assignments import CrewError, crew_remove

    _lines(event, role, manager, 1)
    assignment = EventCrew.objects.get()
    with pytest.raises(CrewError, match="has a pay line"):
        crew_remove(assignment=assignment, by=manager)
    assert EventCrew.objects.filter(pk=assignment.pk).exists()


def test_end_to_end_complete_dispute_adjust_approve_pay_and_export_over_http(
    event, role, manager, finance, checker, smtp_server, django_capture_on_commit_callbacks
):
    """The brief's story, every step through the pages people use."""
    from attendance.services.ledger import ledger_post

    members = [UserFactory() for _ in range(3)]
    for member in members:
        EventCrewFactory(
            event=event, user=member, role=role, status="confirmed", confirmed_at=event.starts_at
        )
        worked_hours = {"status": "present", "hours_worked": D("6")}
        Attendance.objects.update_or_create(
            event=event,
            user=member,
            defaults={
                **worked_hours,
                "check_in_at": event.call_time,
                "check_out_at": event.call_time + timedelta(hours=6),
            },
        )
    ledger_post(user=members[0], kind="charge", amount="500", description="Lost radio")
    boss = _client(manager)
    # 1. The manager completes the event's crew (the event list's action).
    boss.post(
        "/admin/attendance/event/", {"action": "complete_crew", "_selected_action": [event.pk]}
    )
    assert TimesheetLine.objects.count() == 3
    # 2. A member disputes on the portal.
    line = TimesheetLine.objects.get(user=members[1])
    crew = Client()
    crew.force_login(members[1])
    crew.post(f"/pay/lines/{line.pk}/dispute/", {"reason": "I did the load-out: 8 hours"})
    # 3. The manager adjusts it, then approves the event's lines.
    boss.post(
        f"/admin/attendance/timesheetline/{line.pk}/change/",
        {"decision": "adjust", "new_amount": "1600", "reason": "Load-out confirmed: 8 h"},
    )
    boss.post(
        "/admin/attendance/timesheetline/",
        {
            "action": "approve_lines",
            "_selected_action": list(TimesheetLine.objects.values_list("pk", flat=True)),
        },
    )
    assert TimesheetLine.objects.filter(status="approved").count() == 3
    # 4. Finance draws up the run; another Finance member approves it.
    day = timezone.localtime(event.starts_at).date().isoformat()
    _client(finance).post("/admin/attendance/payrun/add/", {"period_start": day, "period_end": day})
    run = PayRun.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        _client(checker).post(f"/admin/attendance/payrun/{run.pk}/approve/")
    run.refresh_from_db()
    # 1,500 + 1,600 + 1,500 earned, less NSSF, SHIF and housing levy (412.50 + 420 +
    # 412.50); the first member owed 500.
    assert (run.status, run.total, run.to_pay) == ("approved", D("4600.00"), D("2855.00"))
    # 5. The ledger shows the earnings; each payslip arrived.
    earnings = LedgerEntry.objects.filter(kind="earning")
    assert sorted(e.amount for e in earnings) == [D("-1600.00"), D("-1500.00"), D("-1500.00")]
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(m.email for m in members)
    # 6. The XLSX matches.
    body = export_bytes(
        _client(finance),
        f"/admin/attendance/payrun/{run.pk}/export/xlsx/",
        {},
        capture=django_capture_on_commit_callbacks,
    )
    rows = list(load_workbook(io.BytesIO(body))["Payroll"].iter_rows(values_only=True))
    to_pay = rows[0].index("To pay")
    assert sum(D(str(r[to_pay])) for r in rows[1:-1]) == run.to_pay
    page = crew.get(f"/pay/runs/{run.pk}/")
    assert b"KES 1,600.00" in page.content and b"Load-out confirmed" not in page.content
    assert b"Load-out confirmed: 8 h" in crew.get("/pay/").content


def test_the_checker_is_told_a_run_waits_and_sees_every_line_and_payslip_on_its_page(
    event, role, manager, finance, checker
):
    members = _lines(event, role, manager, 2)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    run = pay_run_create(**_period(event), by=finance)
    waiting = EmailNotification.objects.filter(notification_type="pay_run_waiting")
    assert list(waiting.values_list("recipient", flat=True)) == [checker.email]  # not the maker
    message = waiting.get().message
    assert f"/admin/attendance/payrun/{run.pk}/change/" in message and "2" in message
    page = _client(checker).get(f"/admin/attendance/payrun/{run.pk}/change/").content.decode()
    assert "Lines" in page and all(m.get_full_name() in page for m in members)
    pay_run_approve(pay_run=run, by=checker)
    page = _client(checker).get(f"/admin/attendance/payrun/{run.pk}/change/").content.decode()
    assert "Payslips" in page


def test_the_line_page_says_one_thing_per_outcome_in_nairobi_time(event, role, manager):
    import time_machine

    from tests.support.clock import NAIROBI

    _lines(event, role, manager, 1)
    line = TimesheetLine.objects.get()
    client = _client(manager)
    url = f"/admin/attendance/timesheetline/{line.pk}/change/"
    negative = client.post(url, {"decision": "adjust", "new_amount": "-50", "reason": "Oops"})
    text = negative.content.decode()
    assert "cannot pay less than nothing" in text and "was changed successfully" not in text
    # A refusal from the service (a line being posted by a pay run, say) is one message too.
    from attendance.services.pay import timesheets as pay_services

    def refuse(**kwargs):
        raise pay_services.PayError("This line is being paid right now; try again in a minute.")

    import attendance.admin.pay as pay_admin

    original = pay_admin.timesheet_adjust
    pay_admin.timesheet_adjust = refuse
    try:
        page = client.post(
            url, {"decision": "adjust", "new_amount": "10", "reason": "x"}, follow=True
        ).content.decode()
    finally:
        pay_admin.timesheet_adjust = original
    assert "being paid right now" in page and "was changed successfully" not in page
    with time_machine.travel(datetime(2026, 12, 5, 23, 40, tzinfo=NAIROBI), tick=False):
        client.post(url, {"decision": "adjust", "new_amount": "1600", "reason": "Late get-out"})
    page = client.get(url).content.decode()
    assert "05 Dec 2026 23:40" in page  # the history in Nairobi time (20:40 in UTC)
    assert "Stagehand at Blankets &amp; Wine" in page  # the title names the event, not its id
