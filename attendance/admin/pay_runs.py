"""Pay runs in admin: drawn up for a period, approved by another Finance member (in a
background job), paid out by M-Pesa, exported. Writes go through the pay-run and payout
services."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from attendance.models import (
    BulkJob,
    PayRun,
    PayRunLine,
    PayRunMember,
    member_name,
)
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.rows import keep_in_step
from attendance.services.jobs.exports import payroll_csv
from attendance.services.pay.deductions import statutory_numbers_missing
from attendance.services.pay.runs import (
    pay_run_approval_problems,
    pay_run_begin_approval,
    pay_run_create,
    pay_run_delete,
    pay_run_period_check,
)
from attendance.services.pay.timesheets import (
    PayError,
)
from attendance.services.payouts import (
    PayoutError,
    payout_summary,
    payouts_due,
    payouts_held,
    payouts_release,
)
from attendance.wording import kes

from .display import (
    CappedInlineMixin,
    ReadOnlyAdminMixin,
    member_column,
    status_badge,
)
from .jobs import start_job


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
            try:
                pay_run_period_check(start, end)
            except PayError as refused:
                self.add_error(refused.field, refused.message)
        return cleaned


class PayRunMemberInline(ReadOnlyAdminMixin, CappedInlineMixin, admin.TabularInline):
    model = PayRunMember
    fk_name = "pay_run"
    CAP = 50
    fields = (
        "member",
        "earned",
        "withheld",
        "net",
        "balance_before",
        "deducted",
        "to_pay",
        "employer_cost",
    )
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Payslips"
    member = member_column()

    def has_view_permission(self, request, obj=None):
        # Whoever may open the run (the checker who approves it above all) reads its payslips.
        return request.user.has_perm("attendance.view_payrun")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user").order_by("user__first_name")


class PayRunLineInline(ReadOnlyAdminMixin, CappedInlineMixin, admin.TabularInline):
    model = PayRunLine
    fk_name = "pay_run"
    CAP = 50
    fields = ("member", "event", "is_correction", "amount", "withheld", "employer_cost")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "Lines"
    member = member_column()

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("attendance.view_payrun")

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


def _run_allowed(request, pk: int, codename: str, permission: str) -> PayRun:
    """The run a money action is for, once the staff member holds its own permission."""
    if not request.user.has_perm(f"attendance.{codename}"):
        raise PermissionDenied(f"This needs the permission '{permission}'.")
    return get_object_or_404(PayRun, pk=pk)


def _recent_job(request, kind: str, run: PayRun):
    """A second press of a pay run's money button, while the first one's job runs: that job's
    page (with a word), or None."""
    since = timezone.now() - timedelta(seconds=settings.JOB_REPEAT_WINDOW_SECONDS)
    job = BulkJob.objects.filter(
        kind=kind, created_by=request.user, params__pay_run=run.pk, created_at__gte=since
    ).first()
    if job is None:
        return None
    messages.info(request, "This was started a moment ago: here is its job; nothing ran twice.")
    return HttpResponseRedirect(reverse("admin:attendance_bulkjob_change", args=[job.pk]))


def _back_to(run: PayRun):
    return HttpResponseRedirect(reverse("admin:attendance_payrun_change", args=[run.pk]))


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
        keep_in_step(obj, run)  # admin goes on with obj: the run the service made

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
            # State changes: POST only (a GET is a 405).
            path(
                "<int:pk>/approve/",
                view(require_POST(self.approve_view)),
                name="attendance_payrun_approve",
            ),
            path(
                "<int:pk>/payout/",
                view(require_POST(self.payout_view)),
                name="attendance_payrun_payout",
            ),
            path(
                "<int:pk>/release/",
                view(require_POST(self.release_view)),
                name="attendance_payrun_release",
            ),
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
            if run.status == PayRun.Status.DRAFT:
                extra["numbers_missing"] = statutory_numbers_missing(run)
            extra["run"] = run
            extra["members_total"] = run.lines.values("user_id").distinct().count()
            extra["can_pay_out"] = request.user.has_perm("attendance.submit_payout")
            extra["payouts"] = payout_summary(run)
            extra["held"] = payouts_held(run) if extra["payouts"]["held"] else []
        return super().change_view(request, object_id, form_url, extra)

    def release_view(self, request, pk):
        """The second approval of payouts to new numbers, by another Finance member."""
        run = _run_allowed(request, pk, "submit_payout", "Can submit payouts")
        try:
            released = payouts_release(pay_run=run, by=request.user)
        except PayoutError as error:
            messages.error(request, str(error))
            return _back_to(run)
        if not released:
            messages.warning(request, "Nothing released: those members have no number now.")
            return _back_to(run)
        return start_job(
            request,
            kind=BulkJob.Kind.SUBMIT_PAYOUTS,
            targets=[(p.pk, member_name(p.user)) for p in released],
            params={"pay_run": run.pk, "released": True},
            what=f"M-Pesa payouts to new numbers released: {len(released)} member(s)",
        )

    def approve_view(self, request, pk):
        run = _run_allowed(request, pk, "approve_payrun", "Can approve pay runs")
        try:
            members = pay_run_begin_approval(pay_run=run, by=request.user)
        except PayError as error:
            earlier = _recent_job(request, BulkJob.Kind.APPROVE_PAY_RUN, run)
            if earlier is not None:
                return earlier
            messages.error(request, str(error))
            return _back_to(run)
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
        """Pay out starts a job at once: the float check (Account Balance answers through our
        result URL, seconds later) and the payouts run there, with their progress shown."""
        run = _run_allowed(request, pk, "submit_payout", "Can submit payouts")
        if run.status != PayRun.Status.APPROVED or not payouts_due(run):
            earlier = _recent_job(request, BulkJob.Kind.SUBMIT_PAYOUTS, run)
            if earlier is not None:
                return earlier
            messages.error(
                request,
                "Nothing to pay out: every payslip is paid, on its way, under KES 10, or no "
                "longer owed (the member's balance changed since approval).",
            )
            return _back_to(run)
        return start_job(
            request,
            kind=BulkJob.Kind.SUBMIT_PAYOUTS,
            params={"pay_run": run.pk, "partial": request.POST.get("partial") == "1"},
            what=f"M-Pesa payouts of {run}: the balance is checked first",
        )

    def export_view(self, request, pk, fmt):
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(PayRun, pk=pk)
        if fmt == "xlsx":
            # A spreadsheet of a festival's thousands of lines is a job: a worker writes it to
            # the shared storage and any web node hands it over (the job's download link).
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            return start_job(
                request,
                kind=BulkJob.Kind.EXPORT_PAYROLL,
                params={"pay_run": run.pk},
                what=f"the payroll spreadsheet of {run}",
            )
        if fmt != "csv":
            raise PermissionDenied("Unknown format.")
        audit_record(
            AuditEvent.PERSONAL_DATA_EXPORTED,
            actor=request.user,
            target=run,
            details={"export": "payroll csv", "pay_run": str(run)},
        )
        name = f"payroll-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}-{run.pk}.csv"
        # CSV is made while it is sent, on whichever node is asked: nothing is stored.
        response = StreamingHttpResponse(payroll_csv(run), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
