"""The event admin: the list with staffing, and the event page with its crew and attendance."""

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Exists, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from attendance.models import (
    Attendance,
    BulkJob,
    Event,
    EventCrew,
    EventRoleRequirement,
    RunOfShowBlock,
)
from attendance.models.events import SHORT_ALERT_MAX_HOURS
from attendance.services.crew.assignments import CrewError
from attendance.services.crew.events import (
    event_announce,
    event_ensure_manager,
    event_notify_created,
    event_save,
)
from attendance.services.crew.followup import crew_briefing_targets, crew_complete_event
from attendance.services.pay.deductions import event_labour_cost
from attendance.venue_location import coordinates_from_map_link, parse_coordinates
from attendance.wording import kes

from .attendance import AddAttendanceInline, AttendanceInline, save_attendance_formset
from .board import StaffingBoardMixin
from .crew import crew_job, invite_all
from .display import NamedFieldsMixin, notification_history, status_badge_column
from .event_crew import (
    AssignCrewInline,
    CrewInline,
    RoleRequirementInline,
    save_crew_formset,
    staffing_table,
)
from .pay import TimesheetInline
from .showday import RunOfShowInline, ShowDayMixin, save_run_of_show_formset
from .venue import VenueQrMixin

NO_MANAGER = "This event has no manager: nobody is told when crew decline. Pick one under Managers."


