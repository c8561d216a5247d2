"""States that pay tests start from: a member who worked an event, a role with rates, an
approved pay run ready to pay out."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from attendance.models import Attendance, PayRun, StatutoryProfile, TimesheetLine
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import timesheet_approve
from tests.support.clock import NAIROBI
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory


def worked(event, user, role, hours, status="present"):
    """A confirmed member who checked in and out of a past event."""
    EventCrewFactory(
        event=event, user=user, role=role, status="confirmed", confirmed_at=event.starts_at
    )
    start = event.call_time
    Attendance.objects.update_or_create(
        event=event,
        user=user,
        defaults={
            "status": status,
            "check_in_at": start,
            "check_out_at": start + timedelta(hours=float(hours)),
            "hours_worked": Decimal(hours),
        },
    )


def role_with(name, **rates):
    """A crew role with these rates (the roles migrate creates exist already: set them).

    Paid the same on every day unless the test sets a Sunday or public holiday multiplier:
    a test not about day rates keeps its figures whatever day of the week CI runs it."""
    rates.setdefault("sunday_multiplier", Decimal(1))
    rates.setdefault("holiday_multiplier", Decimal(1))
    role = CrewRoleFactory(name=name)
    for field, value in rates.items():
        setattr(role, field, value)
    role.save()
    return role


def approved_run(phones, hours="6", engaged_as="contractor"):
    """An approved pay run paying KES 1,500 (a stagehand's day) to a member per phone.
    Returns (the run, its members, a Finance user who may pay it out).

    Its members are contractors by default, whose fees under the month's withholding
    threshold are paid whole: payout tests read round figures. `engaged_as="employee"` pays
    the net after NSSF, SHIF and the housing levy (KES 1,087.50 of 1,500)."""
    starts = timezone.now() - timedelta(hours=12)
    event = EventFactory(starts_at=starts, ends_at=starts + timedelta(hours=8))
    role = role_with(
        "Stagehand", day_rate=Decimal("1500"), hourly_rate=None, minimum_hours=Decimal(0)
    )
    manager, finance, checker = (UserFactory(is_staff=True) for _ in range(3))
    members = [UserFactory(profile__phone_number=phone) for phone in phones]
    for member in members:
        StatutoryProfile.objects.create(user=member, classification=engaged_as)
    for member in members:
        worked(event, member, role, hours)
    crew_complete_event(event=event, by=manager)
    timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    day = timezone.localtime(event.starts_at).date()
    run = pay_run_create(period_start=day, period_end=day, by=finance)
    pay_run_approve(pay_run=run, by=checker)
    return PayRun.objects.get(pk=run.pk), members, finance


def worked_on(member, day, fee, people, month=3):
    """`member` worked a day on `day` of `month` 2026 for `fee` (a day rate), approved.
    `people` is (manager, drafter, checker)."""
    manager, *_ = people
    starts = datetime(2026, month, day, 9, tzinfo=NAIROBI)
    event = EventFactory(
        name=f"Show {month}/{day}",
        starts_at=starts,
        ends_at=starts + timedelta(hours=8),
        call_time=starts - timedelta(hours=1),
    )
    role = role_with(
        f"Day {fee}", day_rate=Decimal(fee), hourly_rate=None, minimum_hours=Decimal(0)
    )
    worked(event, member, role, "8")
    crew_complete_event(event=event, by=manager)
    timesheet_approve(lines=TimesheetLine.objects.filter(event=event), by=manager)
    return event


def paid_run(people, first, last, month=3):
    """A pay run of those days of `month` 2026, drawn up and approved by two people."""
    _manager, drafter, checker = people
    run = pay_run_create(
        period_start=datetime(2026, month, first).date(),
        period_end=datetime(2026, month, last).date(),
        by=drafter,
    )
    pay_run_approve(pay_run=run, by=checker)
    return run
