"""The staffing board: an event's page for filling its roles in a few clicks.

Per role: needed / confirmed / invited / standby / offered, the crew on it (offers to accept,
replacement requests to decide, ratings after the event), and the candidates ranked by
services/crew/board.py with one form to assign, invite or put several on standby at once.
Every write goes through a service; invitations go out as a background job with progress.
"""

from dataclasses import replace

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from attendance.models import (
    Attendance,
    CrewRole,
    Event,
    EventCrew,
    ReplacementRequest,
    member_name,
)
from attendance.services.crew.assignments import (
    CrewError,
    crew_assign,
    crew_check_assignable,
    crew_invite,
    crew_promote_standby,
)
from attendance.services.crew.board import board_candidates
from attendance.services.crew.offers import (
    crew_offer_accept,
    crew_offer_decline,
    crew_replacement_decide,
)
from attendance.services.crew.staffing import event_staffing, role_places_open
from attendance.services.crew.track_record import crew_rate, track_records

from .crew import invite_all
from .event_crew import warn_if_clashing, warn_if_unavailable

Status = EventCrew.Status
# Crew on a role shown on the board (a festival's 300 stagehands are in the crew list).
CREW_SHOWN = 60


class StaffingBoardMixin:
    """Adds /admin/attendance/event/<id>/board/ to the event admin."""

    def get_urls(self):
        return [
            path(
                "<int:event_id>/board/",
                self.admin_site.admin_view(self.board_view),
                name="attendance_event_board",
            ),
            *super().get_urls(),
        ]

    def board_view(self, request, event_id):
        event = get_object_or_404(Event, pk=event_id)
        if not self.has_view_permission(request, event):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request, event):
                raise PermissionDenied
            response = self._board_post(request, event)
            return response or HttpResponseRedirect(request.get_full_path())
        staffing = event_staffing(event)
        roles = {role.name: role for role in CrewRole.objects.all()}
        chosen = _chosen_role(request, staffing, roles)
        # Replacement requests per role, at a glance on the roles table.
        asking = dict(
            ReplacementRequest.objects.filter(
                assignment__event=event, status=ReplacementRequest.Status.PENDING
            )
            .values_list("assignment__role__name")
            .annotate(n=Count("pk"))
            .values_list("assignment__role__name", "n")
        )
        staffing = [replace(row, asking=asking.get(row.role, 0)) for row in staffing]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Staffing board: {event.name}",
            "event": event,
            "staffing": [(row, roles.get(row.role)) for row in staffing],
            "role": chosen,
            "can_change": self.has_change_permission(request, event),
            "over": event.ends_at <= timezone.now(),
            "not_invited": event.crew.filter(status=Status.INVITED, invitation_sent=False).count(),
        }
        if chosen is not None:
            search = request.GET.get("q", "").strip()[:60]
            crew = list(
                event.crew.filter(role=chosen)
                .select_related("user")
                .order_by("status", "standby_since", "user__first_name")[:CREW_SHOWN]
            )
            records = track_records([a.user_id for a in crew])
            came = set(
                Attendance.objects.filter(event=event, check_in_at__isnull=False).values_list(
                    "user_id", flat=True
                )
            )
            for assignment in crew:
                assignment.record = records[assignment.user_id]
                # After the event, someone confirmed who never checked in did not come.
                assignment.no_show = (
                    context["over"]
                    and assignment.status in (Status.CONFIRMED, Status.COMPLETED)
                    and assignment.user_id not in came
                )
            candidates, considered = board_candidates(event, chosen, search=search)
            context.update(
                open_places=role_places_open(event_id=event.pk, role_id=chosen.pk),
                standby=sum(row.standby for row in staffing if roles.get(row.role) == chosen),
                crew=crew,
                candidates=candidates,
                considered=considered,
                search=search,
                requests=ReplacementRequest.objects.filter(
                    assignment__event=event,
                    assignment__role=chosen,
                    status=ReplacementRequest.Status.PENDING,
                ).select_related("assignment__user", "proposed"),
            )
        return TemplateResponse(request, "admin/attendance/event/board.html", context)

    def _board_post(self, request, event):
        do = request.POST.get("do", "")
        every_event = Event.objects.filter(pk=event.pk)
        if do == "send_invitations":
            return self.send_invitations(request, every_event)
        if do == "briefing":
            return self.send_setup_briefing(request, every_event)
        if do == "complete":
            return self.complete_crew(request, every_event)
        role = CrewRole.objects.filter(pk=_int(request.POST.get("role"))).first()
        try:
            if do in ("assign", "invite", "standby") and role is not None:
                return _assign(request, event, role, do)
            if do == "fill" and role is not None:
                return _fill(request, event, role)
            if do == "promote" and role is not None:
                invited = crew_promote_standby(event=event, role=role, places=1)
                _said(request, invited, "Invited from standby", "Nobody on standby can come.")
            elif do == "invite_now":
                waiting = get_object_or_404(
                    EventCrew, pk=_int(request.POST.get("assignment")), event=event
                )
                crew_invite(assignment=waiting)
                messages.success(request, f"Invited {member_name(waiting.user)} from standby.")
            elif do in ("accept", "decline"):
                offer = get_object_or_404(EventCrew, pk=_int(request.POST.get("assignment")))
                if offer.event_id != event.pk:
                    raise CrewError("That offer is for another event.")
                if do == "accept":
                    crew_offer_accept(assignment=offer, by=request.user)
                    messages.success(request, f"{member_name(offer.user)} is on the crew.")
                else:
                    crew_offer_decline(assignment=offer, by=request.user)
                    messages.success(request, f"Offer from {member_name(offer.user)} declined.")
            elif do in ("approve", "refuse"):
                ask = get_object_or_404(
                    ReplacementRequest,
                    pk=_int(request.POST.get("request")),
                    assignment__event=event,
                )
                invited = crew_replacement_decide(
                    request=ask,
                    approve=do == "approve",
                    by=request.user,
                    note=request.POST.get("note", ""),
                )
                if do == "approve":
                    _said(request, invited, "Replacement approved; invited", "Approved.")
                else:
                    messages.success(request, "Refused: they stay on the crew.")
            elif do == "rate":
                assignment = get_object_or_404(
                    EventCrew, pk=_int(request.POST.get("assignment")), event=event
                )
                rating = _int(request.POST.get("rating")) or None
                crew_rate(
                    assignment=assignment,
                    rating=rating,
                    note=request.POST.get("note", ""),
                    by=request.user,
                )
                messages.success(request, f"Rating saved for {member_name(assignment.user)}.")
        except CrewError as error:
            messages.error(request, str(error))
        return None


