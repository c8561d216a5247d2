"""Statutory deductions in pay runs: worked out on the member's month, trued up run by run,
on the ledger one entry each, on the payslip with their working, employer costs by event."""

import threading
from datetime import datetime
from decimal import Decimal as D

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum
from django.test import Client

from attendance.models import (
    LedgerEntry,
    PayRun,
    PayRunLine,
    PayRunMember,
    StatutoryDeduction,
    StatutoryProfile,
    StatutoryRates,
    TimesheetLine,
)
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import PayError, timesheet_approve
from attendance.services.pay.words import english
from tests.support.auth import log_in_staff
from tests.support.clock import NAIROBI
from tests.support.factories import UserFactory
from tests.support.pay import paid_run as _run
from tests.support.pay import worked_on as _worked_on

MID_MARCH = datetime(2026, 3, 20, 12, 0, tzinfo=NAIROBI)


@pytest.fixture
def march():
    with time_machine.travel(MID_MARCH, tick=True):
        yield


@pytest.fixture
def people(db):
    return tuple(UserFactory(username=n, is_staff=True) for n in ("mgr", "drafter", "checker"))


def _taken(member):
    rows = StatutoryDeduction.objects.filter(user=member).values("kind").annotate(t=Sum("amount"))
    return {row["kind"]: row["t"] for row in rows}


def test_two_runs_in_a_month_deduct_what_one_run_of_the_same_total_does(march, people):
    twice, once = UserFactory(), UserFactory()
    _worked_on(twice, 3, "25000", people)
    first = _run(people, 3, 3)
    _worked_on(twice, 5, "35000", people)
    second = _run(people, 5, 5)
    _worked_on(once, 7, "25000", people)
    _worked_on(once, 9, "35000", people)
    _run(people, 7, 9)
    # 60,000 in March, the worked example: NSSF 3,600, SHIF 1,650, housing levy 900,
    # PAYE 8,538.35; the company adds NSSF 3,600 and housing levy 900.
    expected = {
        "nssf": D("3600.00"),
        "shif": D("1650.00"),
        "ahl": D("900.00"),
        "paye": D("8538.35"),
        "employer_nssf": D("3600.00"),
        "employer_ahl": D("900.00"),
    }
    assert _taken(twice) == _taken(once) == expected
    for member in (twice, once):
        member.profile.refresh_from_db()
        assert member.profile.balance == D("-45311.65")
    # The first run took 25,000's figures; the second only what the month still needed.
    slip_one = PayRunMember.objects.get(pay_run=first, user=twice)
    slip_two = PayRunMember.objects.get(pay_run=second, user=twice)
    assert slip_one.withheld + slip_two.withheld == D("14688.35")
    assert slip_two.net == D("35000.00") - slip_two.withheld
    assert any("earlier pay runs this month" in english(step) for step in slip_two.working)
    assert {PayRun.objects.get(pk=r.pk).pay_month.isoformat() for r in (first, second)} == {
        "2026-03-01"
    }


def test_a_contractor_pays_withholding_tax_once_the_months_fees_reach_the_threshold(march, people):
    dj = UserFactory()
    StatutoryProfile.objects.create(user=dj, classification="contractor", kra_pin="A012345678Z")
    _worked_on(dj, 3, "20000", people)
    first = _run(people, 3, 3)
    assert PayRunMember.objects.get(pay_run=first).withheld == 0  # under 24,000
    _worked_on(dj, 5, "10000", people)
    second = _run(people, 5, 5)
    # 30,000 for the month: 5 % of all of it, taken by the run that crossed the line.
    slip = PayRunMember.objects.get(pay_run=second)
    assert (slip.withheld, slip.net, slip.employer_cost) == (D("1500.00"), D("8500.00"), 0)
    assert _taken(dj) == {"wht": D("1500.00")}
    assert LedgerEntry.objects.get(kind="deduction").description == "Withholding tax for March 2026"


def test_a_secondary_employment_gets_no_personal_relief(march, people):
    moonlighter = UserFactory()
    StatutoryProfile.objects.create(user=moonlighter, secondary_employment=True)
    _worked_on(moonlighter, 3, "8000", people)
    run = _run(people, 3, 3)
    slip = PayRunMember.objects.get(pay_run=run)
    assert slip.secondary and slip.classification == "employee"
    assert _taken(moonlighter)["paye"] > 0  # the main employer gives the relief
    assert any("no personal relief" in english(step) for step in slip.working)