def _https_urls(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class EventForm(forms.ModelForm):
    """What is wrong with an event's times, in the words of whoever types them."""

    position = forms.CharField(
        label="Venue position",
        required=False,
        max_length=60,
        help_text="Latitude, longitude as copied from a map (e.g. -1.2921, 36.8219). Empty: "
        "read from the map link when it holds one. Crew checking in within the radius "
        "have proven they are there.",
    )

    class Meta:
        model = Event
        # URLs typed without a scheme are https (Django 6's default; the warning said so).
        formfield_callback = _https_urls
        fields = (
            "name",
            "client",
            "status",
            "managers",
            "starts_at",
            "ends_at",
            "call_time",
            "venue",
            "venue_map_url",
            "venue_radius_m",
            "plain_check_in",
            "hold_unproven",
            "leave_now_hours",
            "late_alert_minutes",
            "short_alert_hours",
            "check_out_reminder",
            "description",
            "special_instructions",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.DEFAULTED:
            if name in self.fields:
                self.fields[name].required = False
        if self.instance.venue_position:
            lat, lng = self.instance.venue_position
            self.fields["position"].initial = f"{lat}, {lng}"

    # Left empty, these take the usual values (a form posted without them keeps working).
    DEFAULTED = ("venue_radius_m", "leave_now_hours", "late_alert_minutes")

    def _default(self, name):
        value = self.cleaned_data.get(name)
        return Event._meta.get_field(name).default if value is None else value

    def clean_leave_now_hours(self):
        hours = self._default("leave_now_hours")
        if hours > 24:
            raise forms.ValidationError("At most 24 hours before call (0 turns it off).")
        return hours

    def clean_late_alert_minutes(self):
        minutes = self._default("late_alert_minutes")
        if minutes > 240:
            raise forms.ValidationError("At most 240 minutes after call (0 turns it off).")
        return minutes

    def clean_short_alert_hours(self):
        text = self.cleaned_data.get("short_alert_hours", "").replace(" ", "")
        parts = [part for part in text.split(",") if part]
        if any(not part.isdigit() or not 1 <= int(part) <= SHORT_ALERT_MAX_HOURS for part in parts):
            raise forms.ValidationError(
                f"Hours before call, from 1 to {SHORT_ALERT_MAX_HOURS}, separated by commas "
                "(e.g. 24,3); empty turns it off."
            )
        return ",".join(str(h) for h in sorted({int(p) for p in parts}, reverse=True))

    def clean_venue_radius_m(self):
        radius = self.cleaned_data.get("venue_radius_m")
        if radius is None:
            return Event._meta.get_field("venue_radius_m").default
        if not 50 <= radius <= 5000:
            raise forms.ValidationError(
                "Give between 50 and 5,000 metres: a phone's location is rarely closer than "
                "50 m indoors, and beyond 5 km it proves nothing."
            )
        return radius

    def clean_position(self):
        text = self.cleaned_data["position"].strip()
        if not text:
            return None
        position = parse_coordinates(text) or coordinates_from_map_link(text)
        if position is None:
            raise forms.ValidationError(
                "Not a position: type latitude, longitude (e.g. -1.2921, 36.8219), or paste a "
                "map link that shows the coordinates."
            )
        return position

    def clean(self):
        cleaned = super().clean()
        position = cleaned.get("position") or coordinates_from_map_link(
            cleaned.get("venue_map_url") or ""
        )
        self.instance.venue_latitude, self.instance.venue_longitude = position or (None, None)
        starts, ends, call = (cleaned.get(f) for f in ("starts_at", "ends_at", "call_time"))
        if starts and ends and ends <= starts:
            self.add_error(
                "ends_at",
                f"The event ends ({_when(ends)}) before it starts ({_when(starts)}): check the "
                "end's date (a show past midnight ends the next day).",
            )
        if starts and call and call > starts:
            self.add_error(
                "call_time",
                f"Crew would be called at {_when(call)}, after the start at {_when(starts)}: "
                "the call is at or before the start.",
            )
        return cleaned


def _when(value) -> str:
    local = timezone.localtime(value)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


@admin.register(Event)
class EventAdmin(
    NamedFieldsMixin, ShowDayMixin, VenueQrMixin, StaffingBoardMixin, admin.ModelAdmin
):
    form = EventForm
    # Staffing and status next to the name: at 1280 px the last columns leave the screen.
    list_display = ("name_and_client", "when", "status_badge", "crew_filled", "venue")
    list_filter = ("status", "starts_at")
    date_hierarchy = "starts_at"
    search_fields = ("name", "client", "venue")
    # A picker listing every user (thousands of crew) costs half a second per page.
    autocomplete_fields = ("managers",)
    inlines = [
        RunOfShowInline,
        RoleRequirementInline,
        CrewInline,
        AssignCrewInline,
        AttendanceInline,
        AddAttendanceInline,
        TimesheetInline,
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
        (
            "Check-in on the day",
            {"fields": ("position", "venue_radius_m", "plain_check_in", "hold_unproven")},
        ),
        (
            "Call-time messages",
            {
                "fields": (
                    "leave_now_hours",
                    "late_alert_minutes",
                    "short_alert_hours",
                    "check_out_reminder",
                ),
                "classes": ("collapse",),
            },
        ),
        ("Details", {"fields": ("description", "special_instructions")}),
        ("Crew: confirmed / needed", {"fields": ("staffing",)}),
        ("Labour cost", {"fields": ("labour_cost",)}),
        ("Communication", {"fields": ("communication_history",), "classes": ("collapse",)}),
    )
    readonly_fields = ("staffing", "communication_history", "labour_cost")

    @admin.display(description="Paid so far")
    def labour_cost(self, obj):
        if obj.pk is None:
            return "-"
        cost = event_labour_cost(obj.pk)
        if not cost.paid:
            return "Nothing yet: the crew's pay counts here once a pay run with it is approved."
        return (
            f"{kes(cost.paid)} gross pay + {kes(cost.employer)} employer's NSSF and housing "
            f"levy = {kes(cost.total)}"
        )

    @admin.display(description="Per role")
    def staffing(self, obj):
        if obj.pk is None:
            return (
                "Set the crew needed per role below; once saved, the staffing board assigns "
                "and invites people."
            )
        return format_html(
            '<p><a class="button" href="{}">Open the staffing board</a> to assign, invite and '
            "replace crew with their availability and record.</p>{}"
            "<p>On the day: "
            '<a class="button" href="{}" id="venue-qr-link">Venue QR code</a> to show on a '
            "screen at the venue (crew scan it to check in), "
            '<a class="button" href="{}" id="arrivals-link">Arrivals board</a> (who is on site, '
            "live), "
            '<a class="button" href="{}" id="call-sheet-admin-link">Call sheet</a> (to print, '
            "or as a PDF).</p>",
            reverse("admin:attendance_event_board", args=[obj.pk]),
            staffing_table(obj),
            reverse("admin:attendance_event_venue_qr", args=[obj.pk]),
            reverse("admin:attendance_event_arrivals", args=[obj.pk]),
            reverse("admin:attendance_event_call_sheet", args=[obj.pk]),
        )

    @admin.display(description="Messages about this event (email and SMS)")
    def communication_history(self, obj):
        if obj.pk is None:
            return "-"
        return notification_history(
            obj.notifications.order_by("-created_at", "-id"),
            obj.sms_messages.order_by("-created_at", "-id"),
        )

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
                _managed=Exists(Event.managers.through.objects.filter(event=OuterRef("pk"))),
            )
        )

    @admin.display(description="Event", ordering="name")
    def name_and_client(self, obj):
        warning = ""
        if getattr(obj, "_managed", True) is False:
            warning = format_html('<div class="sf-warning">{}</div>', "No manager")
        if not obj.client:
            return format_html("{}{}", obj.name, warning)
        return format_html('{}<div class="sf-sub">{}</div>{}', obj.name, obj.client, warning)

    @admin.display(description="When", ordering="starts_at")
    def when(self, obj):
        start, call = timezone.localtime(obj.starts_at), timezone.localtime(obj.call_time)
        return format_html(
            '{}<div class="sf-sub">call {}</div>',
            f"{start:%a} {start.day} {start:%b %Y, %H:%M}",
            f"{call:%H:%M}",
        )

    status_badge = status_badge_column()

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
        return invite_all(
            request,
            EventCrew.objects.filter(
                event__in=queryset, status=EventCrew.Status.INVITED, invitation_sent=False
            ),
        )

    @admin.action(
        description="Email the setup briefing (roster and instructions) to confirmed crew"
    )
    def send_setup_briefing(self, request, queryset):
        targets = []
        for event in queryset:
            try:
                targets += crew_briefing_targets(event=event)
            except CrewError as error:
                messages.warning(request, str(error))
        if not targets:
            return None
        return crew_job(
            request,
            EventCrew.objects.filter(pk__in=targets),
            kind=BulkJob.Kind.SEND_BRIEFING,
            what="setup briefings",
        )

    @admin.action(
        description="After the event: mark crew who checked in as completed",
        permissions=["change"],
    )
    def complete_crew(self, request, queryset):
        for event in queryset:
            try:
                result = crew_complete_event(event=event, by=request.user)
            except CrewError as error:
                messages.warning(request, str(error))
            else:
                said = [f"{event.name}: {result.completed} completed"]
                if result.checked_out_at_end:
                    end = timezone.localtime(event.ends_at)
                    said.append(
                        f"{result.checked_out_at_end} still checked in were checked out at "
                        f"the end ({end:%H:%M})"
                    )
                if result.never_checked_in:
                    said.append(f"{result.never_checked_in} confirmed but never checked in")
                messages.success(request, "; ".join(said) + ".")

    def get_inlines(self, request, obj):
        # A new event has no crew, attendance or pay yet: only what it needs.
        return [RoleRequirementInline] if obj is None else super().get_inlines(request, obj)

    def save_model(self, request, obj, form, change):
        if not change and obj.ends_at <= timezone.now():
            messages.warning(
                request,
                f"{obj.name} ended before now ({_when(obj.ends_at)}): it was saved as "
                f"{obj.get_status_display()}. Set it to Completed if it happened; crew cannot "
                "be invited to it.",
            )
        # Told after the inlines are saved (save_related): a change of the event and of its
        # run of show in one save is one message to each member.
        request._sf_event_changes = event_save(event=obj, by=request.user, announce=False)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        event = form.instance
        changes = getattr(request, "_sf_event_changes", None)
        if changes is not None:
            changes.extend(getattr(request, "_sf_run_of_show_changes", []))
            event_announce(event=event, changes=changes)
            if changes:
                messages.info(
                    request,
                    "Told of the change of "
                    + ", ".join(c["label"].lower() for c in changes)
                    + f": {changes.told_in_words()}.",
                )
        if not change:
            # Managers are only known once the many-to-many field is saved.
            if event_ensure_manager(event=event, by=request.user):
                messages.info(
                    request,
                    "You manage this event (nobody else was picked): you hear of declines.",
                )
            event_notify_created(event=event)
        elif not event.managers.exists():
            messages.warning(request, NO_MANAGER)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not str(object_id).isdigit():
            raise Http404("No such event.")  # not a 500 from the inlines' queries
        managed = Event.managers.through.objects.filter(event_id=object_id)
        if request.method == "GET" and not managed.exists():
            messages.warning(request, NO_MANAGER)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_formset(self, request, form, formset, change):
        if formset.model is EventCrew:
            return save_crew_formset(request, form.instance, formset)
        if formset.model is Attendance:
            return save_attendance_formset(request, formset)
        if formset.model is RunOfShowBlock:
            request._sf_run_of_show_changes = save_run_of_show_formset(form.instance, formset)
            return None
        return super().save_formset(request, form, formset, change)
