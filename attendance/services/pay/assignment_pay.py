"""What one assignment pays: the crew role's rates (checked when saved), the fee and
allowances agreed for it, and the kind of day its show fell on (services/pay/rules.py does
the arithmetic). Timesheet lines (timesheets.py) are worked out from these.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import timezone

from attendance.models import Attendance, CrewRole, Event, EventCrew
from attendance.services.pay.holidays import day_of
from attendance.services.pay.rules import (
    ZERO,
    Allowances,
    Day,
    Pay,
    PayRuleError,
    Rates,
    check_allowances,
    check_amount,
    check_rates,
    pay_for,
)
from attendance.services.pay.words import phrase


def pay_role_save(*, role: CrewRole) -> CrewRole:
    """Save a crew role with its rates; PayRuleError (naming the field) if they cannot be
    paid. A role without any rate is allowed: its lines say to set one."""
    if role.day_rate is not None or role.hourly_rate is not None:
        check_rates(rates_from(role))
    role.save()
    return role


def pay_assignment_set(
    *,
    assignment: EventCrew,
    agreed_fee: Decimal | None,
    transport: Decimal,
    meals: Decimal,
    per_diem: Decimal,
) -> bool:
    """The fee and allowances agreed for one assignment; True if anything changed. A line
    already worked out keeps its amount until a manager recalculates it."""
    check_amount("agreed fee", agreed_fee)
    check_allowances(Allowances(transport=transport, meals=meals, per_diem=per_diem))
    values = {
        "agreed_fee": agreed_fee,
        "transport_allowance": transport,
        "meals_allowance": meals,
        "per_diem": per_diem,
    }
    if all(getattr(assignment, name) == value for name, value in values.items()):
        return False
    EventCrew.objects.filter(pk=assignment.pk).update(**values, updated_at=timezone.now())
    for name, value in values.items():
        setattr(assignment, name, value)
    return True


def rates_of(assignment: EventCrew) -> Rates | None:
    role = assignment.role
    if role.day_rate is None and role.hourly_rate is None:
        return None
    return rates_from(role)


def rates_from(role: CrewRole) -> Rates:
    return Rates(
        day_rate=role.day_rate,
        hourly_rate=role.hourly_rate,
        minimum_hours=role.minimum_hours,
        overtime_after_hours=role.overtime_after_hours,
        overtime_multiplier=role.overtime_multiplier,
        sunday_multiplier=role.sunday_multiplier,
        holiday_multiplier=role.holiday_multiplier,
    )


def allowances_of(assignment: EventCrew) -> Allowances:
    return Allowances(
        transport=assignment.transport_allowance,
        meals=assignment.meals_allowance,
        per_diem=assignment.per_diem,
    )


def show_day(event: Event, gazetted: dict[date, str] | None = None) -> Day:
    """The day a show is paid by: the date it starts, Nairobi time (a show from Saturday
    night into Sunday is Saturday's)."""
    return day_of(timezone.localtime(event.starts_at).date(), gazetted)


def pay_of(
    assignment: EventCrew, attendance: Attendance | None, day: Day | None = None
) -> tuple[Pay, Decimal, str]:
    """(pay, hours, attendance status) of an assignment; a missing rate pays 0 and says so."""
    status = attendance.status if attendance is not None else "absent"
    hours = (attendance.hours_worked if attendance is not None else None) or ZERO
    try:
        pay = pay_for(
            rates=rates_of(assignment),
            hours=hours,
            attendance_status=status,
            agreed_fee=assignment.agreed_fee,
            allowances=allowances_of(assignment),
            day=day if day is not None else show_day(assignment.event),
        )
    except PayRuleError as error:
        # Completion must not fail for want of a rate: the line says what to fix, and pays
        # nothing until a manager fixes it and works it out again.
        pay = Pay(ZERO, ZERO, ZERO, ZERO, phrase("not_worked_out", error=str(error)))
    return pay, hours, status