def _assign(request, event: Event, role: CrewRole, do: str):
    """Assign the ticked members to the role; with "invite", their invitations go out as a
    background job (progress page); with "standby", they wait on the standby list."""
    users = get_user_model().objects.filter(
        pk__in=[_int(v) for v in request.POST.getlist("member")]
    )
    if not users:
        messages.info(request, "Tick at least one member first.")
        return None
    try:  # the event itself (over, cancelled): said once, not once per member
        crew_check_assignable(event=event)
    except CrewError as error:
        messages.error(request, f"{error} Nobody was assigned.")
        return None
    made = []
    for user in users:
        try:
            made.append(
                crew_assign(
                    event=event, user=user, role=role, by=request.user, standby=do == "standby"
                )
            )
        except CrewError as error:
            messages.error(request, f"{member_name(user)}: {error}")
    # Availability for all of them in one query; a clash elsewhere, per member ticked.
    warn_if_unavailable(request, made)
    for assignment in made:
        warn_if_clashing(request, assignment)
    if not made:
        return None  # each member's reason is said above
    names = ", ".join(member_name(a.user) for a in made)
    if do == "invite":
        return invite_all(request, EventCrew.objects.filter(pk__in=[a.pk for a in made]))
    where = "on standby for" if do == "standby" else "assigned as"
    messages.success(request, f"{names}: {where} {role} (not invited yet).")
    return None


def _fill(request, event: Event, role: CrewRole):
    """Invite the best free members who do the role, as many as there are open places: a
    40-person role staffed in one click (the manager reads the list first)."""
    places = role_places_open(event_id=event.pk, role_id=role.pk)
    if not places:
        messages.info(request, f"No {role} places are open.")
        return None
    best, _ = board_candidates(event, role, shown=10_000)
    picks = [c.user for c in best if c.free and c.can_do][:places]
    if not picks:
        messages.warning(request, f"Nobody free who does {role}: pick from the list by hand.")
        return None
    made = [crew_assign(event=event, user=user, role=role, by=request.user) for user in picks]
    if len(made) < places:
        messages.warning(
            request,
            f"Only {len(made)} free members do {role}; {places - len(made)} place(s) still open.",
        )
    return invite_all(request, EventCrew.objects.filter(pk__in=[a.pk for a in made]))


def _chosen_role(request, staffing, roles: dict[str, CrewRole]) -> CrewRole | None:
    wanted = _int(request.GET.get("role"))
    if wanted:
        return next((r for r in roles.values() if r.pk == wanted), None)
    # The first role with places to fill, else the first role the event has.
    for row in staffing:
        if not row.is_filled and row.role in roles:
            return roles[row.role]
    return roles.get(staffing[0].role) if staffing else None


def _said(request, invited: list[EventCrew], done: str, nothing: str) -> None:
    if invited:
        messages.success(request, f"{done}: {', '.join(member_name(a.user) for a in invited)}.")
    else:
        messages.warning(request, nothing)


def _int(value) -> int:
    return int(value) if isinstance(value, str) and value.isdigit() else 0
