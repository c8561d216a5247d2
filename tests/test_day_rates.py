"""Sunday and public-holiday rates: the rule, Kenya's holidays and gazetted extra days, the
pay line that says which applied, and the admin where Finance keeps the extra days."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest
import time_machine
from django.contrib.auth.models import Group

from attendance.models import PublicHoliday, TimesheetLine
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.holidays import day_of, holidays_in
from attendance.services.pay.rules import (
    Allowances,
    Day,
    PayRuleError,
    Rates,
    check_rates,
    pay_for,
)
from tests.support.auth import log_in_staff
from tests.support.clock import NAIROBI
from tests.support.factories import EventFactory, UserFactory
from tests.support.pay import role_with, worked

# The payroll notes' illustration: a day rate of 2,000 over an 8-hour normal day.
DAY = Rates(
    day_rate=D("2000"),
    hourly_rate=D("250"),
    minimum_hours=D("8"),
    overtime_after_hours=D("8"),
    overtime_multiplier=D("1.5"),
    sunday_multiplier=D("2"),
    holiday_multiplier=D("2"),
)
SUNDAY = Day(sunday=True)
JAMHURI = Day(holiday="Jamhuri Day")


def _pay(day, hours="8", **kwargs):
    return pay_for(rates=DAY, hours=D(hours), attendance_status="present", day=day, **kwargs)


def test_a_full_day_on_a_sunday_or_a_public_holiday_is_paid_twice_the_day_rate():
    assert _pay(Day()).total == D("2000.00")
    assert _pay(SUNDAY).total == D("4000.00")
    holiday = _pay(JAMHURI)
    assert holiday.total == D("4000.00")
    assert holiday.rule.startswith("Public holiday (Jamhuri Day): 2x. Day rate KES 2,000.00 x 2x")
    assert _pay(SUNDAY).rule.startswith("Sunday: 2x.")
    assert not _pay(Day()).rule.startswith(("Sunday", "Public"))


def test_overtime_on_those_days_is_at_the_better_of_the_two_multipliers():
    # Weekday: 3 h past the normal day at 1.5 x 250 = 1,125 (the notes' illustration).
    assert _pay(Day(), hours="11").overtime_pay == D("1125.00")
    # Sunday: the wage order pays overtime on the rest day at twice the rate.
    sunday = _pay(SUNDAY, hours="11")
    assert (sunday.base_pay, sunday.overtime_pay) == (D("4000.00"), D("1500.00"))
    assert "overtime at 2x" in sunday.rule


def test_a_holiday_on_a_sunday_pays_the_better_multiplier_not_both():
    rates = Rates(day_rate=D("2000"), sunday_multiplier=D("1.5"), holiday_multiplier=D("2"))
    both = pay_for(
        rates=rates,
        hours=D("8"),
        attendance_status="present",
        day=Day(sunday=True, holiday="Jamhuri Day"),
    )
    assert both.total == D("4000.00") and both.rule.startswith("Public holiday (Jamhuri Day)")


def test_agreed_fees_and_allowances_are_not_multiplied():
    fee = _pay(SUNDAY, agreed_fee=D("5000"), allowances=Allowances(transport=D("300")))
    assert (fee.base_pay, fee.allowances, fee.total) == (D("5000.00"), D("300.00"), D("5300.00"))
    by_rate = _pay(JAMHURI, allowances=Allowances(meals=D("200")))
    assert by_rate.total == D("4200.00")


def test_a_multiplier_under_1_or_over_5_is_refused_naming_it():
    for field, value in (("sunday_multiplier", "0.5"), ("holiday_multiplier", "6")):
        rates = Rates(day_rate=D("2000"), **{field: D(value)})
        with pytest.raises(PayRuleError) as refused:
            check_rates(rates)
        assert refused.value.field in ("Sunday multiplier", "public holiday multiplier")


def test_kenyas_holidays_the_observed_monday_and_a_gazetted_day(db):
    assert day_of(date(2026, 12, 12)) == Day(sunday=False, holiday="Jamhuri Day")
    assert day_of(date(2026, 12, 6)) == Day(sunday=True)
    assert day_of(date(2026, 12, 8)) == Day()
    # Jamhuri Day 2027 falls on a Sunday: the Monday after is the holiday too.
    assert day_of(date(2027, 12, 12)) == Day(sunday=True, holiday="Jamhuri Day")
    assert day_of(date(2027, 12, 13)).holiday == "Jamhuri Day (observed)"
    # Idd-ul-Azha is not a general public holiday unless gazetted.
    assert day_of(date(2026, 5, 27)) == Day()
    PublicHoliday.objects.create(date=date(2026, 5, 27), name="Idd-ul-Azha (gazetted)")
    assert day_of(date(2026, 5, 27)).holiday == "Idd-ul-Azha (gazetted)"
    assert (date(2026, 5, 27), "Idd-ul-Azha (gazetted)") in holidays_in(2026)


@pytest.fixture
def after_jamhuri():
    with time_machine.travel(datetime(2026, 12, 14, 12, tzinfo=NAIROBI), tick=True):
        yield


def _line_for(day, role, member, manager):
    starts = datetime(*day, 14, tzinfo=NAIROBI)
    event = EventFactory(
        starts_at=starts, ends_at=starts + timedelta(hours=8), call_time=starts - timedelta(hours=1)
    )
    worked(event, member, role, "8")
    crew_complete_event(event=event, by=manager)
    return TimesheetLine.objects.get(event=event, user=member)


def test_a_show_on_jamhuri_day_a_sunday_and_a_weekday_each_pay_as_the_role_says(after_jamhuri, db):
    manager = UserFactory(is_staff=True)
    role = role_with(
        "Rigger",
        day_rate=D("2000"),
        hourly_rate=None,
        minimum_hours=D(0),
        sunday_multiplier=D("2"),
        holiday_multiplier=D("2.5"),
    )
    member = UserFactory()
    holiday = _line_for((2026, 12, 12), role, member, manager)
    sunday = _line_for((2026, 12, 6), role, member, manager)
    weekday = _line_for((2026, 12, 8), role, member, manager)
    assert (holiday.amount, sunday.amount, weekday.amount) == (
        D("5000.00"),
        D("4000.00"),
        D("2000.00"),
    )
    assert holiday.rule.startswith("Public holiday (Jamhuri Day): 2.5x.")
    assert sunday.rule.startswith("Sunday: 2x.")
    assert weekday.rule == "Day rate KES 2,000.00"


def test_a_day_finance_gazettes_pays_as_a_holiday_once_recalculated(after_jamhuri, db):
    from attendance.services.pay.timesheets import timesheet_recalculate

    manager = UserFactory(is_staff=True)
    role = role_with("Rigger", day_rate=D("2000"), hourly_rate=None, minimum_hours=D(0))
    role.holiday_multiplier = D("2")
    role.save()
    line = _line_for((2026, 12, 9), role, UserFactory(), manager)
    assert line.amount == D("2000.00")
    PublicHoliday.objects.create(date=date(2026, 12, 9), name="State funeral")
    assert timesheet_recalculate(line=line, by=manager)
    line.refresh_from_db()
    assert line.amount == D("4000.00") and "Public holiday (State funeral)" in line.rule


def test_finance_adds_a_gazetted_day_and_managers_only_see_them(client, db):
    finance = UserFactory(is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    manager = UserFactory(is_staff=True)
    manager.groups.add(Group.objects.get(name="Event managers"))
    url = "/admin/attendance/publicholiday/"
    staff = log_in_staff(client, finance)
    with time_machine.travel(datetime(2026, 12, 1, 12, tzinfo=NAIROBI), tick=True):
        page = staff.get(url)
    html = page.content.decode()
    assert "Public holidays in 2026" in html and "Sat 12 Dec: Jamhuri Day" in html
    assert "Public holidays in 2027" in html
    added = staff.post(
        f"{url}add/",
        {"date": "2026-12-09", "name": "State funeral", "gazette_notice": "Gazette Notice 123"},
    )
    assert added.status_code == 302
    assert PublicHoliday.objects.get().added_by == finance
    other = log_in_staff(client, manager)
    assert other.get(url).status_code == 200
    assert other.get(f"{url}add/").status_code == 403


def test_a_multiplier_that_cannot_be_paid_is_refused_on_the_role_page(client, db):
    role = role_with("Driver", day_rate=D("1500"), hourly_rate=None)
    staff = log_in_staff(client, UserFactory(is_staff=True, is_superuser=True))
    page = staff.post(
        f"/admin/attendance/crewrole/{role.pk}/change/",
        {
            "name": "Driver",
            "description": "",
            "sort_order": 50,
            "day_rate": "1500",
            "hourly_rate": "",
            "minimum_hours": "0",
            "overtime_after_hours": "",
            "overtime_multiplier": "1.5",
            "sunday_multiplier": "0.5",
            "holiday_multiplier": "2",
        },
    )
    assert page.status_code == 200
    assert b"The Sunday multiplier must be 1 to 5." in page.content
    role.refresh_from_db()
    assert role.sunday_multiplier == 1
