"""Crew assignments in the portal, and the confirm/decline links from invitation emails."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404, HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import dateformat, timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from attendance.forms import UnavailableDatesForm
from attendance.models import CrewRole, EmailNotification, Event, EventCrew, ReplacementRequest
from attendance.services.crew.assignments import CrewError, crew_confirm, crew_decline
from attendance.services.crew.availability import (
    AvailabilityError,
    availability_mark,
    availability_remove,
    availability_upcoming,
)
from attendance.services.crew.links import CrewLinkError, crew_answer_link_check
from attendance.services.crew.offers import (
    crew_ask_replacement,
    crew_leave_waiting,
    crew_offer,
    open_roles_for,
    replacement_candidates,
)
from attendance.services.crew.staffing import crew_rosters_for

from .portal import back

Status = EventCrew.Status


def _own_assignment(request: HttpRequest, crew_id: int) -> EventCrew:
    # Scoped to the member: someone else's assignment is a 404, so ids leak nothing.
    return get_object_or_404(
        EventCrew.objects.select_related("event", "role"), pk=crew_id, user=request.user
    )


def _with_messages(queryset):
    emails = EmailNotification.objects.only(
        "pk", "crew_assignment_id", "subject", "message", "notification_type", "created_at"
    ).order_by("-created_at", "-id")
    return queryset.select_related("event", "role").prefetch_related(
        Prefetch("notifications", queryset=emails, to_attr="emails")
    )


@login_required
def assignments(request):
    now = timezone.now()
    mine = EventCrew.objects.filter(user=request.user)
    live = Q(event__ends_at__gt=now) & ~Q(event__status=Event.Status.CANCELLED)
    # Assigned but not yet invited: the managers are still planning; the member sees it once
    # the invitation has gone out.
    asked = Q(status=Status.INVITED, invitation_sent=True)
    stats = mine.aggregate(
        pending=Count("pk", filter=asked & live),
        upcoming=Count("pk", filter=Q(status=Status.CONFIRMED) & live),
        completed=Count("pk", filter=Q(status=Status.COMPLETED)),
        declined=Count("pk", filter=Q(status=Status.DECLINED)),
    )
    coming = Q(status=Status.CONFIRMED, event__ends_at__gt=now)  # cancelled ones say so
    pending = _with_messages(mine.filter(asked & live)).order_by("event__starts_at")
    asked_to_go = ReplacementRequest.objects.filter(
        assignment=OuterRef("pk"), status=ReplacementRequest.Status.PENDING
    )
    upcoming = list(
        _with_messages(mine.filter(coming))
        .annotate(replacement_asked=Exists(asked_to_go))
        .order_by("event__starts_at")
    )
    rosters = crew_rosters_for(member=request.user, event_ids=[a.event_id for a in upcoming])
    for assignment in upcoming:
        assignment.roster, assignment.roster_total = rosters[assignment.event_id]
    # On standby or offered: waiting for a place or for the manager's answer.
    waiting_on = Q(status__in=[Status.STANDBY, Status.OFFERED])
    waiting = mine.filter(waiting_on & live).select_related("event", "role")
    past = _with_messages(
        mine.exclude(asked & live)
        .exclude(coming)
        .exclude(waiting_on)
        .exclude(status=Status.INVITED, invitation_sent=False)
    ).order_by("-event__starts_at", "-pk")
    page = Paginator(past, 20).get_page(request.GET.get("page"))
    return render(
        request,
        "attendance/crew_assignments.html",
        {
            "stats": stats,
            "pending": pending,
            "upcoming": upcoming,
            "waiting": waiting.order_by("event__starts_at"),
            "page": page,
            "now": now,
        },
    )


@login_required
@require_POST
def confirm(request, crew_id):
    assignment = _own_assignment(request, crew_id)
    try:
        crew_confirm(assignment=assignment)
    except CrewError as error:
        messages.error(request, str(error))
    else:
        call = dateformat.format(timezone.localtime(assignment.expected_call_time), "D j M, H:i")
        messages.success(
            request,
            _("Confirmed: %(event)s as %(role)s. Call time %(call)s.")
            % {"event": assignment.event.name, "role": assignment.role, "call": call},
        )
    return back(request, default="attendance:crew_assignments")


@login_required
@require_POST
def decline(request, crew_id):
    assignment = _own_assignment(request, crew_id)
    try:
        crew_decline(assignment=assignment, reason=request.POST.get("reason", ""))
    except CrewError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Declined: %(event)s. The managers can see it.") % {"event": assignment.event.name},
        )
    return back(request, default="attendance:crew_assignments")


@login_required
@require_POST
def leave_waiting(request, crew_id):
    """Off the standby list, or an offer withdrawn (POST, the member's own row only)."""
    assignment = _own_assignment(request, crew_id)
    name = assignment.event.name
    try:
        left = crew_leave_waiting(assignment=assignment)
    except CrewError as error:
        messages.error(request, str(error))
    else:
        said = (
            _("You left the standby list: %(event)s.")
            if left == "standby"
            else _("Your offer is withdrawn: %(event)s.")
        )
        messages.success(request, said % {"event": name})
    return back(request, default="attendance:crew_assignments")


@require_http_methods(["GET", "HEAD", "POST"])
def answer(request, crew_id, token):
    """The page an invitation's Confirm/Decline link opens. Only its POST saves the answer.

    Mail scanners and link previews follow links with GET; if a GET answered, they would
    confirm or decline for the member. No login: the signed token stands for this one
    assignment and action.
    """
    try:
        assignment, action = crew_answer_link_check(crew_id=crew_id, token=token)
    except CrewLinkError as error:
        return render(
            request,
            "attendance/crew_answer.html",
            {"error": str(error)},
            status=410 if error.expired else 404,
        )
    done, refusal = False, ""
    if request.method == "POST":
        try:
            if action == "confirm":
                crew_confirm(assignment=assignment)
            else:
                crew_decline(assignment=assignment, reason=request.POST.get("reason", ""))
            done = True
        except CrewError as refused:
            refusal = str(refused)
    return render(
        request,
        "attendance/crew_answer.html",
        {
            "assignment": assignment,
            "event": assignment.event,
            "action": action,
            "done": done,
            "error": refusal,
        },
        status=409 if refusal else 200,
    )


@csrf_exempt  # the signed token is the credential: no cookie, no page (the app's worker)
@require_POST
def answer_now(request: HttpRequest, crew_id: int, token: str) -> JsonResponse:
    """Confirm / Decline pressed on the app's notification: the answer link's token, sent by
    the service worker, answered in JSON (the worker shows the words). Same rules as the page:
    answered once, capacity lock, standby."""
    try:
        assignment, action = crew_answer_link_check(crew_id=crew_id, token=token)
    except CrewLinkError as error:
        return JsonResponse(
            {"done": False, "message": str(error)}, status=410 if error.expired else 404
        )
    try:
        if action == "confirm":
            assignment = crew_confirm(assignment=assignment)
            words = _("Confirmed: %(event)s, call time %(time)s. Thank you.") % {
                "event": assignment.event.name,
                "time": dateformat.format(
                    timezone.localtime(assignment.expected_call_time), "D j M, H:i"
                ),
            }
        else:
            assignment = crew_decline(assignment=assignment)
            words = _("Declined: %(event)s. Thank you for telling us.") % {
                "event": assignment.event.name
            }
    except CrewError as refused:
        return JsonResponse({"done": False, "message": str(refused)}, status=409)
    return JsonResponse({"done": True, "message": words})


@login_required
def availability(request):
    """Dates the member cannot work: marked and removed here; managers see them when staffing."""
    form = UnavailableDatesForm()
    if request.method == "POST" and "remove" in request.POST:
        if not availability_remove(user=request.user, pk=_int(request.POST["remove"])):
            raise Http404("Not yours")
        messages.success(request, _("Removed: you are available on those dates again."))
        return redirect("attendance:availability")
    if request.method == "POST":
        form = UnavailableDatesForm(request.POST)
        if form.is_valid():
            try:
                row, clashes = availability_mark(user=request.user, **form.cleaned_data)
            except AvailabilityError as error:
                form.add_error(None, str(error))
            else:
                said = _("Saved: you cannot work %(dates)s.") % {"dates": row}
                if clashes:
                    names = ", ".join(a.event.name for a in clashes)
                    said += " " + _(
                        "You are confirmed for %(events)s then: the event manager has been told. "
                        "Call them too."
                    ) % {"events": names}
                messages.success(request, said)
                return redirect("attendance:availability")
    return render(
        request,
        "attendance/availability.html",
        {"form": form, "dates": availability_upcoming(request.user)},
    )


def _int(value: str) -> int:
    return int(value) if value.isdigit() else 0


@login_required
def open_roles(request):
    """Roles still to fill on upcoming events this member could work, to offer for."""
    if request.method == "POST":
        event = get_object_or_404(Event, pk=_int(request.POST.get("event", "")))
        role = get_object_or_404(CrewRole, pk=_int(request.POST.get("role", "")))
        try:
            crew_offer(member=request.user, event=event, role=role)
        except CrewError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request,
                _("Offer sent: %(role)s at %(event)s. The event manager will answer you.")
                % {"role": role, "event": event.name},
            )
        return redirect("attendance:open_roles")
    return render(request, "attendance/open_roles.html", {"roles": open_roles_for(request.user)})


@login_required
def ask_replacement(request, crew_id):
    """A confirmed member asks to be replaced, perhaps naming a colleague who has the role."""
    assignment = _own_assignment(request, crew_id)
    if assignment.status != Status.CONFIRMED:
        raise Http404("Only confirmed work can be handed over")
    colleagues = replacement_candidates(assignment)
    error = ""
    if request.method == "POST":
        chosen = _int(request.POST.get("proposed", ""))
        proposed = next((c for c in colleagues if c.pk == chosen), None)
        if chosen and proposed is None:
            error = "Pick a colleague from the list."
        else:
            try:
                crew_ask_replacement(
                    assignment=assignment,
                    proposed=proposed,
                    reason=request.POST.get("reason", ""),
                )
            except CrewError as refused:
                error = str(refused)
            else:
                messages.success(
                    request,
                    _(
                        "Asked. You stay on the crew until the event manager approves; "
                        "you will get their answer by email."
                    ),
                )
                return redirect("attendance:crew_assignments")
    return render(
        request,
        "attendance/ask_replacement.html",
        {"assignment": assignment, "colleagues": colleagues, "error": error},
        status=400 if error else 200,
    )
