"""Crew pay in admin: timesheet lines (answer disputes, adjust, approve), and pay runs (draw up,
approve, export). Every write goes through attendance.services.pay."""

import tempfile

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Value, When
from django.http import (
    FileResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from attendance.models import (
    BulkJob,
    PayRun,
    PayRunLine,
    PayRunMember,
    TimesheetLine,
    member_name,
)
from attendance.services.audit import AuditEvent, audit_record
from attendance.services.exports import payroll_csv, payroll_xlsx
from attendance.services.pay import (
    PayError,
    pay_run_approval_problems,
    pay_run_begin_approval,
    pay_run_create,
    pay_run_delete,
    pay_run_payable,
    timesheet_adjust,
    timesheet_approve,
    timesheet_keep,
    timesheet_recalculate,
)
from attendance.services.pay_rules import kes
from attendance.services.payouts import PayoutError, payout_summary, payouts_prepare

from .crew import UpcomingEventFilter
from .display import (
    CappedInlineMixin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    member_column,
    status_badge,
    status_badge_column,
)
from .jobs import start_job
from .search import IndexedSearchMixin, month_filter

Status = TimesheetLine.Status
PAY_FIELDS = (
    "hours",
    "attendance_status",
    "rule",
    "base_pay",
    "overtime_hours",
    "overtime_pay",
    "allowances",
    "adjustment",
    "amount",
    "paid_amount",
)


def _changes_table(line: TimesheetLine):
    rows = [
        (
            change.changed_at.strftime("%d %b %Y %H:%M"),
            change.get_kind_display(),
            member_name(change.changed_by) if change.changed_by else "the system",
            "; ".join(f"{k}: {a or '-'} → {b}" for k, (a, b) in change.changes.items()),
            change.reason,
        )
        for change in line.changes.select_related("changed_by")
    ]
    return format_html(
        '<table class="sf-history"><thead><tr><th>When</th><th>What</th><th>Who</th>'
        "<th>Changed</th><th>Why</th></tr></thead><tbody>{}</tbody></table>",
        format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        ),
    )


class AnswerForm(forms.ModelForm):
    """What a manager does with a line: set the amount, keep it (answering a dispute), or work
    it out again from attendance. Always with a reason the member reads."""

    DECISIONS = [
        ("", "No change"),
        ("adjust", "Set the amount to…"),
        ("keep", "Keep the amount (answer the dispute)"),
        ("recalculate", "Work it out again from attendance and rates"),
    ]
    decision = forms.ChoiceField(choices=DECISIONS, required=False, label="What to do")
    new_amount = forms.DecimalField(
        required=False, label="New amount (KES)", max_digits=10, decimal_places=2
    )
    reason = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2, "cols": 60})
    )

    class Meta:
        model = TimesheetLine
        fields = ()

    def clean(self):
        cleaned = super().clean()
        decision = cleaned.get("decision")
        if decision == "adjust" and cleaned.get("new_amount") is None:
            self.add_error("new_amount", "Give the amount the line should pay.")
        if decision in ("adjust", "keep") and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why: the member and Finance will read it.")
        if decision == "keep" and self.instance.status != Status.DISPUTED:
            self.add_error("decision", "This line is not disputed.")
        return cleaned


