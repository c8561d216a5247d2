"""Crew pay: timesheet lines from attendance, disputes and their approval (what an assignment
pays: assignment_pay.py; pay runs: runs.py).

Two people touch every shilling (maker-checker): an event manager approves the lines of an
event, and a Finance member who did not last set any amount in it approves the pay run. Only
that approval moves money, through the ledger service: one entry per pay-run line, which the
ledger's one-entry-per-source rule makes impossible to post twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _

from attendance.models import (
    Attendance,
    EmailNotification,
    EventCrew,
    PayRun,
    PayRunLine,
    TimesheetChange,
    TimesheetLine,
)
from attendance.services.core.errors import ServiceError
from attendance.services.core.urls import absolute_url
from attendance.services.messaging.channels import member_message
from attendance.services.pay.assignment_pay import pay_of, show_day
from attendance.services.pay.holidays import gazetted_between
from attendance.services.pay.rules import (
    Pay,
    PayRuleError,
    cents,
    check_amount,
)

Status = TimesheetLine.Status
Kind = TimesheetChange.Kind
# The fields a change of pay records, before and after.
_PAY_FIELDS = (
    "hours",
    "overtime_hours",
    "base_pay",
    "overtime_pay",
    "allowances",
    "adjustment",
    "amount",
    "rule",
    "attendance_status",
)


class PayError(ServiceError):
    """Something a person asked for that pay rules do not allow; the message says why."""


# --- Timesheet lines ---------------------------------------------------------------------


def _apply(line: TimesheetLine, pay: Pay, hours: Decimal, status: str) -> dict:
    before = {name: getattr(line, name) for name in _PAY_FIELDS}
    line.hours = hours
    line.attendance_status = status
    line.overtime_hours = pay.overtime_hours
    line.base_pay = pay.base_pay
    line.overtime_pay = pay.overtime_pay
    line.allowances = pay.allowances
    line.rule = pay.rule[:255]
    line.rule_words = pay.words
    if pay.total + line.adjustment < 0:
        # A manager's earlier cut can take a line to nothing, never below.
        line.adjustment = -pay.total
    line.amount = pay.total + line.adjustment
    return _diff(before, line)


def _set_proof(line: TimesheetLine, attendance: Attendance | None, hold: bool) -> None:
    """Copy how the check-in was proven onto the line. Where the event holds unproven
    check-ins, a new line without proof waits for a manager; a line whose check-in has since
    been recorded by staff (proven) waits no more."""
    if attendance is None or attendance.check_in_at is None:
        line.proof = ""
        line.held = False
        return
    line.proof = attendance.check_in_proof[:80]
    if attendance.check_in_proven:
        line.held = False
    elif hold and line._state.adding:
        line.held = True


def _diff(before: dict, line: TimesheetLine) -> dict:
    return {
        name: [str(value), str(getattr(line, name))]
        for name, value in before.items()
        if value != getattr(line, name)
    }


def timesheet_record_change(
    line: TimesheetLine, kind: str, by: User | None, changes: dict, reason: str = ""
) -> None:
    TimesheetChange.objects.create(
        line=line, kind=kind, changed_by=by, changes=changes, reason=reason[:500]
    )


def _amount_changed(line: TimesheetLine, by: User | None, now: datetime) -> None:
    """Someone set the amount: they are its maker, and it needs approving (again)."""
    line.changed_by = by
    line.changed_at = now
    if line.status in (Status.APPROVED, Status.PAID):
        line.status = Status.OPEN
        line.approved_by = None
        line.approved_at = None


def timesheet_create(
    *, assignment_ids: Iterable[int], by: User | None = None, now: datetime | None = None
) -> int:
    """A line for each completed assignment that has none yet, from its attendance.

    Called in the transaction that completes the crew; returns how many lines were made.
    """
    now = now or timezone.now()
    assignments = list(
        EventCrew.objects.filter(
            pk__in=list(assignment_ids),
            status=EventCrew.Status.COMPLETED,
            timesheet__isnull=True,
        ).select_related("role", "event")
    )
    attendance = {
        (a.event_id, a.user_id): a
        for a in Attendance.objects.filter(
            event_id__in={x.event_id for x in assignments},
            user_id__in={x.user_id for x in assignments},
        )
    }
    dates = [timezone.localtime(a.event.starts_at).date() for a in assignments]
    gazetted = gazetted_between(min(dates), max(dates)) if dates else {}
    lines = []
    for assignment in assignments:
        pay, hours, status = pay_of(
            assignment,
            attendance.get((assignment.event_id, assignment.user_id)),
            show_day(assignment.event, gazetted),
        )
        line = TimesheetLine(
            assignment=assignment,
            event_id=assignment.event_id,
            user_id=assignment.user_id,
            role_name=assignment.role.name,
            changed_by=by,
            changed_at=now,
        )
        _apply(line, pay, hours, status)
        _set_proof(
            line,
            attendance.get((assignment.event_id, assignment.user_id)),
            assignment.event.hold_unproven,
        )
        lines.append(line)
    # In bulk: completing a 2,000-person festival is one request.
    lines = TimesheetLine.objects.bulk_create(lines, batch_size=1000)
    TimesheetChange.objects.bulk_create(
        [
            TimesheetChange(
                line=line,
                kind=Kind.COMPUTED,
                changed_by=by,
                changes={"amount": ["", str(line.amount)]},
                reason=line.rule[:500],
            )
            for line in lines
        ],
        batch_size=1000,
    )
    return len(lines)


def _locked(line: TimesheetLine) -> TimesheetLine:
    """The line, locked for a change; refused while a pay run is posting it."""
    locked = (
        TimesheetLine.objects.select_for_update(of=("self",))
        .select_related("assignment__role")
        .get(pk=line.pk)
    )
    if PayRunLine.objects.filter(line=locked, pay_run__status=PayRun.Status.APPROVING).exists():
        raise PayError(_("This line is being paid right now; try again in a minute."))
    return locked


def timesheet_recalculate(*, line: TimesheetLine, by: User, now: datetime | None = None) -> bool:
    """Work the line out again from today's attendance, rates and allowances (after a
    correction or a new rate). True if the amount changed."""
    now = now or timezone.now()
    with transaction.atomic():
        line = _locked(line)
        attendance = Attendance.objects.filter(event_id=line.event_id, user_id=line.user_id).first()
        pay, hours, status = pay_of(line.assignment, attendance)
        old_amount = line.amount
        changes = _apply(line, pay, hours, status)
        was_held = line.held
        _set_proof(line, attendance, hold=False)
        if was_held != line.held:
            changes["held"] = [str(was_held), str(line.held)]
        if not changes:
            return False
        if line.amount != old_amount:
            _amount_changed(line, by, now)
        line.save()
        timesheet_record_change(line, Kind.RECALCULATED, by, changes, line.rule)
    return line.amount != old_amount


def _parse_amount(field: str, value: Decimal | str | int) -> Decimal:
    try:
        amount = Decimal(str(value).replace(",", "").strip())
    except InvalidOperation as error:
        raise PayError(
            f"The {field} must be an amount in shillings, like 3500 or 3500.50."
        ) from error
    try:
        check_amount(field, amount)
    except PayRuleError as error:
        raise PayError(str(error)) from error
    return cents(amount)


def timesheet_adjust(
    *,
    line: TimesheetLine,
    by: User,
    amount: Decimal | str | int,
    reason: str,
    now: datetime | None = None,
) -> TimesheetLine:
    """Set what the line pays, with a reason (the difference is kept as an adjustment).

    Answers an open dispute. A line that was approved or paid needs approving again; what an
    approved pay run already paid stays paid, and the next pay run carries the difference.
    """
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise PayError(_("Say why the amount changes: the member and Finance will read it."))
    new_amount = _parse_amount("amount", amount)
    with transaction.atomic():
        line = _locked(line)
        before = {name: getattr(line, name) for name in _PAY_FIELDS}
        before_status = line.status
        line.adjustment = new_amount - (line.base_pay + line.overtime_pay + line.allowances)
        line.amount = new_amount
        changes = _diff(before, line)
        if changes:
            _amount_changed(line, by, now)
        if before_status == Status.DISPUTED:
            line.status = Status.OPEN
            line.dispute_answer = reason[:500]
        line.save()
        timesheet_record_change(line, Kind.ADJUSTED, by, changes, reason)
        if before_status == Status.DISPUTED:
            _tell_dispute_answered(line, changed=bool(changes))
    return line


def timesheet_keep(
    *, line: TimesheetLine, by: User, reason: str, now: datetime | None = None
) -> TimesheetLine:
    """Answer a dispute by keeping the amount, saying why."""
    reason = reason.strip()
    if not reason:
        raise PayError(_("Say why the amount stays as it is: the member will read it."))
    with transaction.atomic():
        line = _locked(line)
        if line.status != Status.DISPUTED:
            raise PayError(_("This line is not disputed."))
        line.status = Status.OPEN
        line.dispute_answer = reason[:500]
        line.save(update_fields=["status", "dispute_answer"])
        timesheet_record_change(line, Kind.ANSWERED, by, {"status": ["disputed", "open"]}, reason)
        _tell_dispute_answered(line, changed=False)
    return line


def _tell_dispute_answered(line: TimesheetLine, *, changed: bool) -> None:
    """The member who questioned a line hears the answer on their channel."""
    member_message(
        user=line.user,
        event=line.event,
        notification_type=EmailNotification.Type.DISPUTE_ANSWERED,
        context={
            "line": line,
            "changed": changed,
            "answer": line.dispute_answer,
            "pay_url": absolute_url("attendance:my_pay"),
        },
    )


def timesheet_dispute_closes(line: TimesheetLine) -> datetime:
    return line.created_at + timedelta(days=settings.PAY_DISPUTE_WINDOW_DAYS)


def timesheet_can_dispute(line: TimesheetLine, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return line.status in (Status.OPEN, Status.APPROVED) and now <= timesheet_dispute_closes(line)


def timesheet_dispute(
    *, line: TimesheetLine, user: User, reason: str, now: datetime | None = None
) -> TimesheetLine:
    """The member questions their line, within the window, with a reason."""
    now = now or timezone.now()
    reason = " ".join(reason.split())
    if not reason:
        raise PayError(_("Say what is wrong, for example the hours you worked."))
    if len(reason) > 500:
        raise PayError(_("Keep the reason under 500 characters."))
    with transaction.atomic():
        line = _locked(line)
        if line.user_id != user.pk:
            raise PayError(_("This is not your line."))
        if line.status == Status.DISPUTED:
            raise PayError(_("You have already disputed this line; the event manager will answer."))
        if line.status == Status.PAID:
            raise PayError(_("This line has been paid. Ask the office if something is wrong."))
        closes = timesheet_dispute_closes(line)
        if now > closes:
            local = timezone.localtime(closes)
            raise PayError(
                _("Disputes for this line closed on %(when)s. Ask the office.")
                % {"when": dateformat.format(local, "D j M, H:i")}
            )
        before = line.status
        line.status = Status.DISPUTED
        line.dispute_reason = reason
        line.disputed_at = now
        line.dispute_answer = ""
        line.approved_by = None
        line.approved_at = None
        line.save()
        timesheet_record_change(line, Kind.DISPUTED, user, {"status": [before, "disputed"]}, reason)
    return line


def timesheet_approve(
    *, lines: QuerySet[TimesheetLine], by: User, now: datetime | None = None
) -> tuple[int, int]:
    """An event manager approves open lines. Disputed ones wait for an answer, and lines
    held for an unproven check-in wait for a manager to accept it.

    Returns (approved, left as they were).
    """
    now = now or timezone.now()
    with transaction.atomic():
        chosen = list(lines.select_for_update(of=("self",)).order_by("pk"))
        open_lines = [line for line in chosen if line.status == Status.OPEN and not line.held]
        for line in open_lines:
            line.status = Status.APPROVED
            line.approved_by = by
            line.approved_at = now
            line.save(update_fields=["status", "approved_by", "approved_at"])
            timesheet_record_change(line, Kind.APPROVED, by, {"status": ["open", "approved"]})
    return len(open_lines), len(chosen) - len(open_lines)
