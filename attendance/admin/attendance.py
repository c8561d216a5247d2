"""Attendance in admin: the list, corrections kept with who and why, removals, the CSV export,
and the attendance inlines of the event page. Every write goes through the attendance service."""

from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from attendance.models import (
    Attendance,
    AttendanceCorrection,
    AttendanceRemoval,
    BulkJob,
    RefusedCheckIn,
)
from attendance.services.attendance import (
    CORRECTABLE_FIELDS,
    AttendanceError,
    attendance_check_times,
    attendance_correct,
    attendance_expect,
    attendance_remove,
)

from .display import (
    AddOnlyInlineMixin,
    CappedInlineMixin,
    EstimatedCountPaginator,
    IndexedSortMixin,
    NamedFieldsMixin,
    ReadOnlyAdminMixin,
    local_day,
    local_time,
    member_column,
    proof_badge,
    status_badge_column,
)
from .jobs import start_job
from .search import IndexedSearchMixin


class AttendanceForm(forms.ModelForm):
    correction_reason = forms.CharField(
        required=False,
        max_length=255,
        help_text="Why this record is being changed (kept in its history).",
    )

    class Meta:
        model = Attendance
        fields = ("event", "user", "call_time", "status", "check_in_at", "check_out_at", "notes")

    def clean(self):
        cleaned = super().clean()
        try:
            attendance_check_times(
                check_in_at=cleaned.get("check_in_at"), check_out_at=cleaned.get("check_out_at")
            )
        except AttendanceError as error:
            self.add_error("check_out_at", str(error))
        return cleaned


def save_attendance_form(request, form, *, event=None) -> Attendance:
    """Route an admin attendance form through the service so corrections are recorded."""
    obj = form.instance
    changed = {f: form.cleaned_data[f] for f in form.changed_data if f in CORRECTABLE_FIELDS}
    reason = form.cleaned_data.get("correction_reason", "")
    if obj.pk is None:
        attendance = attendance_expect(
            event=event or form.cleaned_data["event"],
            user=form.cleaned_data["user"],
            call_time=form.cleaned_data.get("call_time"),
        )
        changed.pop("call_time", None)
    else:
        attendance = obj
    if changed:
        attendance = attendance_correct(
            attendance=attendance, by=request.user, reason=reason or "Recorded in admin", **changed
        )
    form.instance = attendance
    return attendance


def save_attendance_formset(request, formset) -> None:
    """The event page's attendance rows: corrections and removals through the service."""
    # The admin's change message reads these three lists.
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.forms:
        if form in formset.deleted_forms:
            if form.instance.pk:
                reason = form.cleaned_data.get("correction_reason") or "Removed in admin"
                attendance_remove(attendance=form.instance, by=request.user, reason=reason)
                formset.deleted_objects.append(form.instance)
            continue
        if not form.has_changed() or not form.cleaned_data:
            continue
        is_new = form.instance.pk is None
        try:
            attendance = save_attendance_form(request, form, event=formset.instance)
        except AttendanceError as error:
            messages.error(request, f"{form.cleaned_data['user']}: {error}")
            continue
        if is_new:
            formset.new_objects.append(attendance)
        else:
            formset.changed_objects.append((attendance, form.changed_data))


class AttendanceInline(NamedFieldsMixin, CappedInlineMixin, admin.TabularInline):
    """Who is on the list: times and status editable (recorded as corrections); the first
    CAP of them (the attendance list has everyone)."""

    model = Attendance
    form = AttendanceForm
    fields = (
        "member",
        "call_time",
        "status",
        "check_in_at",
        "check_out_at",
        "hours_worked",
        "proof",
    )
    readonly_fields = ("member", "hours_worked", "proof")
    extra = 0
    member = member_column()
    proof = admin.display(description="Proof")(lambda self, obj: proof_badge(obj))

    def has_add_permission(self, request, obj=None):
        return False  # new names come through AddAttendanceInline

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "event")


class AddAttendanceInline(NamedFieldsMixin, AddOnlyInlineMixin, admin.TabularInline):
    """Walk-ins and people staffed without the crew workflow."""

    model = Attendance
    form = AttendanceForm
    fields = ("user", "call_time", "status", "check_in_at", "check_out_at")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = "addition to the attendance list"
    verbose_name_plural = "Add to the attendance list"