def test_the_ledger_explains_the_net_and_what_was_owed_comes_off_it(march, people):
    from attendance.services.ledger import ledger_post

    member = UserFactory()
    ledger_post(user=member, kind="charge", amount="1000", description="Lost radio")
    _worked_on(member, 3, "8000", people)
    run = _run(people, 3, 3)
    slip = PayRunMember.objects.get(pay_run=run)
    # 8,000 less NSSF 480, SHIF 300, housing levy 120: net 7,100; less the 1,000 owed.
    assert (slip.net, slip.deducted, slip.to_pay) == (D("7100.00"), D("1000.00"), D("6100.00"))
    entries = LedgerEntry.objects.filter(user=member).exclude(kind="charge")
    assert sorted(entries.values_list("kind", "amount")) == [
        ("deduction", D("120.00")),
        ("deduction", D("300.00")),
        ("deduction", D("480.00")),
        ("earning", D("-8000.00")),
    ]
    assert sum(e.amount for e in entries) == -slip.net
    assert slip.balance_after == D("-6100.00")
    run.refresh_from_db()
    assert run.to_pay == D("6100.00")


def test_the_payslip_shows_each_deduction_the_employer_costs_and_the_working(march, people):
    member = UserFactory()
    _worked_on(member, 3, "60000", people)
    run = _run(people, 3, 3)
    client = Client()
    client.force_login(member)
    page = client.get(f"/pay/runs/{run.pk}/").content.decode()
    for text in (
        "Gross pay",
        "KES 60,000.00",
        "PAYE",
        "KES 8,538.35",
        "SHIF",
        "KES 1,650.00",
        "Housing levy",
        "NSSF",
        "Net pay",
        "KES 45,311.65",
        "NSSF (employer)",
        "How the deductions were worked out",
        "Taxable pay",
        "March 2026",
    ):
        assert text in page, text
    client.force_login(UserFactory())
    assert client.get(f"/pay/runs/{run.pk}/").status_code == 404


def test_employer_costs_are_split_over_the_events_by_pay(march, people):
    member = UserFactory()
    small = _worked_on(member, 7, "25000", people)
    large = _worked_on(member, 9, "35000", people)
    _run(people, 7, 9)
    by_event = dict(
        PayRunLine.objects.values("line__event")
        .annotate(c=Sum("employer_cost"))
        .values_list("line__event", "c")
    )
    # 4,500 of employer costs on 60,000: 25/60 and 35/60 of it.
    assert by_event == {small.pk: D("1875.00"), large.pk: D("2625.00")}
    kept = PayRunLine.objects.aggregate(w=Sum("withheld"))["w"]
    assert kept == PayRunMember.objects.get().withheld
    # The event's page says what its crew cost.
    from attendance.services.pay.deductions import event_labour_cost

    cost = event_labour_cost(large.pk)
    assert (cost.paid, cost.employer, cost.total) == (D("35000"), D("2625"), D("37625"))
    staff = log_in_staff(Client(), UserFactory(is_staff=True, is_superuser=True))
    page = staff.get(f"/admin/attendance/event/{large.pk}/change/").content.decode()
    assert "KES 35,000.00 gross pay + KES 2,625.00 employer" in page


def test_a_new_month_starts_afresh(people):
    member = UserFactory()
    with time_machine.travel(MID_MARCH, tick=True):
        _worked_on(member, 3, "25000", people)
        _run(people, 3, 3)
    with time_machine.travel(datetime(2026, 4, 20, 12, tzinfo=NAIROBI), tick=True):
        _worked_on(member, 5, "8000", people, month=4)
        april = _run(people, 5, 5, month=4)
    slip = PayRunMember.objects.get(pay_run=april)
    # April's 8,000 alone: NSSF 480, SHIF 300, housing levy 120 (the March pay is not in it).
    assert slip.withheld == D("900.00")
    assert StatutoryDeduction.objects.filter(month="2026-04-01").count() == 5


def test_a_rate_row_added_later_never_changes_a_payslip(march, people):
    member = UserFactory()
    _worked_on(member, 3, "8000", people)
    run = _run(people, 3, 3)
    slip = PayRunMember.objects.get(pay_run=run)
    row = slip.statutory_rates
    assert row.valid_from.isoformat() == "2026-02-01"
    newer = StatutoryRates.objects.get(pk=row.pk)
    newer.pk, newer.valid_from, newer.shif_minimum = None, datetime(2026, 4, 1).date(), D(500)
    newer.save()
    slip.refresh_from_db()
    assert (slip.statutory_rates_id, slip.withheld) == (row.pk, D("900.00"))


