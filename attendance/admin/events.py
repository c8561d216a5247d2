from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from attendance.models import (
    Attendance,
    AttendanceCorrection,
    Event,
    EventCrew,
    EventRoleRequirement,
)
from attendance.services.attendance import (
    AttendanceError,
    attendance_correct,
    attendance_expect,
)
from attendance.services.crew import (
    CrewError,
    crew_complete_event,
    crew_send_briefing,
)
from attendance.services.events import event_notify_created, event_save

from .crew import (
    AssignCrewInline,
    CrewInline,
    RoleRequirementInline,
    invite_all,
    save_crew_formset,
    staffing_table,
)
from .display import AddOnlyInlineMixin, csv_response, notification_history, status_badge

_CORRECTABLE = ("status", "check_in_at", "check_out_at", "call_time", "notes")


def _save_attendance_form(request, form, *, event=None):
    """Route an admin attendance form through the service so corrections are recorded."""
    obj = form.instance
    changed = {f: form.cleaned_data[f] for f in form.changed_data if f in _CORRECTABLE}
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
        check_in, check_out = cleaned.get("check_in_at"), cleaned.get("check_out_at")
        if check_out and not check_in:
            self.add_error("check_out_at", "A check-out needs a check-in.")
        elif check_in and check_out and check_out <= check_in:
            self.add_error("check_out_at", "Check-out must come after check-in.")
        return cleaned


class AttendanceInline(admin.TabularInline):
    """Who is on the list: times and status editable (recorded as corrections)."""

    model = Attendance
    form = AttendanceForm
    fields = ("member", "call_time", "status", "check_in_at", "check_out_at", "hours_worked")
    readonly_fields = ("member", "hours_worked")
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False  # new names come through AddAttendanceInline

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "event")

    @admin.display(description="Member")
    def member(self, obj):
        return obj.user.get_full_name() or obj.user.username


