"""Crew admin: roles, and assignments with their answers and emails (the crew pieces of the
event page are in event_crew.py)."""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from attendance.models import BulkJob, CrewRole, Event, EventCrew, member_name
from attendance.services.crew.assignment_changes import crew_update
from attendance.services.crew.assignments import (
    CrewError,
    crew_assign,
    crew_check_assignable,
    crew_invite,
)
from attendance.services.crew.followup import crew_complete
from attendance.services.pay.assignment_pay import pay_assignment_set, pay_role_save
from attendance.services.pay.rules import (
    Allowances,
    PayRuleError,
    Rates,
    check_allowances,
    check_amount,
    check_rates,
)
from attendance.wording import kes

from .display import (
    EstimatedCountPaginator,
    IndexedSortMixin,
    crew_status_column,
    member_column,
    notification_history,
)
from .event_crew import warn_if_booked, warn_if_unavailable
from .jobs import start_job
from .search import IndexedSearchMixin

Status = EventCrew.Status


class CrewRoleForm(forms.ModelForm):
    class Meta:
        model = CrewRole
        fields = (
            "name",
            "description",
            "sort_order",
            "day_rate",
            "hourly_rate",
            "minimum_hours",
            "overtime_after_hours",
            "overtime_multiplier",
            "sunday_multiplier",
            "holiday_multiplier",
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("day_rate") is None and cleaned.get("hourly_rate") is None:
            return cleaned  # no rate yet: its lines will say to set one
        try:
            check_rates(
                Rates(
                    day_rate=cleaned.get("day_rate"),
                    hourly_rate=cleaned.get("hourly_rate"),
                    minimum_hours=cleaned.get("minimum_hours") or Decimal(0),
                    overtime_after_hours=cleaned.get("overtime_after_hours"),
                    overtime_multiplier=cleaned.get("overtime_multiplier") or Decimal(1),
                    sunday_multiplier=cleaned.get("sunday_multiplier") or Decimal(1),
                    holiday_multiplier=cleaned.get("holiday_multiplier") or Decimal(1),
                )
            )
        except PayRuleError as error:
            self.add_error(RATE_FIELDS.get(error.field), str(error))
        return cleaned


# The words pay rules use for a field -> the form's field.
RATE_FIELDS = {
    "day rate": "day_rate",
    "hourly rate": "hourly_rate",
    "minimum call": "minimum_hours",
    "overtime after": "overtime_after_hours",
    "overtime multiplier": "overtime_multiplier",
    "Sunday multiplier": "sunday_multiplier",
    "public holiday multiplier": "holiday_multiplier",
    "agreed fee": "agreed_fee",
    "transport": "transport_allowance",
    "meals": "meals_allowance",
    "per diem": "per_diem",
}


@admin.register(CrewRole)
class CrewRoleAdmin(admin.ModelAdmin):
    form = CrewRoleForm
    list_display = ("name", "description", "rates", "sort_order")
    list_editable = ("sort_order",)
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "description", "sort_order")}),
        (
            "Pay (KES)",
            {
                "fields": (
                    "day_rate",
                    "hourly_rate",
                    "minimum_hours",
                    "overtime_after_hours",
                    "overtime_multiplier",
                    "sunday_multiplier",
                    "holiday_multiplier",
                ),
                "description": "A day rate, an hourly rate, or both: crew are paid whichever "
                "is more. Overtime is paid on the hourly rate (or the day rate spread over the "
                "hours before overtime). A show on a Sunday or a Kenyan public holiday is paid "
                "times its multiplier, overtime at the better of the two multipliers; "
                "allowances and agreed fees are not multiplied.",
            },
        ),
    )

    @admin.display(description="Rates")
    def rates(self, obj):
        parts = []
        if obj.day_rate is not None:
            parts.append(f"{kes(obj.day_rate)} a show")
        if obj.hourly_rate is not None:
            hourly = f"{kes(obj.hourly_rate)}/h"
            if obj.minimum_hours:
                hourly += f", {obj.minimum_hours.normalize():f} h minimum"
            parts.append(hourly)
        return " or ".join(parts) or "No rate"

    def save_model(self, request, obj, form, change):
        pay_role_save(role=obj)


def report(request, done: int, verb: str, problems: list[str]) -> None:
    """One success line and at most ten reasons for what an action left undone."""
    if done:
        messages.success(request, f"{done} {verb}.")
    for problem in problems[:10]:
        messages.warning(request, problem)
    if len(problems) > 10:
        messages.warning(request, f"… and {len(problems) - 10} more not done.")


