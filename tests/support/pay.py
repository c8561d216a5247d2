"""States that pay tests start from: a member who worked an event, a role with rates, an
approved pay run ready to pay out."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from attendance.models import Attendance, PayRun, StatutoryProfile, TimesheetLine
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import timesheet_approve
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
    """A crew role with these rates (the roles migrate creates exist already: set them)."""
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