def test_approval_is_refused_when_no_rates_are_in_force(march, people):
    member = UserFactory()
    _worked_on(member, 3, "8000", people)
    StatutoryRates.objects.all().delete()
    _manager, drafter, checker = people
    day = datetime(2026, 3, 3).date()
    run = pay_run_create(period_start=day, period_end=day, by=drafter)
    with pytest.raises(PayError, match="No statutory rates are in force on 20 Mar 2026"):
        pay_run_approve(pay_run=run, by=checker)
    assert not LedgerEntry.objects.exists()


def test_members_missing_numbers_are_listed_before_approval(march, people):
    from django.contrib.auth.models import Group

    listed, complete = UserFactory(first_name="Wanjiku"), UserFactory(first_name="Otieno")
    StatutoryProfile.objects.create(
        user=complete,
        kra_pin="A012345678Z",
        id_number="12345678",
        nssf_number="200012345",
        shif_number="CR1234567",
    )
    for member in (listed, complete):
        _worked_on(member, 3, "8000", people)
    _manager, drafter, checker = people
    day = datetime(2026, 3, 3).date()
    run = pay_run_create(period_start=day, period_end=day, by=drafter)
    checker.groups.add(Group.objects.get(name="Finance"))
    page = log_in_staff(Client(), checker).get(f"/admin/attendance/payrun/{run.pk}/change/")
    html = page.content.decode()
    assert 'id="numbers-missing"' in html
    assert "1 member in this run has statutory numbers missing" in html
    assert "KRA PIN, ID number, NSSF number, SHA / SHIF number" in html
    assert "Otieno" not in html.split('id="numbers-missing"')[1].split("</div>")[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_approved_at_once_for_one_member_still_add_up_to_the_month():
    people = tuple(UserFactory(username=n, is_staff=True) for n in ("mgr", "drafter", "c0"))
    other_checker = UserFactory(username="c1", is_staff=True)
    member = UserFactory()
    with time_machine.travel(MID_MARCH, tick=True):
        _worked_on(member, 3, "25000", people)
        _worked_on(member, 5, "35000", people)
        _manager, drafter, _checker = people
        runs = [
            pay_run_create(
                period_start=datetime(2026, 3, d).date(),
                period_end=datetime(2026, 3, d).date(),
                by=drafter,
            )
            for d in (3, 5)
        ]
        barrier = threading.Barrier(2)
        errors = []

        def approve(run, who):
            try:
                barrier.wait()
                pay_run_approve(pay_run=run, by=who)
            except Exception as error:
                errors.append(error)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=approve, args=(run, who))
            for run, who in zip(runs, (people[2], other_checker), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    # Whichever went first, the second saw it: the month's figures for 60,000, once.
    assert _taken(member)["paye"] == D("8538.35")
    assert _taken(member)["shif"] == D("1650.00")
    member.profile.refresh_from_db()
    assert member.profile.balance == D("-45311.65")


def test_a_correction_that_cuts_the_months_pay_gives_back_what_was_overdeducted(march, people):
    from attendance.services.pay.timesheets import timesheet_adjust

    manager, *_ = people
    member = UserFactory()
    _worked_on(member, 3, "60000", people)
    _run(people, 3, 3)
    line = TimesheetLine.objects.get(user=member)
    timesheet_adjust(line=line, by=manager, amount="8000", reason="Booked for one day, not 7.5")
    timesheet_approve(lines=TimesheetLine.objects.filter(pk=line.pk), by=manager)
    second = _run(people, 3, 3)
    slip = PayRunMember.objects.get(pay_run=second)
    # The month is now 8,000: NSSF 480, SHIF 300, housing levy 120, no PAYE. The rest of
    # what the first run kept comes back, each as an adjustment in the member's favour.
    assert _taken(member) == {
        "nssf": D("480.00"),
        "shif": D("300.00"),
        "ahl": D("120.00"),
        "paye": D("0.00"),
        "employer_nssf": D("480.00"),
        "employer_ahl": D("120.00"),
    }
    refunds = LedgerEntry.objects.filter(kind="adjustment", amount__lt=0).exclude(
        description__startswith="Pay correction"
    )
    assert sorted(refunds.values_list("amount", flat=True)) == [
        D("-8538.35"),
        D("-3120.00"),
        D("-1350.00"),
        D("-780.00"),
    ]
    assert slip.to_pay == 0 and slip.withheld == D("-13788.35")
    member.profile.refresh_from_db()
    assert member.profile.balance == D("-7100.00")  # 8,000 less 900, as if paid once
    assert PayRunLine.objects.get(pay_run=second).employer_cost == D("-3900.00")  # 4,500 less 600
