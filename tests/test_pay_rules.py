"""Hours into pay: the arithmetic rules, proven over many values (no database)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attendance.services.pay.rules import (
    Allowances,
    PayRuleError,
    Rates,
    cents,
    check_rates,
    pay_for,
)

D = Decimal
money = st.decimals(min_value=0, max_value=50_000, places=2)
hours = st.decimals(min_value=0, max_value=24, places=2)
SHOW = Rates(day_rate=D("3000"), hourly_rate=D("400"), minimum_hours=D("6"))


def test_the_example_of_the_brief_day_rate_or_hourly_with_a_minimum_call():
    # "KES 3,000 per show or KES 400 per hour, 6 hours minimum": the better of the two.
    short = pay_for(rates=SHOW, hours=D("2"), attendance_status="present")
    assert short.total == D("3000.00")  # day rate beats 6 h x 400 = 2,400
    long = pay_for(rates=SHOW, hours=D("9"), attendance_status="present")
    assert long.total == D("3600.00")  # 9 h x 400 beats the day rate
    assert "the better of day rate and hourly" in long.rule


def test_hourly_pays_the_minimum_call_when_work_was_shorter():
    rates = Rates(hourly_rate=D("400"), minimum_hours=D("6"))
    pay = pay_for(rates=rates, hours=D("2.5"), attendance_status="present")
    assert pay.total == D("2400.00")
    assert "minimum call 6 h" in pay.rule


def test_overtime_after_n_hours_at_the_multiplier():
    rates = Rates(hourly_rate=D("400"), overtime_after_hours=D("8"), overtime_multiplier=D("1.5"))
    pay = pay_for(rates=rates, hours=D("10"), attendance_status="present")
    assert (pay.base_pay, pay.overtime_hours, pay.overtime_pay) == (D("3200.00"), 2, D("1200.00"))
    day = Rates(day_rate=D("3000"), overtime_after_hours=D("10"), overtime_multiplier=D("2"))
    # A day rate alone: overtime at the day rate spread over the hours before overtime.
    assert pay_for(rates=day, hours=D("11"), attendance_status="present").overtime_pay == D(
        "600.00"
    )


def test_absent_pays_nothing_not_even_allowances_and_excused_pays_the_call():
    allowances = Allowances(transport=D("500"))
    absent = pay_for(rates=SHOW, hours=D("8"), attendance_status="absent", allowances=allowances)
    assert absent.total == 0
    assert absent.rule == "Absent: no pay."
    excused = pay_for(rates=SHOW, hours=None, attendance_status="excused", allowances=allowances)
    assert excused.total == D("3500.00")
    assert excused.rule.startswith("Excused: the call is paid.")


def test_late_members_are_paid_for_the_hours_they_worked():
    rates = Rates(hourly_rate=D("400"))
    assert pay_for(rates=rates, hours=D("3.25"), attendance_status="late").total == D("1300.00")


def test_an_agreed_fee_replaces_the_rates_and_allowances_are_added():
    allowances = Allowances(transport=D("300"), meals=D("250.50"), per_diem=D("1000"))
    pay = pay_for(
        rates=SHOW,
        hours=D("14"),
        attendance_status="present",
        agreed_fee=D("5000"),
        allowances=allowances,
    )
    assert (pay.base_pay, pay.overtime_pay, pay.allowances) == (D("5000.00"), 0, D("1550.50"))
    assert pay.total == D("6550.50")


def test_rounding_is_per_part_half_up_so_the_parts_add_up():
    rates = Rates(
        hourly_rate=D("333.33"), overtime_after_hours=D("1"), overtime_multiplier=D("1.5")
    )
    pay = pay_for(rates=rates, hours=D("1.01"), attendance_status="present")
    # 333.33 x 1 = 333.33; 333.33 x 1.5 x 0.01 = 4.99995 -> 5.00 (half up)
    assert (pay.base_pay, pay.overtime_pay) == (D("333.33"), D("5.00"))
    assert pay.total == pay.base_pay + pay.overtime_pay + pay.allowances


@pytest.mark.parametrize(
    ("rates", "field"),
    [
        (Rates(), "day rate"),
        (Rates(day_rate=D("-1")), "day rate"),
        (Rates(hourly_rate=D("5000000")), "hourly rate"),
        (Rates(hourly_rate=D("100.001")), "hourly rate"),
        (Rates(hourly_rate=D("100"), minimum_hours=D("-2")), "minimum call"),
        (Rates(hourly_rate=D("100"), overtime_multiplier=D("0.5")), "overtime multiplier"),
        (Rates(hourly_rate=D("100"), overtime_after_hours=D("0")), "overtime after"),
        (
            Rates(hourly_rate=D("100"), minimum_hours=D("8"), overtime_after_hours=D("6")),
            "minimum call",
        ),
    ],
)
def test_rates_that_cannot_be_paid_are_refused_naming_the_field(rates, field):
    with pytest.raises(PayRuleError) as refused:
        check_rates(rates)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hours": D("-1")}, "hours"),
        ({"hours": D("49")}, "hours"),
        ({"allowances": Allowances(meals=D("-5"))}, "meals"),
        ({"agreed_fee": D("-100")}, "agreed fee"),
    ],
)
def test_hours_allowances_and_fees_that_cannot_be_paid_are_refused(kwargs, field):
    with pytest.raises(PayRuleError) as refused:
        pay_for(rates=SHOW, attendance_status="present", **{"hours": D("5"), **kwargs})
    assert refused.value.field == field


rates_strategy = st.builds(
    lambda day, hourly, minimum, overtime, multiplier, which: Rates(
        day_rate=day if which != "hourly" else None,
        hourly_rate=hourly if which != "day" else None,
        minimum_hours=min(minimum, overtime) if overtime else minimum,
        overtime_after_hours=overtime,
        overtime_multiplier=multiplier,
    ),
    money,
    money,
    st.decimals(min_value=0, max_value=12, places=1),
    st.one_of(st.none(), st.decimals(min_value=1, max_value=16, places=1)),
    st.decimals(min_value=1, max_value=3, places=2),
    st.sampled_from(["day", "hourly", "both"]),
)


@given(rates_strategy, hours, hours)
def test_more_hours_never_pay_less(rates, a, b):
    low, high = sorted([a, b])
    pay_low = pay_for(rates=rates, hours=low, attendance_status="present")
    pay_high = pay_for(rates=rates, hours=high, attendance_status="present")
    assert pay_high.total >= pay_low.total


@given(rates_strategy, hours, money, money, money)
def test_pay_is_never_negative_is_in_cents_and_adds_up(rates, worked, transport, meals, diem):
    allowances = Allowances(transport=transport, meals=meals, per_diem=diem)
    pay = pay_for(rates=rates, hours=worked, attendance_status="present", allowances=allowances)
    for part in (pay.base_pay, pay.overtime_pay, pay.allowances):
        assert part >= 0
        assert part == cents(part)
    assert pay.total == pay.base_pay + pay.overtime_pay + pay.allowances
    assert pay.allowances == cents(transport + meals + diem)


@given(rates_strategy, hours)
def test_both_rates_pay_at_least_what_either_alone_would(rates, worked):
    if rates.day_rate is None or rates.hourly_rate is None:
        return
    both = pay_for(rates=rates, hours=worked, attendance_status="present").total
    day_only = Rates(
        day_rate=rates.day_rate,
        hourly_rate=None,
        overtime_after_hours=rates.overtime_after_hours,
        overtime_multiplier=rates.overtime_multiplier,
    )
    hourly_only = Rates(
        hourly_rate=rates.hourly_rate,
        minimum_hours=rates.minimum_hours,
        overtime_after_hours=rates.overtime_after_hours,
        overtime_multiplier=rates.overtime_multiplier,
    )
    assert both >= pay_for(rates=hourly_only, hours=worked, attendance_status="present").total
    # With both rates, day-rate overtime is paid at the hourly rate, so compare base pay only.
    assert both >= day_only.day_rate


@given(rates_strategy, hours, st.sampled_from(["absent", "expected"]))
def test_no_show_is_never_paid(rates, worked, status):
    assert pay_for(rates=rates, hours=worked, attendance_status=status).total == 0


@given(st.decimals(min_value=0, max_value=24, places=2), st.decimals(min_value=1, max_value=16))
def test_overtime_hours_are_exactly_those_past_the_threshold(worked, threshold):
    rates = Rates(hourly_rate=D("100"), overtime_after_hours=threshold.quantize(D("0.1")))
    pay = pay_for(rates=rates, hours=worked, attendance_status="present")
    assert pay.overtime_hours == max(D(0), worked - rates.overtime_after_hours)