def crew_job(request, assignments, *, kind: str, what: str):
    """A background job doing one crew step for each assignment (invite, remind, confirm)."""
    rows = list(assignments.select_related("user", "event").order_by("event__starts_at", "pk"))
    if not rows:
        messages.info(request, f"Nothing to do: no {what} for the selected crew.")
        return None
    events = {a.event_id for a in rows}
    return start_job(
        request,
        kind=kind,
        targets=[(a.pk, f"{member_name(a.user)}, {a.event.name}") for a in rows],
        # One event: its job page leads back to that event's staffing board.
        params={"event": rows[0].event_id} if len(events) == 1 else None,
        what=f"{what} for {len(rows)} assignment(s)",
    )


def invite_all(request, assignments):
    # Said before the job starts, so the manager can stop it while it is still queued.
    warn_if_unavailable(request, list(assignments.select_related("event", "user")[:500]))
    return crew_job(request, assignments, kind=BulkJob.Kind.SEND_INVITATIONS, what="invitations")


class UpcomingEventFilter(admin.SimpleListFilter):
    """Events from two weeks ago on: a year of events would make a useless sidebar."""

    title = "event"
    parameter_name = "event"
    LIMIT = 40

    def lookups(self, request, model_admin):
        since = timezone.now() - timedelta(days=14)
        events = list(Event.objects.filter(ends_at__gte=since).order_by("starts_at")[: self.LIMIT])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(e.pk) != chosen for e in events):
            events += list(Event.objects.filter(pk=chosen))
        return [(str(e.pk), str(e)) for e in events]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            raise IncorrectLookupParameters(value)
        return queryset.filter(event_id=int(value))


PAY = ("agreed_fee", "transport_allowance", "meals_allowance", "per_diem")


class EventCrewForm(forms.ModelForm):
    class Meta:
        model = EventCrew
        fields = ("event", "user", "role", "call_time", "pickup_at", "pickup_point", "notes", *PAY)

    def clean(self):
        cleaned = super().clean()
        event = cleaned.get("event")
        if self.instance.pk is None and event is not None:
            try:
                crew_check_assignable(event=event)
            except CrewError as error:
                self.add_error("event", str(error))
        try:
            check_amount("agreed fee", cleaned.get("agreed_fee"))
            check_allowances(
                Allowances(
                    transport=cleaned.get("transport_allowance") or Decimal(0),
                    meals=cleaned.get("meals_allowance") or Decimal(0),
                    per_diem=cleaned.get("per_diem") or Decimal(0),
                )
            )
        except PayRuleError as error:
            self.add_error(RATE_FIELDS.get(error.field), str(error))
        return cleaned


