"""Show day in admin: the live arrivals board (and its wall display link), giving a missing
member's place to standby, and the crew chief's printable call sheet (and its PDF)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from attendance.models import Event, EventCrew, RunOfShowBlock
from attendance.services.core.pdf import PdfUnavailable, html_to_pdf
from attendance.services.core.urls import absolute_url
from attendance.services.crew.arrivals import (
    STATES,
    arrivals_board,
    arrivals_wall_start,
    arrivals_wall_stop,
    board_json,
)
from attendance.services.crew.assignments import CrewError
from attendance.services.crew.callsheet import (
    event_call_sheet,
    run_of_show_changes,
    run_of_show_snapshot,
)
from attendance.services.crew.showday import show_offer_place


class RunOfShowInline(admin.TabularInline):
    """The event's day on the call sheet; a change of times is sent to the crew."""

    model = RunOfShowBlock
    fields = ("name", "starts_at", "ends_at", "notes")
    extra = 0
    verbose_name_plural = "Run of show (on the call sheet)"


def save_run_of_show_formset(event: Event, formset) -> list[dict]:
    """Save the blocks; return what changed for the crew (the event page tells them once)."""
    before = run_of_show_snapshot(event)
    formset.save()
    return run_of_show_changes(before, run_of_show_snapshot(event))


class ShowDayMixin:
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:event_id>/arrivals/",
                view(self.arrivals_view),
                name="attendance_event_arrivals",
            ),
            path(
                "<int:event_id>/arrivals.json",
                view(self.arrivals_json_view),
                name="attendance_event_arrivals_json",
            ),
            path(
                "<int:event_id>/arrivals/wall/",
                view(require_POST(self.arrivals_wall_view)),
                name="attendance_event_arrivals_wall",
            ),
            path(
                "<int:event_id>/arrivals/offer/<int:crew_id>/",
                view(self.offer_place_view),
                name="attendance_event_offer_place",
            ),
            path(
                "<int:event_id>/call-sheet/",
                view(self.call_sheet_view),
                name="attendance_event_call_sheet",
            ),
            *super().get_urls(),
        ]

    def _event(self, request, event_id, *, change=False) -> Event:
        event = get_object_or_404(Event, pk=event_id)
        allowed = (
            self.has_change_permission(request, event)
            if change
            else self.has_view_permission(request, event)
        )
        if not allowed:
            raise PermissionDenied
        return event

    def arrivals_view(self, request, event_id):
        event = self._event(request, event_id)
        wall = (
            absolute_url("attendance:arrivals_wall", event.wall_token) if event.wall_token else ""
        )
        return TemplateResponse(
            request,
            "admin/attendance/event/arrivals.html",
            {
                "event": event,
                "data_url": reverse("admin:attendance_event_arrivals_json", args=[event.pk]),
                "offer_url": reverse(
                    "admin:attendance_event_offer_place", args=[event.pk, 0]
                ).replace("/0/", "/{id}/"),
                "can_change": self.has_change_permission(request, event),
                "wall_url": wall,
                "states": STATES,
                "back": reverse("admin:attendance_event_change", args=[event.pk]),
            },
        )

    def arrivals_json_view(self, request, event_id):
        event = self._event(request, event_id)
        return JsonResponse(board_json(arrivals_board(event)))

    def arrivals_wall_view(self, request, event_id):
        event = self._event(request, event_id, change=True)
        if request.POST.get("do") == "stop":
            arrivals_wall_stop(event=event)
            messages.success(request, "The wall display link is off: screens showing it stop.")
        else:
            arrivals_wall_start(event=event)
            messages.success(
                request, "A new wall display link is on (any earlier link no longer works)."
            )
        return redirect("admin:attendance_event_arrivals", event.pk)

    def offer_place_view(self, request, event_id, crew_id):
        """Give a missing member's place to the next standby. GET asks (the alert's link must
        not act on its own when a mail app previews it); POST does it."""
        event = self._event(request, event_id, change=True)
        assignment = get_object_or_404(
            EventCrew.objects.select_related("user", "role", "event"), pk=crew_id, event=event
        )
        board = reverse("admin:attendance_event_arrivals", args=[event.pk])
        if request.method == "POST":
            try:
                invited = show_offer_place(assignment=assignment, by=request.user)
            except CrewError as error:
                messages.error(request, str(error))
            else:
                who = ", ".join(a.user.get_full_name() or a.user.username for a in invited)
                messages.success(
                    request,
                    f"{assignment.user.get_full_name() or assignment.user} is off the crew. "
                    + (
                        f"Invited from standby: {who}."
                        if invited
                        else f"Nobody on standby for {assignment.role.name} is free that day: "
                        "invite someone from the staffing board."
                    ),
                )
            return redirect(board)
        return TemplateResponse(
            request,
            "admin/attendance/event/offer_place.html",
            {
                **self.admin_site.each_context(request),
                "title": "Offer the place to standby",
                "event": event,
                "assignment": assignment,
                "standby": EventCrew.objects.filter(
                    event=event, role=assignment.role, status=EventCrew.Status.STANDBY
                ).count(),
                "started": event.starts_at <= timezone.now(),
                "back": board,
                "opts": self.model._meta,
            },
        )

    def call_sheet_view(self, request, event_id):
        event = self._event(request, event_id)
        context = {"sheet": event_call_sheet(event), "event": event}
        if request.GET.get("format") == "pdf":
            html = render_to_string("admin/attendance/event/call_sheet.html", context, request)
            try:
                pdf = html_to_pdf(html, base_url=request.build_absolute_uri("/"))
            except PdfUnavailable as error:
                messages.error(request, str(error))
                return redirect("admin:attendance_event_call_sheet", event.pk)
            response = HttpResponse(pdf, content_type="application/pdf")
            response["Content-Disposition"] = (
                f'attachment; filename="call-sheet-{event.pk}-{event.starts_at:%Y%m%d}.pdf"'
            )
            return response
        context["back"] = reverse("admin:attendance_event_change", args=[event.pk])
        return TemplateResponse(request, "admin/attendance/event/call_sheet.html", context)