class AddAttendanceInline(AddOnlyInlineMixin, admin.TabularInline):
    """Walk-ins and people staffed without the crew workflow."""

    model = Attendance
    form = AttendanceForm
    fields = ("user", "call_time", "status", "check_in_at", "check_out_at")
    autocomplete_fields = ("user",)
    extra = 0
    verbose_name = "addition to the attendance list"
    verbose_name_plural = "Add to the attendance list"


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    # Staffing and status next to the name: at 1280 px the last columns leave the screen.
    list_display = ("name_and_client", "when", "status_badge", "crew_filled", "venue")
    list_filter = ("status", "starts_at")
    date_hierarchy = "starts_at"
    search_fields = ("name", "client", "venue")
    filter_horizontal = ("managers",)
    inlines = [
        RoleRequirementInline,
        CrewInline,
        AssignCrewInline,
        AttendanceInline,
        AddAttendanceInline,
    ]
    actions = ["send_invitations", "send_setup_briefing", "complete_crew"]
    show_full_result_count = False
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = (
        (None, {"fields": ("name", "client", "status", "managers")}),
        (
            "When and where",
            {"fields": ("starts_at", "ends_at", "call_time", "venue", "venue_map_url")},
        ),
        ("Details", {"fields": ("description", "special_instructions")}),
        ("Crew: confirmed / needed", {"fields": ("staffing",)}),
        ("Communication", {"fields": ("communication_history",), "classes": ("collapse",)}),
    )
    readonly_fields = ("staffing", "communication_history")

    @admin.display(description="Per role")
    def staffing(self, obj):
        if obj.pk is None:
            return "Save the event first, then set the crew needed and assign people."
        return staffing_table(obj)

    @admin.display(description="Emails about this event")
    def communication_history(self, obj):
        if obj.pk is None:
            return "-"
        return notification_history(obj.notifications.order_by("-created_at", "-id"))

    def get_queryset(self, request):
        confirmed = (
            EventCrew.objects.filter(
                event=OuterRef("pk"),
                status__in=[EventCrew.Status.CONFIRMED, EventCrew.Status.COMPLETED],
            )
            .values("event")
            .annotate(n=Count("pk"))
            .values("n")
        )
        needed = (
            EventRoleRequirement.objects.filter(event=OuterRef("pk"))
            .values("event")
            .annotate(n=Sum("needed"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                _confirmed=Coalesce(Subquery(confirmed), 0),
                _needed=Coalesce(Subquery(needed), 0),
            )
        )

    @admin.display(description="Event", ordering="name")
    def name_and_client(self, obj):
        if not obj.client:
            return obj.name
        return format_html('{}<div class="sf-sub">{}</div>', obj.name, obj.client)

    @admin.display(description="When", ordering="starts_at")
    def when(self, obj):
        start, call = timezone.localtime(obj.starts_at), timezone.localtime(obj.call_time)
        return format_html(
            '{}<div class="sf-sub">call {}</div>',
            f"{start:%a} {start.day} {start:%b %Y, %H:%M}",
            f"{call:%H:%M}",
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    @admin.display(description="Crew confirmed / needed", ordering="_confirmed")
    def crew_filled(self, obj):
        text = f"{obj._confirmed} / {obj._needed}"
        if obj._needed and obj._confirmed < obj._needed:
            return format_html('<span class="sf-warning">{}</span>', text)
        return text

    @admin.action(
        description="Send invitations to assigned crew not yet invited", permissions=["change"]
    )
    def send_invitations(self, request, queryset):
        invite_all(
            request,
            EventCrew.objects.filter(
                event__in=queryset, status=EventCrew.Status.INVITED, invitation_sent=False
            ),
        )

    @admin.action(
        description="Email the setup briefing (roster and instructions) to confirmed crew"
    )
    def send_setup_briefing(self, request, queryset):
        for event in queryset:
            try:
                sent = crew_send_briefing(event=event)
            except CrewError as error:
                messages.warning(request, str(error))
            else:
                messages.success(request, f"{event.name}: briefing sent to {sent} crew.")

    @admin.action(
        description="After the event: mark crew who checked in as completed",
        permissions=["change"],
    )
    def complete_crew(self, request, queryset):
        for event in queryset:
            try:
                done, left = crew_complete_event(event=event)
            except CrewError as error:
                messages.warning(request, str(error))
            else:
                messages.success(
                    request,
                    f"{event.name}: {done} completed"
                    + (f", {left} confirmed but never checked in." if left else "."),
                )

    def save_model(self, request, obj, form, change):
        changes = event_save(event=obj, by=request.user)
        if changes:
            messages.info(
                request,
                "Crew were emailed about the change of "
                + ", ".join(c["label"].lower() for c in changes)
                + ".",
            )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if not change:
            # Managers are only known once the many-to-many field is saved.
            event_notify_created(event=form.instance)

    def save_formset(self, request, form, formset, change):
        if formset.model is EventCrew:
            return save_crew_formset(request, form.instance, formset)
        if formset.model is not Attendance:
            return super().save_formset(request, form, formset, change)
        # The admin's change message reads these three lists.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            if inline_form in formset.deleted_forms:
                if inline_form.instance.pk:
                    formset.deleted_objects.append(inline_form.instance)
                    inline_form.instance.delete()
                continue
            if not inline_form.has_changed() or not inline_form.cleaned_data:
                continue
            is_new = inline_form.instance.pk is None
            try:
                attendance = _save_attendance_form(request, inline_form, event=form.instance)
            except AttendanceError as error:
                messages.error(request, f"{inline_form.cleaned_data['user']}: {error}")
                continue
            if is_new:
                formset.new_objects.append(attendance)
            else:
                formset.changed_objects.append((attendance, inline_form.changed_data))


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


class ExportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["end"] < cleaned["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return cleaned


CSV_HEADER = [
    "event",
    "event_date",
    "client",
    "venue",
    "username",
    "name",
    "call_time",
    "check_in",
    "check_out",
    "status",
    "hours_worked",
    "check_in_method",
    "notes",
]


def attendance_csv_rows(queryset):
    def fmt(value):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""

    yield CSV_HEADER
    for a in (
        queryset.select_related("event", "user")
        .order_by("event__starts_at", "user__username")
        .iterator(chunk_size=2000)
    ):
        yield [
            a.event.name,
            fmt(a.event.starts_at)[:10],
            a.event.client,
            a.event.venue,
            a.user.username,
            a.user.get_full_name(),
            fmt(a.expected_call_time),
            fmt(a.check_in_at),
            fmt(a.check_out_at),
            a.status,
            a.hours_worked if a.hours_worked is not None else "",
            a.check_in_method,
            a.notes,
        ]


def attendance_csv_response(queryset, filename):
    return csv_response(attendance_csv_rows(queryset), filename)


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin):
    form = AttendanceForm
    change_list_template = "admin/attendance/attendance/change_list.html"
    list_display = (
        "event",
        "member",
        "event_date",
        "call",
        "status_badge",
        "check_in_at",
        "check_out_at",
        "hours_worked",
        "check_in_method",
    )
    list_filter = ("status", "check_in_method", "event__starts_at")
    date_hierarchy = "event__starts_at"
    search_fields = ("user__username", "user__first_name", "user__last_name", "event__name")
    list_select_related = ("event", "user")
    autocomplete_fields = ("user", "event")
    readonly_fields = (
        "hours_worked",
        "check_in_method",
        "check_out_method",
        "created_at",
        "updated_at",
    )
    inlines = [CorrectionInline]
    actions = ["export_csv"]
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
                    "check_in_method",
                    "check_out_method",
                )
            },
        ),
        ("Notes", {"fields": ("notes", "correction_reason", "created_at", "updated_at")}),
    )

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
        form = ExportForm(request.GET or None)
        if form.is_valid():
            tz = timezone.get_current_timezone()
            start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=tz)
            end = datetime.combine(
                form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=tz
            )
            queryset = Attendance.objects.filter(
                event__starts_at__gte=start, event__starts_at__lt=end
            )
            name = f"attendance-{form.cleaned_data['start']}-{form.cleaned_data['end']}.csv"
            return attendance_csv_response(queryset, name)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "opts": self.model._meta,
            "title": "Export attendance",
        }
        return TemplateResponse(request, "admin/attendance/attendance/export.html", context)

    @admin.action(description="Export selected attendance as CSV")
    def export_csv(self, request, queryset):
        return attendance_csv_response(queryset, "attendance-selected.csv")

    @admin.display(description="Member", ordering="user__first_name")
    def member(self, obj):
        return obj.user.get_full_name() or obj.user.username

    @admin.display(description="Date", ordering="event__starts_at")
    def event_date(self, obj):
        return timezone.localtime(obj.event.starts_at).strftime("%d %b %Y")

    @admin.display(description="Call time")
    def call(self, obj):
        return timezone.localtime(obj.expected_call_time).strftime("%H:%M")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return status_badge(obj.status, obj.get_status_display())

    def save_model(self, request, obj, form, change):
        _save_attendance_form(request, form)