@admin.register(TimesheetLine)
class TimesheetLineAdmin(IndexedSearchMixin, admin.ModelAdmin):
    form = AnswerForm
    list_display = ("member", "event_link", "role_name", "hours", "amount_column", "status_badge")
    list_filter = ("status", UpcomingEventFilter, month_filter("created_at"))
    list_select_related = ("user", "event")
    search_event = "event"
    search_fields = ("user__username",)
    paginator = EstimatedCountPaginator
    sortable_by = ("created_at", "status")
    actions = ["approve_lines", "recalculate_lines"]
    readonly_fields = (
        "member",
        "event_link",
        "role_name",
        *PAY_FIELDS,
        "status_badge",
        "dispute_reason",
        "disputed_at",
        "dispute_answer",
        "approved_by",
        "approved_at",
        "changed_by",
        "changed_at",
        "history",
    )
    fieldsets = (
        (None, {"fields": ("member", "event_link", "role_name", "status_badge")}),
        ("Pay", {"fields": PAY_FIELDS}),
        ("Dispute", {"fields": ("dispute_reason", "disputed_at", "dispute_answer")}),
        ("Answer or adjust", {"fields": ("decision", "new_amount", "reason")}),
        ("Approval", {"fields": ("changed_by", "changed_at", "approved_by", "approved_at")}),
        ("History", {"fields": ("history",)}),
    )

    member = member_column()
    status_badge = status_badge_column(prefix="pay-")

    @admin.display(description="Event", ordering="event__starts_at")
    def event_link(self, obj):
        return format_html(
            '<a href="{}">{}</a> ({})',
            reverse("admin:attendance_event_change", args=[obj.event_id]),
            obj.event.name,
            obj.event.starts_at.strftime("%d %b %Y"),
        )

    @admin.display(description="Amount", ordering="amount")
    def amount_column(self, obj):
        return kes(obj.amount)

    @admin.display(description="Changes")
    def history(self, obj):
        return _changes_table(obj)

    def has_add_permission(self, request):
        return False  # lines come from completing the crew

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("attendance.approve_timesheetline")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        decision = data.get("decision")
        try:
            if decision == "adjust":
                timesheet_adjust(
                    line=obj, by=request.user, amount=data["new_amount"], reason=data["reason"]
                )
            elif decision == "keep":
                timesheet_keep(line=obj, by=request.user, reason=data["reason"])
            elif decision == "recalculate":
                timesheet_recalculate(line=obj, by=request.user)
        except PayError as error:
            messages.error(request, str(error))
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        pass  # nothing related is edited here

    @admin.action(
        description="Approve the selected lines (not disputed ones)", permissions=["approve"]
    )
    def approve_lines(self, request, queryset):
        approved, left = timesheet_approve(lines=queryset, by=request.user)
        if approved:
            messages.success(request, f"{approved} line(s) approved.")
        if left:
            messages.warning(
                request,
                f"{left} left as they were: disputed (answer them first) or already approved.",
            )

    @admin.action(description="Work out again from attendance and rates", permissions=["change"])
    def recalculate_lines(self, request, queryset):
        changed = sum(
            timesheet_recalculate(line=line, by=request.user) for line in queryset.order_by("pk")
        )
        messages.success(request, f"{changed} line(s) changed; the others already matched.")


class TimesheetInline(ReadOnlyAdminMixin, CappedInlineMixin, admin.TabularInline):
    """The event's pay lines, disputed ones first (the first CAP: the list has all)."""

    model = TimesheetLine
    fk_name = "event"
    fields = ("line", "role_name", "hours", "rule", "amount", "status_badge")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Pay (timesheet lines)"

    line = admin.display(description="Member")(
        lambda self, obj: format_html(
            '<a href="{}">{}</a>',
            reverse("admin:attendance_timesheetline_change", args=[obj.pk]),
            member_name(obj.user),
        )
    )
    status_badge = status_badge_column(prefix="pay-")

    def get_queryset(self, request):
        first = Case(When(status=Status.DISPUTED, then=Value(0)), default=Value(1))
        return (
            super()
            .get_queryset(request)
            .select_related("user")
            .annotate(disputed_first=first)
            .order_by("disputed_first", "user__first_name", "pk")
        )


# --- Pay runs ----------------------------------------------------------------------------


class PayRunForm(forms.ModelForm):
    class Meta:
        model = PayRun
        fields = ("period_start", "period_end")
        help_texts = {
            "period_end": "Approved lines of events in the period that are not yet paid go in."
        }

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start and end:
            if end < start:
                self.add_error("period_end", "The period ends before it starts.")
            elif not pay_run_payable(start, end).exists():
                raise forms.ValidationError(
                    "No approved timesheet lines to pay for events in that period (an event "
                    "manager approves them first)."
                )
        return cleaned


class PayRunMemberInline(ReadOnlyAdminMixin, CappedInlineMixin, admin.TabularInline):
    model = PayRunMember
    fk_name = "pay_run"
    CAP = 50
    fields = ("member", "earned", "balance_before", "deducted", "to_pay", "balance_after")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Payslips"
    member = member_column()

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").order_by("user__first_name")


class PayRunLineInline(ReadOnlyAdminMixin, CappedInlineMixin, admin.TabularInline):
    model = PayRunLine
    fk_name = "pay_run"
    CAP = 50
    fields = ("member", "event", "is_correction", "amount")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Lines"
    member = member_column()

    @admin.display(description="Event")
    def event(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:attendance_timesheetline_change", args=[obj.line_id]),
            f"{obj.line.role_name} at {obj.line.event.name}",
        )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("user", "line__event")
            .order_by("user__first_name", "pk")
        )


