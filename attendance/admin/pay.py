"""Timesheet lines in admin: answer disputes, adjust, approve; the event page's pay inline (pay
runs: pay_runs.py). Every write goes through attendance.services.pay.timesheets."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Case, Value, When
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from attendance.models import (
    TimesheetLine,
    member_name,
)
from attendance.services.pay.timesheets import (
    timesheet_adjust,
    timesheet_approve,
    timesheet_keep,
    timesheet_recalculate,
)
from attendance.services.pay.unproven import timesheet_accept_unproven
from attendance.wording import kes

from .crew import UpcomingEventFilter
from .display import (
    CappedInlineMixin,
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    member_column,
    status_badge,
)
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
            timezone.localtime(change.changed_at).strftime("%d %b %Y %H:%M"),
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


def pay_status_badge(line: TimesheetLine):
    """The line's status; a held line says why it waits (its check-in was not proven)."""
    if line.held and line.status == Status.OPEN:
        return status_badge("held", "Held: check-in not proven")
    return status_badge(f"pay-{line.status}", line.get_status_display())


class AcceptUnprovenForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        label="Why they are accepted",
        help_text="Kept on each line's history, e.g. 'Seen on site by the crew chief'.",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class AnswerForm(forms.ModelForm):
    """What a manager does with a line: set the amount, keep it (answering a dispute), or work
    it out again from attendance. Always with a reason the member reads."""

    DECISIONS = [
        ("", "No change"),
        ("adjust", "Set the amount to…"),
        ("keep", "Keep the amount (answer the dispute)"),
        ("recalculate", "Work it out again from attendance and rates"),
        ("accept", "Accept the unproven check-in (the line is held)"),
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
        elif decision == "adjust" and cleaned["new_amount"] < 0:
            self.add_error("new_amount", "A line cannot pay less than nothing: give 0 or more.")
        if decision in ("adjust", "keep", "accept") and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why: the member and Finance will read it.")
        if decision == "keep" and self.instance.status != Status.DISPUTED:
            self.add_error("decision", "This line is not disputed.")
        if decision == "accept" and not self.instance.held:
            self.add_error("decision", "This line is not held: its check-in was proven.")
        return cleaned


@admin.register(TimesheetLine)
class TimesheetLineAdmin(IndexedSearchMixin, admin.ModelAdmin):
    form = AnswerForm
    list_display = ("member", "event_link", "role_name", "hours", "amount_column", "status_badge")
    list_filter = ("status", "held", UpcomingEventFilter, month_filter("created_at"))
    list_select_related = ("user", "event")
    search_event = "event"
    search_fields = ("user__username",)
    paginator = EstimatedCountPaginator
    sortable_by = ("created_at", "status")
    actions = ["approve_lines", "accept_unproven", "recalculate_lines"]
    readonly_fields = (
        "member",
        "event_link",
        "role_name",
        *PAY_FIELDS,
        "proof",
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
        ("Pay", {"fields": (*PAY_FIELDS, "proof")}),
        ("Dispute", {"fields": ("dispute_reason", "disputed_at", "dispute_answer")}),
        ("Answer or adjust", {"fields": ("decision", "new_amount", "reason")}),
        ("Approval", {"fields": ("changed_by", "changed_at", "approved_by", "approved_at")}),
        ("History", {"fields": ("history",)}),
    )

    member = member_column()

    status_badge = admin.display(description="Status", ordering="status")(
        lambda self, obj: pay_status_badge(obj)
    )

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
        # A PayError goes up to the admin site, which says why and shows the line again.
        if decision == "adjust":
            timesheet_adjust(
                line=obj, by=request.user, amount=data["new_amount"], reason=data["reason"]
            )
        elif decision == "keep":
            timesheet_keep(line=obj, by=request.user, reason=data["reason"])
        elif decision == "recalculate":
            timesheet_recalculate(line=obj, by=request.user)
        elif decision == "accept":
            lines = TimesheetLine.objects.filter(pk=obj.pk)
            timesheet_accept_unproven(lines=lines, by=request.user, reason=data["reason"])
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
                f"{left} left as they were: disputed (answer them first), held for an "
                "unproven check-in (accept it on the line's page) or already approved.",
            )

    @admin.action(
        description="Accept the unproven check-ins of the selected held lines",
        permissions=["change"],
    )
    def accept_unproven(self, request, queryset):
        """One reason for many held lines (a festival's plain-button check-ins that the crew
        chief saw on site): asked on a page of its own, then kept on each line's history."""
        held = queryset.filter(held=True).select_related("user", "event")
        form = AcceptUnprovenForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            accepted = timesheet_accept_unproven(
                lines=held, by=request.user, reason=form.cleaned_data["reason"]
            )
            messages.success(request, f"{accepted} held line(s) accepted: they can be approved.")
            return None
        lines = list(held[:200])
        if not lines:
            messages.warning(request, "None of the selected lines is held.")
            return None
        return TemplateResponse(
            request,
            "admin/attendance/timesheetline/accept_unproven.html",
            {
                **self.admin_site.each_context(request),
                "title": "Accept unproven check-ins",
                "form": form,
                "lines": lines,
                "count": held.count(),
                "selected": queryset.values_list("pk", flat=True),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
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
    fields = ("line", "role_name", "hours", "proof", "amount", "status_badge")
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
    status_badge = admin.display(description="Status")(lambda self, obj: pay_status_badge(obj))

    def get_queryset(self, request):
        first = Case(When(status=Status.DISPUTED, then=Value(0)), default=Value(1))
        return (
            super()
            .get_queryset(request)
            .select_related("user", "event")
            .annotate(disputed_first=first)
            .order_by("disputed_first", "user__first_name", "pk")
        )