class CorrectionInline(admin.TabularInline):
    model = AttendanceCorrection
    fields = ("changed_at", "changed_by", "changes", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")


@admin.register(AttendanceRemoval)
class AttendanceRemovalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Records taken off an event's list, with what they held: history, never edited."""

    list_display = ("removed_at", "event", "member", "removed_by", "reason")
    list_select_related = ("event", "user", "removed_by")
    search_fields = ("=user__username", "event__name")
    ordering = ("-removed_at", "-id")
    readonly_fields = ("event", "user", "record", "removed_by", "removed_at", "reason")
    member = member_column()


@admin.register(RefusedCheckIn)
class RefusedCheckInAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Check-ins made with no signal that did not prove presence when sent (a venue code not
    valid at the time the phone claimed, a time ahead of ours or too long ago): refused, and
    kept for the event manager to ask about."""

    list_display = ("received_at", "event", "member", "claimed_at", "reason")
    list_select_related = ("event", "user")
    list_filter = (("received_at", admin.DateFieldListFilter),)
    search_fields = ("=user__username", "event__name")
    ordering = ("-received_at", "-id")
    readonly_fields = ("event", "user", "code", "claimed_at", "received_at", "reason")
    member = member_column()


class ExportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["end"] < cleaned["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return cleaned


def export_attendance(request, queryset):
    ids = list(queryset.order_by().values_list("pk", flat=True))
    return start_job(
        request,
        kind=BulkJob.Kind.EXPORT_ATTENDANCE,
        params={"ids": ids},
        total=len(ids),
        what=f"a CSV of {len(ids):,} attendance record(s)",
    )


@admin.register(Attendance)
class AttendanceAdmin(IndexedSortMixin, IndexedSearchMixin, admin.ModelAdmin):
    form = AttendanceForm
    change_list_template = "admin/attendance/attendance/change_list.html"
    # Narrow columns (a time, not a full date-time; the event's name once) so that the status,
    # the times and the hours show within a 1280 px window beside the filters.
    list_display = (
        "event_name",
        "member",
        "event_date",
        "call",
        "status_badge",
        "checked_in",
        "checked_out",
        "hours",
        "proof",
    )
    list_filter = ("status", "check_in_method", "check_in_flag", "event__starts_at")
    date_hierarchy = "event__starts_at"
    search_fields = ("user__username",)
    search_event = "event"
    search_help_text = "A member's name, username or email address, or an event's name."
    list_select_related = ("event", "user")
    # Sorted by a column, ties go by event, the newest first, without joining every row to its
    # event and member first (a year of attendance: about 300 ms a page).
    sort_ties = ("-event_id", "-id")
    # Not by event name or member: either sorts a year of rows joined to another table (300 ms
    # and more at a year); the search finds an event or a member, the date column sorts by day.
    sortable_by = ("event_date", "status_badge", "checked_in", "checked_out", "hours", "proof")
    autocomplete_fields = ("user", "event")
    readonly_fields = (
        "hours_worked",
        "check_in_proof",
        "check_out_proof",
        "created_at",
        "updated_at",
    )
    inlines = [CorrectionInline]
    actions = ["export_csv"]
    paginator = EstimatedCountPaginator  # at most 100 pages: older rows are a filter away
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("event", "user", "call_time", "status")}),
        (
            "Times",
            {
                "fields": (
                    "check_in_at",
                    "check_out_at",
                    "hours_worked",
                    "check_in_proof",
                    "check_out_proof",
                )
            },
        ),
        ("Notes", {"fields": ("notes", "correction_reason", "created_at", "updated_at")}),
    )
    member = member_column()
    status_badge = status_badge_column()

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="attendance_attendance_export",
            ),
            *super().get_urls(),
        ]

    def export_view(self, request):
        # Starting the export job changes state: a POST with its CSRF token. The page itself
        # (GET) may be opened with dates already filled in (?start=&end=).
        if request.method == "POST":
            form = ExportForm(request.POST)
        else:
            form = ExportForm(initial=request.GET.dict())
        if form.is_bound and form.is_valid():
            tz = timezone.get_current_timezone()
            start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=tz)
            end = datetime.combine(
                form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=tz
            )
            queryset = Attendance.objects.filter(
                event__starts_at__gte=start, event__starts_at__lt=end
            )
            return export_attendance(request, queryset)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Export attendance",
        }
        return TemplateResponse(request, "admin/attendance/attendance/export.html", context)

    @admin.action(description="Export selected attendance as CSV")
    def export_csv(self, request, queryset):
        return export_attendance(request, queryset)

    @admin.display(description="Event", ordering="event__name")
    def event_name(self, obj):
        return obj.event.name

    @admin.display(description="Date", ordering="event__starts_at")
    def event_date(self, obj):
        return local_day(obj.event.starts_at)

    @admin.display(description="Call")
    def call(self, obj):
        return local_time(obj.expected_call_time, day_of=obj.event.starts_at)

    @admin.display(description="In", ordering="check_in_at")
    def checked_in(self, obj):
        return local_time(obj.check_in_at, day_of=obj.event.starts_at)

    @admin.display(description="Out", ordering="check_out_at")
    def checked_out(self, obj):
        return local_time(obj.check_out_at, day_of=obj.event.starts_at)

    @admin.display(description="Hours", ordering="hours_worked")
    def hours(self, obj):
        return obj.hours_worked if obj.hours_worked is not None else "-"

    @admin.display(description="Proof", ordering="check_in_method")
    def proof(self, obj):
        return proof_badge(obj)

    def save_model(self, request, obj, form, change):
        save_attendance_form(request, form)

    def delete_model(self, request, obj):
        attendance_remove(attendance=obj, by=request.user, reason="Deleted in admin")

    def delete_queryset(self, request, queryset):
        for attendance in queryset:
            attendance_remove(attendance=attendance, by=request.user, reason="Deleted in admin")