@admin.register(PayRun)
class PayRunAdmin(admin.ModelAdmin):
    form = PayRunForm
    list_display = (
        "__str__",
        "status_column",
        "total_column",
        "to_pay_column",
        "created_by",
        "approved_by",
        "approved_at",
    )
    list_filter = ("status",)
    list_select_related = ("created_by", "approved_by")
    change_form_template = "admin/attendance/payrun/change_form.html"

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj):
        return status_badge(f"run-{obj.status}", obj.get_status_display())

    @admin.display(description="Total", ordering="total")
    def total_column(self, obj):
        return kes(obj.total)

    @admin.display(description="To pay after netting", ordering="to_pay")
    def to_pay_column(self, obj):
        return kes(obj.to_pay) if obj.status == PayRun.Status.APPROVED else "-"

    def get_inlines(self, request, obj):
        if obj is None:
            return []
        return [PayRunMemberInline, PayRunLineInline]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (
            "period_start",
            "period_end",
            "status_column",
            "total_column",
            "to_pay_column",
            "created_by",
            "approved_by",
            "approved_at",
        )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("period_start", "period_end")
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # Nothing is edited on a run; the page is for reading and the approve button.
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status != PayRun.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        run = pay_run_create(
            period_start=form.cleaned_data["period_start"],
            period_end=form.cleaned_data["period_end"],
            by=request.user,
        )
        obj.pk = run.pk
        obj.__dict__.update(run.__dict__)

    def save_related(self, request, form, formsets, change):
        pass

    def delete_model(self, request, obj):
        pay_run_delete(pay_run=obj)

    def delete_queryset(self, request, queryset):
        for run in queryset.filter(status=PayRun.Status.DRAFT):
            pay_run_delete(pay_run=run)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/approve/", view(self.approve_view), name="attendance_payrun_approve"),
            path("<int:pk>/payout/", view(self.payout_view), name="attendance_payrun_payout"),
            path(
                "<int:pk>/export/<str:fmt>/",
                view(self.export_view),
                name="attendance_payrun_export",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if run is not None:
            extra["can_approve"] = request.user.has_perm("attendance.approve_payrun")
            extra["problems"] = pay_run_approval_problems(run, request.user)
            extra["run"] = run
            extra["members_total"] = run.lines.values("user_id").distinct().count()
            extra["can_pay_out"] = request.user.has_perm("attendance.submit_payout")
            extra["payouts"] = payout_summary(run)
        return super().change_view(request, object_id, form_url, extra)

    def approve_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("attendance.approve_payrun"):
            raise PermissionDenied("Approving pay runs needs 'Can approve pay runs'.")
        run = get_object_or_404(PayRun, pk=pk)
        try:
            members = pay_run_begin_approval(pay_run=run, by=request.user)
        except PayError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("admin:attendance_payrun_change", args=[pk]))
        # A month of a busy company is thousands of lines: their earnings and payslips go on
        # in the background, member by member, with progress (the run page says when done).
        return start_job(
            request,
            kind=BulkJob.Kind.APPROVE_PAY_RUN,
            targets=members,
            params={"pay_run": run.pk},
            what=f"approving {run} ({kes(run.total)}) for {len(members)} member(s)",
        )

    def payout_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("attendance.submit_payout"):
            raise PermissionDenied("Paying out needs 'Can submit payouts'.")
        run = get_object_or_404(PayRun, pk=pk)
        try:
            payouts = payouts_prepare(
                pay_run=run, by=request.user, partial=request.POST.get("partial") == "1"
            )
        except PayoutError as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(reverse("admin:attendance_payrun_change", args=[pk]))
        if not payouts:
            messages.warning(request, "Nothing could be paid out (no phone numbers, or no funds).")
            return HttpResponseRedirect(reverse("admin:attendance_payrun_change", args=[pk]))
        total = sum(p.amount for p in payouts)
        return start_job(
            request,
            kind=BulkJob.Kind.SUBMIT_PAYOUTS,
            targets=[(p.pk, member_name(p.user)) for p in payouts],
            what=f"M-Pesa payouts of {run}: {len(payouts)} member(s), KES {total:,}",
        )

    def export_view(self, request, pk, fmt):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(PayRun, pk=pk)
        if fmt not in ("xlsx", "csv"):
            raise PermissionDenied("Unknown format.")
        audit_record(
            AuditEvent.PERSONAL_DATA_EXPORTED,
            actor=request.user,
            target=run,
            details={"export": f"payroll {fmt}", "pay_run": str(run)},
        )
        name = f"payroll-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}-{run.pk}.{fmt}"
        if fmt == "csv":
            response = StreamingHttpResponse(payroll_csv(run), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        # FileResponse closes the file once sent (and a temporary file goes when closed).
        target = tempfile.TemporaryFile()  # noqa: SIM115
        payroll_xlsx(run, target)
        target.seek(0)
        return FileResponse(
            target,
            as_attachment=True,
            filename=name,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
