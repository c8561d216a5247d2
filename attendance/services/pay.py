"""Crew pay: timesheet lines from attendance, disputes, approval, and pay runs on the ledger.

Two people touch every shilling (maker-checker): an event manager approves the lines of an
event, and a Finance member who did not last set any amount in it approves the pay run. Only
that approval moves money, through the ledger service: one entry per pay-run line, which the
ledger's one-entry-per-source rule makes impossible to post twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, F, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone

from attendance.models import (
    Attendance,
    CrewRole,
    EmailNotification,
    EventCrew,
    LedgerEntry,
    PayRun,
    PayRunLine,
    PayRunMember,
    TimesheetChange,
    TimesheetLine,
    member_name,
)
from attendance.services.audit import AuditEvent, audit_record
from attendance.services.ledger import ledger_post
from attendance.services.notifications import notification_create
from attendance.services.pay_rules import (
    ZERO,
    Allowances,
    Pay,
    PayRuleError,
    Rates,
    cents,
    check_allowances,
    check_amount,
    check_rates,
    pay_for,
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


class PayError(ValueError):
    """Something a person asked for that pay rules do not allow; the message says why."""


# --- Rates and what an assignment is agreed to pay ---------------------------------------


def pay_role_save(*, role: CrewRole) -> CrewRole:
    """Save a crew role with its rates; PayRuleError (naming the field) if they cannot be
    paid. A role without any rate is allowed: its lines say to set one."""
    if role.day_rate is not None or role.hourly_rate is not None:
        check_rates(_rates_from(role))
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


# --- Timesheet lines ---------------------------------------------------------------------


def _rates_of(assignment: EventCrew) -> Rates | None:
    role = assignment.role
    if role.day_rate is None and role.hourly_rate is None:
        return None
    return _rates_from(role)


def _rates_from(role: CrewRole) -> Rates:
    return Rates(
        day_rate=role.day_rate,
        hourly_rate=role.hourly_rate,
        minimum_hours=role.minimum_hours,
        overtime_after_hours=role.overtime_after_hours,
        overtime_multiplier=role.overtime_multiplier,
    )


def _allowances_of(assignment: EventCrew) -> Allowances:
    return Allowances(
        transport=assignment.transport_allowance,
        meals=assignment.meals_allowance,
        per_diem=assignment.per_diem,
    )


def _pay_of(assignment: EventCrew, attendance: Attendance | None) -> tuple[Pay, Decimal, str]:
    """(pay, hours, attendance status) of an assignment; a missing rate pays 0 and says so."""
    status = attendance.status if attendance is not None else "absent"
    hours = (attendance.hours_worked if attendance is not None else None) or ZERO
    try:
        pay = pay_for(
            rates=_rates_of(assignment),
            hours=hours,
            attendance_status=status,
            agreed_fee=assignment.agreed_fee,
            allowances=_allowances_of(assignment),
        )
    except PayRuleError as error:
        # Completion must not fail for want of a rate: the line says what to fix, and pays
        # nothing until a manager fixes it and works it out again.
        pay = Pay(ZERO, ZERO, ZERO, ZERO, f"Not worked out: {error} Then recalculate.")
    return pay, hours, status


def _apply(line: TimesheetLine, pay: Pay, hours: Decimal, status: str) -> dict:
    before = {name: getattr(line, name) for name in _PAY_FIELDS}
    line.hours = hours
    line.attendance_status = status
    line.overtime_hours = pay.overtime_hours
    line.base_pay = pay.base_pay
    line.overtime_pay = pay.overtime_pay
    line.allowances = pay.allowances
    line.rule = pay.rule[:255]
    if pay.total + line.adjustment < 0:
        # A manager's earlier cut can take a line to nothing, never below.
        line.adjustment = -pay.total
    line.amount = pay.total + line.adjustment
    return _diff(before, line)


def _diff(before: dict, line: TimesheetLine) -> dict:
    return {
        name: [str(value), str(getattr(line, name))]
        for name, value in before.items()
        if value != getattr(line, name)
    }


def _record(
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
    for assignment in assignments:
        pay, hours, status = _pay_of(
            assignment, attendance.get((assignment.event_id, assignment.user_id))
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
        line.save()
        _record(line, Kind.COMPUTED, by, {"amount": ["", str(line.amount)]}, line.rule)
    return len(assignments)


def _locked(line: TimesheetLine) -> TimesheetLine:
    """The line, locked for a change; refused while a pay run is posting it."""
    locked = (
        TimesheetLine.objects.select_for_update(of=("self",))
        .select_related("assignment__role")
        .get(pk=line.pk)
    )
    if PayRunLine.objects.filter(line=locked, pay_run__status=PayRun.Status.APPROVING).exists():
        raise PayError("This line is being paid right now; try again in a minute.")
    return locked


def timesheet_recalculate(*, line: TimesheetLine, by: User, now: datetime | None = None) -> bool:
    """Work the line out again from today's attendance, rates and allowances (after a
    correction or a new rate). True if the amount changed."""
    now = now or timezone.now()
    with transaction.atomic():
        line = _locked(line)
        attendance = Attendance.objects.filter(event_id=line.event_id, user_id=line.user_id).first()
        pay, hours, status = _pay_of(line.assignment, attendance)
        old_amount = line.amount
        changes = _apply(line, pay, hours, status)
        if not changes:
            return False
        if line.amount != old_amount:
            _amount_changed(line, by, now)
        line.save()
        _record(line, Kind.RECALCULATED, by, changes, line.rule)
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
        raise PayError("Say why the amount changes: the member and Finance will read it.")
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
        _record(line, Kind.ADJUSTED, by, changes, reason)
    return line


def timesheet_keep(
    *, line: TimesheetLine, by: User, reason: str, now: datetime | None = None
) -> TimesheetLine:
    """Answer a dispute by keeping the amount, saying why."""
    reason = reason.strip()
    if not reason:
        raise PayError("Say why the amount stays as it is: the member will read it.")
    with transaction.atomic():
        line = _locked(line)
        if line.status != Status.DISPUTED:
            raise PayError("This line is not disputed.")
        line.status = Status.OPEN
        line.dispute_answer = reason[:500]
        line.save(update_fields=["status", "dispute_answer"])
        _record(line, Kind.ANSWERED, by, {"status": ["disputed", "open"]}, reason)
    return line


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
        raise PayError("Say what is wrong, for example the hours you worked.")
    if len(reason) > 500:
        raise PayError("Keep the reason under 500 characters.")
    with transaction.atomic():
        line = _locked(line)
        if line.user_id != user.pk:
            raise PayError("This is not your line.")
        if line.status == Status.DISPUTED:
            raise PayError("You have already disputed this line; the event manager will answer.")
        if line.status == Status.PAID:
            raise PayError("This line has been paid. Ask the office if something is wrong.")
        closes = timesheet_dispute_closes(line)
        if now > closes:
            local = timezone.localtime(closes)
            raise PayError(
                f"Disputes for this line closed on {local:%a %d %b at %H:%M}. Ask the office."
            )
        before = line.status
        line.status = Status.DISPUTED
        line.dispute_reason = reason
        line.disputed_at = now
        line.dispute_answer = ""
        line.approved_by = None
        line.approved_at = None
        line.save()
        _record(line, Kind.DISPUTED, user, {"status": [before, "disputed"]}, reason)
    return line


def timesheet_approve(
    *, lines: QuerySet[TimesheetLine], by: User, now: datetime | None = None
) -> tuple[int, int]:
    """An event manager approves open lines. Disputed ones wait for an answer.

    Returns (approved, left as they were).
    """
    now = now or timezone.now()
    with transaction.atomic():
        chosen = list(lines.select_for_update(of=("self",)).order_by("pk"))
        open_lines = [line for line in chosen if line.status == Status.OPEN]
        for line in open_lines:
            line.status = Status.APPROVED
            line.approved_by = by
            line.approved_at = now
            line.save(update_fields=["status", "approved_by", "approved_at"])
            _record(line, Kind.APPROVED, by, {"status": ["open", "approved"]})
    return len(open_lines), len(chosen) - len(open_lines)


# --- Pay runs ----------------------------------------------------------------------------


def pay_run_payable(period_start: date, period_end: date) -> QuerySet[TimesheetLine]:
    """The lines a pay run of the period would pay: approved, not (fully) paid, in no draft."""
    in_drafts = PayRunLine.objects.filter(pay_run__status=PayRun.Status.DRAFT).values("line_id")
    return (
        TimesheetLine.objects.filter(
            status=Status.APPROVED,
            event__starts_at__date__gte=period_start,
            event__starts_at__date__lte=period_end,
        )
        .exclude(amount=F("paid_amount"))
        .exclude(pk__in=in_drafts)
    )


def pay_run_create(*, period_start: date, period_end: date, by: User) -> PayRun:
    """A draft pay run of the approved lines of events in the period, not yet (fully) paid."""
    if period_end < period_start:
        raise PayError("The period ends before it starts.")
    with transaction.atomic():
        lines = list(
            pay_run_payable(period_start, period_end).select_for_update(of=("self",)).order_by("pk")
        )
        if not lines:
            raise PayError(
                "No approved timesheet lines to pay for events in that period "
                "(lines must be approved by an event manager first)."
            )
        run = PayRun.objects.create(period_start=period_start, period_end=period_end, created_by=by)
        PayRunLine.objects.bulk_create(
            [
                PayRunLine(
                    pay_run=run,
                    line=line,
                    user_id=line.user_id,
                    amount=line.amount - line.paid_amount,
                    is_correction=line.paid_amount != ZERO,
                )
                for line in lines
            ]
        )
        run.total = sum((line.amount - line.paid_amount for line in lines), ZERO)
        run.save(update_fields=["total"])
    return run


def pay_run_delete(*, pay_run: PayRun) -> None:
    """A draft pay run goes; its lines can be put in another. An approved one stays forever."""
    with transaction.atomic():
        run = PayRun.objects.select_for_update().get(pk=pay_run.pk)
        if run.status != PayRun.Status.DRAFT:
            raise PayError("An approved pay run cannot be deleted.")
        run.delete()


@dataclass
class Approval:
    pay_run: PayRun
    members: int
    posted: int


def pay_run_approval_problems(run: PayRun, by: User) -> list[str]:
    """Why `by` may not approve this pay run now (empty: they may)."""
    if run.status == PayRun.Status.APPROVING:
        return ["This pay run is being approved already (see Background jobs)."]
    if run.status != PayRun.Status.DRAFT:
        return ["This pay run is already approved."]
    problems = []
    rows = list(run.lines.select_related("line"))
    made_by_approver = [r for r in rows if r.line.changed_by_id == by.pk]
    if made_by_approver or run.created_by_id == by.pk:
        what = (
            f"you last set the amount of {len(made_by_approver)} of its lines"
            if made_by_approver
            else "you drew it up"
        )
        problems.append(
            f"You cannot approve this pay run: {what}. Another Finance member must approve it."
        )
    stale = [r for r in rows if r.line.status != Status.APPROVED or r.amount != r.line.unpaid]
    if stale:
        problems.append(
            f"{len(stale)} of its lines changed since the run was drawn up. Delete this draft "
            "and draw it up again."
        )
    return problems


def pay_run_begin_approval(*, pay_run: PayRun, by: User) -> list[tuple[int, str]]:
    """Finance approves: the run is checked (maker-checker, nothing changed) and becomes
    *being approved*, which freezes its lines. Returns its members (user id, name), whose
    earnings `pay_run_approve_member` then posts one member at a time.

    Two approvals at once: the second waits for the run's row lock, then finds it being
    approved and is refused.
    """
    with transaction.atomic():
        run = PayRun.objects.select_for_update().get(pk=pay_run.pk)
        problems = pay_run_approval_problems(run, by)
        if problems:
            raise PayError(" ".join(problems))
        run.status = PayRun.Status.APPROVING
        run.approved_by = by
        run.save(update_fields=["status", "approved_by"])
        users = (
            run.lines.order_by("user__first_name", "user__last_name", "user_id")
            .values_list("user_id", "user__first_name", "user__last_name", "user__username")
            .distinct()
        )
        return [(pk, f"{first} {last}".strip() or username) for pk, first, last, username in users]


def pay_run_approve_member(*, pay_run: PayRun, user_id: int, by: User | None) -> PayRunMember:
    """One member's lines of a run being approved onto their ledger, and their payslip.

    Exactly once: a second call (a worker died after posting, the job resumed) finds the
    payslip and returns it; the ledger's one-entry-per-source rule refuses a second posting
    whatever happens. The last member to be posted approves the run.
    """
    with transaction.atomic():
        run = PayRun.objects.get(pk=pay_run.pk)
        if run.status not in (PayRun.Status.APPROVING, PayRun.Status.APPROVED):
            raise PayError("This pay run is not being approved.")
        member = PayRunMember.objects.filter(pay_run=run, user_id=user_id).first()
        if member is not None:
            return member
        rows = list(
            run.lines.filter(user_id=user_id).select_related("line__event", "user").order_by("pk")
        )
        if not rows:
            raise PayError("This member has no lines in this pay run.")
        lines = {
            line.pk: line
            for line in TimesheetLine.objects.select_for_update().filter(
                pk__in=[r.line_id for r in rows]
            )
        }
        before = after = None
        for row in rows:
            entry = _post(row, by or run.approved_by)
            if before is None:
                # Read from the posting itself, under the ledger's lock of the profile.
                before = entry.balance_after - entry.amount
            after = entry.balance_after
            line = lines[row.line_id]
            paid = [str(line.paid_amount), str(line.paid_amount + row.amount)]
            line.paid_amount += row.amount
            line.status = Status.PAID
            line.save(update_fields=["paid_amount", "status"])
            _record(line, Kind.PAID, by, {"paid_amount": paid}, str(run))
        assert before is not None and after is not None
        earned = sum((r.amount for r in rows), ZERO)
        to_pay = max(ZERO, min(earned, -after))
        member = PayRunMember.objects.create(
            pay_run=run,
            user_id=user_id,
            earned=earned,
            balance_before=before,
            balance_after=after,
            deducted=max(ZERO, earned - to_pay),
            to_pay=to_pay,
        )
        member.user = rows[0].user
        _payslip_email(member)
        _approve_if_complete(run)
    return member


def _approve_if_complete(run: PayRun) -> None:
    with transaction.atomic():
        run = PayRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PayRun.Status.APPROVING:
            return
        members = run.lines.values("user_id").distinct().count()
        totals = PayRunMember.objects.filter(pay_run=run).aggregate(
            count=Count("pk"), earned=Sum("earned"), to_pay=Sum("to_pay")
        )
        if totals["count"] < members:
            return
        run.status = PayRun.Status.APPROVED
        run.approved_at = timezone.now()
        run.total = totals["earned"] or ZERO
        run.to_pay = totals["to_pay"] or ZERO
        run.save(update_fields=["status", "approved_at", "total", "to_pay"])
        audit_record(
            AuditEvent.PAY_RUN_APPROVED,
            actor=run.approved_by,
            target=run,
            before={"status": "draft"},
            after={"status": "approved", "total": str(run.total), "to_pay": str(run.to_pay)},
            details={"lines": run.lines.count(), "members": members, "period": str(run)},
        )


def pay_run_approve(*, pay_run: PayRun, by: User) -> Approval:
    """Approve a pay run here and now, member after member (seed data, tests, a small run).
    Admin runs the same steps as a background job with progress."""
    members = pay_run_begin_approval(pay_run=pay_run, by=by)
    for user_id, _name in members:
        pay_run_approve_member(pay_run=pay_run, user_id=user_id, by=by)
    run = PayRun.objects.get(pk=pay_run.pk)
    return Approval(run, len(members), run.lines.count())


def _post(row: PayRunLine, by: User | None) -> LedgerEntry:
    event = row.line.event
    if row.is_correction:
        # A correction moves the balance by the difference: more pay lowers what they owe.
        return ledger_post(
            user=row.user,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=-row.amount,
            description=f"Pay correction: {row.line.role_name} at {event.name}",
            created_by=by,
            source=row,
        )
    return ledger_post(
        user=row.user,
        kind=LedgerEntry.Kind.EARNING,
        amount=row.amount,
        description=f"Pay: {row.line.role_name} at {event.name} "
        f"({timezone.localtime(event.starts_at):%d %b %Y})",
        created_by=by,
        source=row,
    )


# --- Payslips ----------------------------------------------------------------------------


@dataclass
class Payslip:
    member: PayRunMember
    lines: list[PayRunLine]
    entries: list[LedgerEntry]

    @property
    def name(self) -> str:
        return member_name(self.member.user)


def payslip_for(member: PayRunMember) -> Payslip:
    """A member's payslip: the lines paid, and the ledger rows they made."""
    lines = list(
        PayRunLine.objects.filter(pay_run_id=member.pay_run_id, user_id=member.user_id)
        .select_related("line__event")
        .order_by("line__event__starts_at", "pk")
    )
    entries = list(
        LedgerEntry.objects.filter(
            user_id=member.user_id,
            source_type=ContentType.objects.get_for_model(PayRunLine),
            source_id__in=[row.pk for row in lines],
        ).order_by("created_at", "pk")
    )
    return Payslip(member, lines, entries)


def _payslip_email(member: PayRunMember) -> EmailNotification | None:
    if not member.user.email:
        return None
    slip = payslip_for(member)
    return notification_create(
        recipient=member.user.email,
        user=member.user,
        notification_type=EmailNotification.Type.PAYSLIP,
        context={
            "slip": slip,
            "run": member.pay_run,
            "payslip_url": settings.SITE_URL
            + reverse("attendance:payslip", args=[member.pay_run_id]),
        },
    )


def pay_totals(lines: QuerySet[TimesheetLine]) -> Decimal:
    return lines.aggregate(total=Sum("amount"))["total"] or ZERO
