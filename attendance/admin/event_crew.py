"""The crew pieces of the event page: crew needed per role, the assigned crew, rows to assign
several people at once, and the staffing table. Writes go through the crew services."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from attendance.models import Event, EventCrew, EventRoleRequirement, member_name
from attendance.services.crew.assignment_changes import crew_update
from attendance.services.crew.assignments import CrewError, crew_assign, crew_remove
from attendance.services.crew.availability import unavailable_for
from attendance.services.crew.staffing import crew_conflicts, event_staffing

from .display import (
    AddOnlyInlineMixin,
    CappedInlineMixin,
    NamedFieldsMixin,
    crew_status_column,
    status_badge,
)

Status = EventCrew.Status


def warn_if_unavailable(request, assignments: list[EventCrew]) -> None:
    """Assigning or inviting someone who marked a day of the event unavailable is allowed (they
    may have said yes on the phone), but said, with their reason."""
    by_event: dict[int, list[EventCrew]] = {}
    for assignment in assignments:
        by_event.setdefault(assignment.event_id, []).append(assignment)
    for rows in by_event.values():
        event = rows[0].event
        marked = unavailable_for(event, [a.user_id for a in rows])
        for assignment in rows:
            row = marked.get(assignment.user_id)
            if row is not None:
                reason = f" ({row.reason})" if row.reason else ""
                messages.warning(
                    request,
                    f"{member_name(assignment.user)} marked {row} as unavailable{reason}, "
                    f"which includes {event.name}.",
                )


def warn_if_booked(request, assignment: EventCrew) -> None:
    """Assigning someone who is confirmed elsewhere at that time, or who marked the day
    unavailable, is allowed, but said."""
    warn_if_unavailable(request, [assignment])
    warn_if_clashing(request, assignment)


def warn_if_clashing(request, assignment: EventCrew) -> None:
    """Someone confirmed elsewhere at that time may be assigned (a swap), but is told of."""
    for clash in crew_conflicts(
        user=assignment.user, event=assignment.event, call_time=assignment.call_time
    ):
        when = timezone.localtime(clash.event.starts_at)
        messages.warning(
            request,
            f"{member_name(assignment.user)} is already confirmed for {clash.event.name} "
            f"({when:%a %d %b %H:%M}) as {clash.role}, which overlaps {assignment.event.name}. "
            "They cannot confirm both.",
        )


class _CachedRoleChoices:
    """One query for the role dropdown of every inline row, not one per row."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "role":
            if not hasattr(request, "_crew_role_choices"):
                request._crew_role_choices = list(field.choices)
            field.choices = request._crew_role_choices
            # Four edit/add/delete/view icons on every row are noise; roles have their page.
            for option in ("add", "change", "delete", "view"):
                setattr(field.widget, f"can_{option}_related", False)
        return field


class RoleRequirementInline(NamedFieldsMixin, _CachedRoleChoices, admin.TabularInline):
    model = EventRoleRequirement
    fields = ("role", "needed", "kit")
    extra = 0
    verbose_name_plural = "Crew needed per role"


class CrewInline(NamedFieldsMixin, CappedInlineMixin, _CachedRoleChoices, admin.TabularInline):
    """The crew already assigned: role, call time and instructions editable, answers shown
    (the first CAP of them: the crew list has everyone)."""

    model = EventCrew
    fields = (
        "member",
        "role",
        "call_time",
        "notes",
        "status_badge",
        "invitation_sent",
        "answered",
    )
    readonly_fields = ("member", "status_badge", "invitation_sent", "answered")
    extra = 0
    verbose_name_plural = "Crew"
    formfield_overrides = {
        EventCrew._meta.get_field("notes").__class__: {
            "widget": forms.Textarea(attrs={"rows": 1, "cols": 30})
        }
    }

    def has_add_permission(self, request, obj=None):
        return False  # new people come through AssignCrewInline

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("user", "role", "event")
            .order_by("role__sort_order", "user__first_name", "user__username")
        )

    @admin.display(description="Member")
    def member(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:attendance_eventcrew_change", args=[obj.pk]),
            member_name(obj.user),
        )

    status_badge = crew_status_column()

    @admin.display(description="Answered")
    def answered(self, obj):
        if obj.responded_at is None:
            return "-"
        when = timezone.localtime(obj.responded_at).strftime("%d %b %H:%M")
        return f"{when}: {obj.decline_reason}" if obj.decline_reason else when


class AssignCrewInline(
    NamedFieldsMixin, AddOnlyInlineMixin, _CachedRoleChoices, admin.TabularInline
):
    """Empty rows to assign several people at once; they start as invited (not emailed)."""

    model = EventCrew
    fields = ("user", "role", "call_time", "notes")
    autocomplete_fields = ("user",)
    extra = 3
    verbose_name = "new assignment"
    verbose_name_plural = "Assign crew (then send invitations from the actions)"
    formfield_overrides = CrewInline.formfield_overrides


def save_crew_formset(request, event: Event, formset) -> None:
    """Route the event page's crew rows through the crew services."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.forms:
        if form in formset.deleted_forms:
            if form.instance.pk:
                try:
                    crew_remove(assignment=form.instance, by=request.user)
                except CrewError as error:
                    messages.error(request, str(error))
                    continue
                formset.deleted_objects.append(form.instance)
            continue
        if not form.has_changed() or not form.cleaned_data:
            continue
        data = form.cleaned_data
        try:
            if form.instance.pk is None:
                assignment = crew_assign(
                    event=event,
                    user=data["user"],
                    role=data["role"],
                    call_time=data.get("call_time"),
                    notes=data.get("notes", ""),
                    by=request.user,
                )
                warn_if_booked(request, assignment)
                formset.new_objects.append(assignment)
            else:
                changes = crew_update(
                    assignment=form.instance,
                    role=data["role"],
                    call_time=data.get("call_time") or False,
                    notes=data.get("notes", ""),
                    by=request.user,
                )
                if changes and form.instance.status == Status.CONFIRMED:
                    warn_if_booked(request, form.instance)  # a moved call time may now clash
                formset.changed_objects.append((form.instance, form.changed_data))
        except CrewError as error:
            messages.error(request, str(error))


def staffing_table(event: Event):
    """Filled/needed per role for the event page."""
    rows = event_staffing(event)
    if not rows:
        return "No crew needed or assigned yet."
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                row.role,
                row.confirmed,
                row.needed,
                row.invited,
                row.not_invited,
                status_badge("confirmed", "filled")
                if row.is_filled
                else status_badge("invited", f"{row.needed - row.confirmed} to find"),
            )
            for row in rows
        ),
    )
    crew_list = reverse("admin:attendance_eventcrew_changelist") + f"?event={event.pk}"
    assigned = sum(row.confirmed + row.invited + row.not_invited for row in rows)
    shown = (
        format_html("The page shows the first {} of the crew. ", CrewInline.CAP)
        if assigned > CrewInline.CAP
        else ""
    )
    return format_html(
        '<table class="sf-history"><thead><tr><th>Role</th><th>Confirmed / needed</th>'
        "<th>Invited, no answer</th><th>Not invited yet</th><th></th></tr></thead>"
        "<tbody>{}</tbody></table>"
        '<p>{}<a href="{}">Open this crew list</a> for everyone, to send invitations and '
        "reminders.</p>",
        body,
        shown,
        crew_list,
    )