@admin.register(EventCrew)
class EventCrewAdmin(IndexedSortMixin, IndexedSearchMixin, admin.ModelAdmin):
    form = EventCrewForm
    list_display = (
        "member",
        "event_when",
        "role",
        "status_badge",
        "invite_button",
        "confirmed",
        "invited",
    )
    list_filter = ("status", UpcomingEventFilter, "event__starts_at", "role", "invitation_sent")
    date_hierarchy = "event__starts_at"
    search_fields = ("user__username",)
    search_event = "event"
    search_help_text = "A member's name, username or email address, or an event's name."
    list_select_related = ("user", "event", "role")
    autocomplete_fields = ("user", "event")
    ordering = ("-event__starts_at", "role__sort_order", "user__first_name")
    # Sorted by a column, its ties go by event, the newest first, without joining every row
    # to its event, role and member first (a year of assignments: 300 to 400 ms a page).
    sort_ties = ("-event_id", "-id")
    # Not by role or member: the roster's order lives on the role and the name on the user, so
    # every row would be joined and sorted (300 ms and more at a year); the role filter and the
    # search pick one instead.
    sortable_by = ("event_when", "status_badge", "confirmed", "invited")
    paginator = EstimatedCountPaginator  # at most 100 pages: older rows are a filter away
    show_full_result_count = False
    actions = ["send_invitations", "send_reminders", "mark_confirmed", "mark_completed"]
    TRACKING = (
        "status",
        "invitation_sent",
        "invitation_sent_at",
        "responded_at",
        "confirmed_at",
        "decline_reason",
        "reminder_sent",
        "reminder_sent_at",
        "completed_at",
        "assigned_at",
        "assigned_by",
    )
    fieldsets = (
        ("Assignment", {"fields": ("event", "user", "role", "call_time", "invite_button")}),
        (
            "Pickup",
            {
                "fields": ("pickup_at", "pickup_point"),
                "description": "On the member's call sheet; a change is sent to them.",
            },
        ),
        (
            "Pay (KES)",
            {
                "fields": PAY,
                "description": "An agreed fee replaces the role's rates; allowances are added "
                "to the pay. A timesheet line already worked out changes when it is worked out "
                "again (Timesheet lines: 'Work out again').",
            },
        ),
        ("Communication tracking", {"fields": (*TRACKING, "communication_history")}),
        ("Notes", {"fields": ("notes",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        fixed = ("event", "user") if obj is not None else ()
        return (*fixed, *self.TRACKING, "invite_button", "communication_history")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                ("Assignment", {"fields": ("event", "user", "role", "call_time", "notes")}),
                ("Pay (KES)", {"fields": PAY}),
            )
        return self.fieldsets

    def get_urls(self):
        return [
            path(
                "<int:crew_id>/invite/",
                self.admin_site.admin_view(require_POST(self.invite_view)),
                name="attendance_eventcrew_invite",
            ),
            *super().get_urls(),
        ]

    member = member_column()
    status_badge = crew_status_column()

    @admin.display(description="Event", ordering="event__starts_at")
    def event_when(self, obj):
        return str(obj.event)

    @admin.display(description="Confirmed at", ordering="confirmed_at")
    def confirmed(self, obj):
        if obj.confirmed_at is None:
            return "-"
        return timezone.localtime(obj.confirmed_at).strftime("%d %b %H:%M")

    @admin.display(description="Invite sent", boolean=True, ordering="invitation_sent")
    def invited(self, obj):
        return obj.invitation_sent

    @admin.display(description="")
    def invite_button(self, obj):
        if obj is None or obj.pk is None or obj.status != Status.INVITED:
            return ""
        # A submit button of the surrounding form (changelist or change form) aimed at the
        # invite URL: one click, sent as POST with that form's CSRF token.
        return format_html(
            '<button type="submit" class="button" formmethod="post" formaction="{}" '
            "formnovalidate>{}</button>",
            reverse("admin:attendance_eventcrew_invite", args=[obj.pk]),
            "Resend invite" if obj.invitation_sent else "Send invite",
        )

    @admin.display(description="Messages about this assignment (email and SMS)")
    def communication_history(self, obj):
        return notification_history(
            obj.notifications.order_by("-created_at", "-id"),
            obj.sms_messages.order_by("-created_at", "-id"),
        )

    def invite_view(self, request, crew_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        assignment = get_object_or_404(EventCrew, pk=crew_id)
        try:
            crew_invite(assignment=assignment)
            warn_if_unavailable(request, [assignment])
        except CrewError as error:
            messages.error(request, f"{member_name(assignment.user)}: {error}")
        else:
            messages.success(
                request, f"Invitation sent to {member_name(assignment.user)} ({assignment.event})."
            )
        referer = request.headers.get("referer", "")
        if url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
            return HttpResponseRedirect(referer)
        return HttpResponseRedirect(reverse("admin:attendance_eventcrew_changelist"))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changes = crew_update(
                assignment=obj,
                role=data["role"],
                call_time=data.get("call_time") or False,
                notes=data.get("notes", ""),
                pickup_point=data.get("pickup_point", ""),
                pickup_at=data.get("pickup_at") or False,
                by=request.user,
            )
            self._save_pay(obj, data)
            if changes and obj.status == Status.CONFIRMED:
                warn_if_booked(request, obj)  # a moved call time may now clash
            return
        # EventCrewForm has already asked crew_check_assignable (over, cancelled).
        assignment = crew_assign(
            event=data["event"],
            user=data["user"],
            role=data["role"],
            call_time=data.get("call_time"),
            notes=data.get("notes", ""),
            by=request.user,
        )
        form.instance = assignment
        obj.pk = assignment.pk
        self._save_pay(assignment, data)
        warn_if_booked(request, assignment)

    def _save_pay(self, assignment, data):
        pay_assignment_set(
            assignment=assignment,
            agreed_fee=data.get("agreed_fee"),
            transport=data.get("transport_allowance") or Decimal(0),
            meals=data.get("meals_allowance") or Decimal(0),
            per_diem=data.get("per_diem") or Decimal(0),
        )

    @admin.action(
        description="Send invitations (to those who have not answered)", permissions=["change"]
    )
    def send_invitations(self, request, queryset):
        return invite_all(request, queryset)

    @admin.action(
        description="Send reminders (confirmed, not yet reminded)", permissions=["change"]
    )
    def send_reminders(self, request, queryset):
        return crew_job(request, queryset, kind=BulkJob.Kind.SEND_REMINDERS, what="reminders")

    @admin.action(description="Mark confirmed (answered by phone)", permissions=["change"])
    def mark_confirmed(self, request, queryset):
        return crew_job(request, queryset, kind=BulkJob.Kind.CONFIRM_CREW, what="confirmations")

    @admin.action(
        description="Mark completed (confirmed crew who checked in)", permissions=["change"]
    )
    def mark_completed(self, request, queryset):
        done, left = crew_complete(
            assignment_ids=queryset.values_list("pk", flat=True), by=request.user
        )
        problems = (
            [f"{left} left as they were: not confirmed, event not over, or never checked in."]
            if left
            else []
        )
        report(request, done, "marked completed", problems)
