"""Pay runs: approved timesheet lines of a period, approved by Finance onto the ledger, and
the payslips they make.

Maker-checker: whoever drew a run up or last set an amount in it cannot approve it. Approval
freezes the run, then posts each member's lines (one ledger entry per pay-run line, which the
ledger's one-entry-per-source rule makes impossible to post twice) in its own transaction,
from a background job; the last member posted approves the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from attendance.models import (
    EmailNotification,
    LedgerEntry,
    PayRun,
    PayRunLine,
    PayRunMember,
    StatutoryDeduction,
    TimesheetChange,
    TimesheetLine,
    member_name,
)
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.urls import absolute_url
from attendance.services.ledger import ledger_post
from attendance.services.messaging.email import Attachment, notification_create
from attendance.services.pay.deductions import (
    deductions_for_run,
    deductions_record,
    shares_by_line,
)
from attendance.services.pay.rules import ZERO
from attendance.services.pay.statutory_table import statutory_rates_missing_on, statutory_row_on
from attendance.services.pay.timesheets import PayError, timesheet_record_change
from attendance.services.people.roles import staff_with_permission

Status = TimesheetLine.Status
Kind = TimesheetChange.Kind


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


NOTHING_TO_PAY = (
    "No approved timesheet lines to pay for events in that period "
    "(an event manager approves them first)."
)


def pay_run_period_check(period_start: date, period_end: date) -> None:
    """PayError (naming the field) when no pay run can be drawn up for the period: the one
    check, for the admin form (before saving) and for pay_run_create."""
    if period_end < period_start:
        raise PayError("The period ends before it starts.", field="period_end")
    if not pay_run_payable(period_start, period_end).exists():
        raise PayError(NOTHING_TO_PAY)


def pay_run_create(*, period_start: date, period_end: date, by: User) -> PayRun:
    """A draft pay run of the approved lines of events in the period, not yet (fully) paid."""
    pay_run_period_check(period_start, period_end)
    with transaction.atomic():
        lines = list(
            pay_run_payable(period_start, period_end).select_for_update(of=("self",)).order_by("pk")
        )
        if not lines:  # taken by another run since the check
            raise PayError(NOTHING_TO_PAY)
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
        _tell_checkers(run, by, len(lines))
    return run


def _tell_checkers(run: PayRun, maker: User, lines: int) -> None:
    """Maker-checker: everyone who may approve the run, but its maker, hears that it waits."""
    url = absolute_url("admin:attendance_payrun_change", run.pk)
    for checker in staff_with_permission("approve_payrun").exclude(pk=maker.pk).exclude(email=""):
        notification_create(
            recipient=checker.email,
            user=checker,
            notification_type=EmailNotification.Type.PAY_RUN_WAITING,
            context={"run": run, "maker": maker, "url": url, "lines": lines},
        )


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
    no_rates = statutory_rates_missing_on(timezone.localdate())
    if no_rates:
        problems.append(no_rates)
    return problems


def pay_month_of(day: date) -> date:
    return day.replace(day=1)


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
        run.pay_month = pay_month_of(timezone.localdate())
        run.statutory_rates = statutory_row_on(timezone.localdate())
        run.save(update_fields=["status", "approved_by", "pay_month", "statutory_rates"])
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
        run = PayRun.objects.select_related("statutory_rates").get(pk=pay_run.pk)
        if run.status not in (PayRun.Status.APPROVING, PayRun.Status.APPROVED):
            raise PayError("This pay run is not being approved.")
        member = PayRunMember.objects.filter(pay_run=run, user_id=user_id).first()
        if member is not None:
            return member
        rows = list(
            run.lines.filter(user_id=user_id)
            .select_related("line__event", "user__statutory")
            .order_by("pk")
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
        entries = []
        for row in rows:
            entry = _post(row, by or run.approved_by)
            entries.append(entry)
            if before is None:
                # Read from the posting itself, under the ledger's lock of the profile.
                before = entry.balance_after - entry.amount
            after = entry.balance_after
            line = lines[row.line_id]
            paid = [str(line.paid_amount), str(line.paid_amount + row.amount)]
            line.paid_amount += row.amount
            line.status = Status.PAID
            line.save(update_fields=["paid_amount", "status"])
            timesheet_record_change(line, Kind.PAID, by, {"paid_amount": paid}, str(run))
        assert before is not None and after is not None
        earned = sum((r.amount for r in rows), ZERO)
        month = run.pay_month or pay_month_of(timezone.localdate())
        rates = run.statutory_rates or statutory_row_on(timezone.localdate())
        how, share = deductions_for_run(user=rows[0].user, month=month, earned=earned, row=rates)
        # Each deduction moves the balance by its amount, so the balance after them all is
        # known now; what they owed the company (a positive balance) is set against the net.
        net = earned - share.withheld
        after += share.withheld
        to_pay = max(ZERO, min(net, -after))
        member = PayRunMember.objects.create(
            pay_run=run,
            user_id=user_id,
            earned=earned,
            withheld=share.withheld,
            net=net,
            employer_cost=share.employer_cost,
            classification=how.classification,
            secondary=how.secondary,
            statutory_rates=rates,
            working=list(share.working),
            balance_before=before,
            balance_after=after,
            deducted=max(ZERO, net - to_pay),
            to_pay=to_pay,
        )
        member.user = rows[0].user
        kept, taken = deductions_record(
            member=member, share=share, month=month, by=by or run.approved_by
        )
        # The ledger's own figure, read under its lock, must be the one worked out above.
        assert not taken or taken[-1].balance_after == after, "deductions moved the balance"
        shares_by_line(rows, share)
        # The payslip from what was just written, in payslip_for's order: no reading back.
        rows.sort(key=lambda r: (r.line.event.starts_at, r.pk))
        _payslip_email(member, Payslip(member, rows, entries + taken, kept))
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
    deductions: list[StatutoryDeduction] = field(default_factory=list)

    @property
    def name(self) -> str:
        return member_name(self.member.user)

    @property
    def withheld(self) -> list[StatutoryDeduction]:
        """Kept from the member's pay, in the law's order."""
        return [d for d in self.deductions if d.kind in StatutoryDeduction.WITHHELD]

    @property
    def employer(self) -> list[StatutoryDeduction]:
        """What the company pays on top, not taken from the member."""
        return [d for d in self.deductions if d.kind in StatutoryDeduction.EMPLOYER]


def payslip_for(member: PayRunMember) -> Payslip:
    """A member's payslip: the lines paid, and the ledger rows they made."""
    lines = list(
        PayRunLine.objects.filter(pay_run_id=member.pay_run_id, user_id=member.user_id)
        .select_related("line__event")
        .order_by("line__event__starts_at", "pk")
    )
    deductions = list(StatutoryDeduction.objects.filter(member=member).order_by("pk"))
    types = ContentType.objects.get_for_models(PayRunLine, StatutoryDeduction)
    entries = list(
        LedgerEntry.objects.filter(
            Q(source_type=types[PayRunLine], source_id__in=[row.pk for row in lines])
            | Q(
                source_type=types[StatutoryDeduction],
                source_id__in=[d.pk for d in deductions],
            ),
            user_id=member.user_id,
        ).order_by("created_at", "pk")
    )
    return Payslip(member, lines, entries, deductions)


def payslip_pdf_name(member: PayRunMember) -> str:
    return f"payslip-{member.pay_run.period_end:%Y-%m-%d}-{member.pay_run_id}.pdf"


def _payslip_email(member: PayRunMember, slip: Payslip) -> EmailNotification | None:
    """The payslip by email, its PDF attached when the email is sent (payslip_documents)."""
    if not member.user.email:
        return None
    pdf = Attachment(
        filename=payslip_pdf_name(member),
        mimetype="application/pdf",
        document="payslip",
        ref=member.pk,
    )
    return notification_create(
        recipient=member.user.email,
        user=member.user,
        notification_type=EmailNotification.Type.PAYSLIP,
        attachments=(pdf,),
        context={
            "slip": slip,
            "run": member.pay_run,
            "payslip_url": absolute_url("attendance:payslip", member.pay_run_id),
        },
    )
