"""Crew pay end to end through the services: completion, disputes, approvals, pay runs."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from attendance.models import (
    EmailNotification,
    LedgerEntry,
    PayRun,
    PayRunMember,
    TimesheetLine,
)
from attendance.services.crew.followup import crew_complete_event
from attendance.services.ledger import ledger_post
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import (
    PayError,
    timesheet_adjust,
    timesheet_approve,
    timesheet_dispute,
    timesheet_keep,
    timesheet_recalculate,
)
from tests.support.clock import HOURS, nairobi_at
from tests.support.factories import EventFactory, UserFactory
from tests.support.pay import role_with, worked

D = Decimal


@pytest.fixture
def past_event(db):
    starts = timezone.now() - timedelta(hours=12)
    return EventFactory(
        name="Koroga Festival",
        starts_at=starts,
        ends_at=starts + timedelta(hours=8),
        call_time=starts - timedelta(hours=1),
    )


@pytest.fixture
def engineer_role(db):
    return role_with("FOH engineer", day_rate=D("3000"), hourly_rate=D("400"), minimum_hours=D("6"))


@pytest.fixture
def people(db):
    manager = UserFactory(username="manager", is_staff=True)
    finance = UserFactory(username="finance", is_staff=True)
    checker = UserFactory(username="checker", is_staff=True)
    return manager, finance, checker


def complete(event, by):
    done = crew_complete_event(event=event, by=by).completed
    return done


def test_completing_the_crew_works_out_a_line_per_member_from_attendance(
    past_event, engineer_role, people
):
    manager, *_ = people
    amina, baraka = UserFactory(username="amina"), UserFactory(username="baraka")
    worked(past_event, amina, engineer_role, "9")
    worked(past_event, baraka, engineer_role, "3", status="late")
    assert complete(past_event, manager) == 2
    lines = {line.user.username: line for line in TimesheetLine.objects.select_related("user")}
    assert lines["amina"].amount == D("3600.00")  # 9 h x 400 beats the day rate
    assert lines["baraka"].amount == D("3000.00")
    assert lines["baraka"].attendance_status == "late"
    assert "the better of day rate and hourly" in lines["amina"].rule
    assert lines["amina"].changes.get().kind == "computed"
    assert lines["amina"].changed_by == manager
    # Completing again makes no second line.
    complete(past_event, manager)
    assert TimesheetLine.objects.count() == 2


def test_a_role_without_a_rate_still_completes_and_its_line_says_what_to_fix(past_event, people):
    manager, *_ = people
    role = role_with("Runner", day_rate=None, hourly_rate=None)
    member = UserFactory()
    worked(past_event, member, role, "5")
    complete(past_event, manager)
    line = TimesheetLine.objects.get()
    assert line.amount == 0
    assert "set one on the crew role" in line.rule
    role.hourly_rate = D("250")
    role.save()
    assert timesheet_recalculate(line=line, by=manager) is True
    line.refresh_from_db()
    assert line.amount == D("1250.00")
    assert [c.kind for c in line.changes.all()] == ["computed", "recalculated"]


def test_dispute_answer_and_approval_keep_who_when_and_why(past_event, engineer_role, people):
    manager, *_ = people
    member = UserFactory()
    worked(past_event, member, engineer_role, "9")
    complete(past_event, manager)
    line = TimesheetLine.objects.get()
    timesheet_dispute(line=line, user=member, reason="I stayed until 02:00 for the get-out")
    line.refresh_from_db()
    assert line.status == "disputed"
    # A disputed line waits for its answer: approving skips it.
    assert timesheet_approve(lines=TimesheetLine.objects.all(), by=manager) == (0, 1)
    timesheet_adjust(line=line, by=manager, amount="4400", reason="Get-out confirmed: 11 h")
    line.refresh_from_db()
    assert (line.status, line.amount, line.adjustment) == ("open", D("4400.00"), D("800.00"))
    assert line.dispute_answer == "Get-out confirmed: 11 h"
    assert timesheet_approve(lines=TimesheetLine.objects.all(), by=manager) == (1, 0)
    kinds = [(c.kind, c.changed_by.username, c.reason) for c in line.changes.all()]
    assert kinds[1:] == [
        ("disputed", member.username, "I stayed until 02:00 for the get-out"),
        ("adjusted", "manager", "Get-out confirmed: 11 h"),
        ("approved", "manager", ""),
    ]
    assert line.changes.get(kind="adjusted").changes["amount"] == ["3600.00", "4400.00"]


def test_a_dispute_is_refused_after_the_window_and_for_someone_elses_line(
    past_event, engineer_role, people, settings
):
    manager, *_ = people
    member, other = UserFactory(), UserFactory()
    worked(past_event, member, engineer_role, "6")
    complete(past_event, manager)
    line = TimesheetLine.objects.get()
    with pytest.raises(PayError, match="not your line"):
        timesheet_dispute(line=line, user=other, reason="mine?")
    with pytest.raises(PayError, match="Say what is wrong"):
        timesheet_dispute(line=line, user=member, reason="   ")
    later = line.created_at + timedelta(days=settings.PAY_DISPUTE_WINDOW_DAYS, minutes=1)
    with pytest.raises(PayError, match="Disputes for this line closed on"):
        timesheet_dispute(line=line, user=member, reason="too late", now=later)
    line.refresh_from_db()
    assert line.status == "open"


def test_keeping_the_amount_needs_a_reason_and_answers_the_dispute(
    past_event, engineer_role, people
):
    manager, *_ = people
    member = UserFactory()
    worked(past_event, member, engineer_role, "6")
    complete(past_event, manager)
    line = TimesheetLine.objects.get()
    timesheet_dispute(line=line, user=member, reason="Should be more")
    with pytest.raises(PayError, match="Say why"):
        timesheet_keep(line=line, by=manager, reason="")
    timesheet_keep(line=line, by=manager, reason="Checked the sign-out sheet: 6 h")
    line.refresh_from_db()
    assert (line.status, line.amount, line.dispute_answer) == (
        "open",
        D("3000.00"),
        "Checked the sign-out sheet: 6 h",
    )


@pytest.mark.parametrize("amount", ["-5", "abc", "100.001", "99999999"])
def test_an_adjustment_that_cannot_be_paid_is_refused_and_nothing_changes(
    past_event, engineer_role, people, amount
):
    manager, *_ = people
    worked(past_event, UserFactory(), engineer_role, "6")
    complete(past_event, manager)
    line = TimesheetLine.objects.get()
    with pytest.raises(PayError):
        timesheet_adjust(line=line, by=manager, amount=amount, reason="typo")
    line.refresh_from_db()
    assert line.amount == D("3000.00") and line.changes.count() == 1


def _approved_lines(event, role, people, members_hours):
    manager, *_ = people
    members = []
    for hours in members_hours:
        member = UserFactory()
        worked(event, member, role, hours)
        members.append(member)
    complete(event, manager)
    timesheet_approve(lines=TimesheetLine.objects.filter(event=event), by=manager)
    return members


def _period(event):
    day = timezone.localtime(event.starts_at).date()
    return {"period_start": day - timedelta(days=1), "period_end": day + timedelta(days=1)}


def test_the_maker_cannot_approve_the_pay_run_and_nothing_is_posted(
    past_event, engineer_role, people
):
    manager, finance, checker = people
    [member] = _approved_lines(past_event, engineer_role, people, ["6"])
    run = pay_run_create(**_period(past_event), by=finance)
    # The manager set the amounts (completion); finance drew the run up: neither may approve.
    for who in (manager, finance):
        with pytest.raises(PayError, match="Another Finance member must approve it"):
            pay_run_approve(pay_run=run, by=who)
    assert not LedgerEntry.objects.exists()
    assert PayRun.objects.get().status == "draft"
    approval = pay_run_approve(pay_run=run, by=checker)
    assert (approval.members, approval.posted) == (1, 1)
    entry = LedgerEntry.objects.get(kind="earning")
    assert (entry.amount, entry.user) == (D("-3000.00"), member)


def test_earnings_are_netted_against_what_the_member_owed(past_event, engineer_role, people):
    _manager, finance, checker = people
    [member] = _approved_lines(past_event, engineer_role, people, ["6"])
    ledger_post(user=member, kind="charge", amount="2000", description="Uniform and a lost cable")
    run = pay_run_create(**_period(past_event), by=finance)
    pay_run_approve(pay_run=run, by=checker)
    slip = PayRunMember.objects.get()
    # Earned 3,000 gross; NSSF 180, SHIF 300 (its minimum) and housing levy 45 kept: net
    # 2,475. They owed 2,000: the company owes them 475.
    assert (slip.earned, slip.withheld, slip.net) == (D("3000.00"), D("525.00"), D("2475.00"))
    assert (slip.balance_before, slip.deducted, slip.to_pay) == (
        D("2000.00"),
        D("2000.00"),
        D("475.00"),
    )
    assert slip.balance_after == D("-475.00")
    run.refresh_from_db()
    assert (run.status, run.total, run.to_pay) == ("approved", D("3000.00"), D("475.00"))


def test_a_line_corrected_after_payment_is_paid_the_difference_in_the_next_run(
    past_event, engineer_role, people
):
    manager, finance, checker = people
    [member] = _approved_lines(past_event, engineer_role, people, ["6"])
    pay_run_approve(pay_run=pay_run_create(**_period(past_event), by=finance), by=checker)
    line = TimesheetLine.objects.get()
    assert (line.status, line.paid_amount) == ("paid", D("3000.00"))
    timesheet_adjust(line=line, by=manager, amount="3300", reason="Transport forgotten")
    line.refresh_from_db()
    assert line.status == "open"  # needs approving again
    with pytest.raises(PayError, match="No approved timesheet lines"):
        pay_run_create(**_period(past_event), by=finance)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    second = pay_run_create(**_period(past_event), by=finance)
    assert second.total == D("300.00")
    pay_run_approve(pay_run=second, by=checker)
    pay = LedgerEntry.objects.exclude(kind="deduction").order_by("pk")
    assert list(pay.values_list("kind", "amount")) == [
        ("earning", D("-3000.00")),
        ("adjustment", D("-300.00")),
    ]
    # The second run deducts what the month's 3,300 needs less what the first took: NSSF
    # 198 - 180, SHIF still its minimum 300, housing levy 49.50 - 45.
    kept = LedgerEntry.objects.filter(kind="deduction").order_by("pk")
    assert list(kept.values_list("amount", flat=True)) == [
        D("180.00"),
        D("300.00"),
        D("45.00"),
        D("18.00"),
        D("4.50"),
    ]
    member.profile.refresh_from_db()
    assert member.profile.balance == D("-2752.50")  # 3,300 less 547.50, as in one run


def test_a_run_whose_lines_changed_since_it_was_drawn_up_is_not_approved(
    past_event, engineer_role, people
):
    _manager, finance, checker = people
    _approved_lines(past_event, engineer_role, people, ["6"])
    run = pay_run_create(**_period(past_event), by=finance)
    timesheet_adjust(line=TimesheetLine.objects.get(), by=checker, amount="10", reason="oops")
    with pytest.raises(PayError, match="changed since the run was drawn up"):
        pay_run_approve(pay_run=run, by=UserFactory(is_staff=True))
    assert not LedgerEntry.objects.exists()


def test_payslips_go_through_the_outbox_to_a_real_smtp_server_with_both_parts(
    past_event, engineer_role, people, smtp_server, django_capture_on_commit_callbacks
):
    _manager, finance, checker = people
    [member] = _approved_lines(past_event, engineer_role, people, ["9"])
    run = pay_run_create(**_period(past_event), by=finance)
    with django_capture_on_commit_callbacks(execute=True):
        pay_run_approve(pay_run=run, by=checker)
    email = EmailNotification.objects.get(notification_type="payslip")
    assert email.status == "sent" and email.user == member
    [message] = smtp_server.messages
    assert message["To"] == member.email
    # 3,600 gross less NSSF 216, SHIF 300 and housing levy 54.
    assert "Your payslip" in message["Subject"] and "KES 3,030.00" in message["Subject"]
    parts = {
        part.get_content_type(): part.get_payload(decode=True)
        for part in message.walk()
        if not part.is_multipart()
    }
    assert parts["application/pdf"].startswith(b"%PDF")  # the payslip, attached
    for body in (parts["text/plain"].decode(), parts["text/html"].decode()):
        assert "Koroga Festival" in body and "KES 3,600.00" in body and "KES 3,030.00" in body
        assert "SHIF" in body and "KES 300.00" in body
        assert f"/pay/runs/{run.pk}/" in body


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_finance_members_approving_at_once_post_each_earning_once():
    starts = timezone.now() - timedelta(hours=12)
    event = EventFactory(starts_at=starts, ends_at=starts + timedelta(hours=8))
    role = role_with("Stagehand", day_rate=D("1500"))
    manager = UserFactory(username="mgr", is_staff=True)
    drafter = UserFactory(username="drafter", is_staff=True)
    approvers = [UserFactory(username=f"fin{n}", is_staff=True) for n in range(2)]
    members = [UserFactory() for _ in range(20)]
    for member in members:
        worked(event, member, role, "6")
    crew_complete_event(event=event, by=manager)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    run = pay_run_create(**_period(event), by=drafter)
    barrier = threading.Barrier(2)
    outcomes = []

    def approve(who):
        try:
            barrier.wait()
            pay_run_approve(pay_run=run, by=who)
            outcomes.append("approved")
        except PayError as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(who,)) for who in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The second waited for the first's lock, then found the run being approved (or done).
    assert outcomes.count("approved") == 1
    [refused] = [o for o in outcomes if o != "approved"]
    assert refused.startswith("This pay run is") and "already" in refused
    assert LedgerEntry.objects.filter(kind="earning").count() == 20
    assert PayRunMember.objects.count() == 20
    for member in members:
        member.profile.refresh_from_db()
        assert member.profile.balance == D("-1087.50")  # 1,500 less 90 + 300 + 22.50


def test_a_member_posted_twice_after_a_worker_died_is_paid_once_and_lines_stay_frozen(
    past_event, engineer_role, people
):
    from attendance.services.pay.runs import pay_run_approve_member, pay_run_begin_approval

    manager, finance, checker = people
    members = _approved_lines(past_event, engineer_role, people, ["6", "7"])
    run = pay_run_create(**_period(past_event), by=finance)
    targets = pay_run_begin_approval(pay_run=run, by=checker)
    assert sorted(pk for pk, _name in targets) == sorted(m.pk for m in members)
    run.refresh_from_db()
    assert run.status == "approving"
    # While it is being approved nobody changes its lines.
    line = TimesheetLine.objects.get(user=members[1])
    with pytest.raises(PayError, match="being paid right now"):
        timesheet_adjust(line=line, by=manager, amount="1", reason="late change")
    first = pay_run_approve_member(pay_run=run, user_id=members[0].pk, by=checker)
    again = pay_run_approve_member(pay_run=run, user_id=members[0].pk, by=checker)
    assert first.pk == again.pk
    assert LedgerEntry.objects.filter(user=members[0], kind="earning").count() == 1
    assert LedgerEntry.objects.filter(user=members[0]).count() == 4  # and 3 deductions, once
    run.refresh_from_db()
    assert run.status == "approving"  # one member still to post
    pay_run_approve_member(pay_run=run, user_id=members[1].pk, by=checker)
    run.refresh_from_db()
    assert (run.status, run.total) == ("approved", D("6000.00"))
    assert PayRunMember.objects.filter(pay_run=run).count() == 2


@pytest.mark.parametrize("hour", HOURS)
@pytest.mark.parametrize("crew", [1, 60])
def test_completing_a_big_crew_costs_the_same_queries_as_a_small_one(
    engineer_role, people, django_assert_max_num_queries, crew, hour
):
    manager, *_ = people
    with nairobi_at(hour):
        starts = timezone.now() - timedelta(hours=12)
        event = EventFactory(
            starts_at=starts, ends_at=starts + timedelta(hours=8), call_time=starts
        )
        for _ in range(crew):
            worked(event, UserFactory(), engineer_role, "8")
        # +3 since members still checked in are checked out at the end: how many are (for
        # the message), the event, and those rows (one bulk write when there are any).
        # SQLite takes at most 999 parameters a statement, so Django splits 60 lines' bulk
        # insert in two there: one statement more, whatever the crew's size beyond that.
        split = 1 if connection.vendor == "sqlite" and crew > 50 else 0
        # +1: the gazetted public holidays of the events' dates (one query for them all).
        with django_assert_max_num_queries(16 + split):
            assert complete(event, manager) == crew
    assert TimesheetLine.objects.count() == crew
