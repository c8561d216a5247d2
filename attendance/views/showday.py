"""The member's side of show day: "are you coming?" and the call sheet."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy

from attendance.models import Attendance, EventCrew
from attendance.services.attendance import AttendanceError
from attendance.services.crew.arrivals import (
    STATES,
    arrivals_board,
    arrivals_wall_event,
    board_json,
)
from attendance.services.crew.callsheet import call_sheet_for
from attendance.services.crew.showday import show_answer_coming

ANSWERED: dict[str, Any] = {
    Attendance.Arrival.ON_MY_WAY: gettext_lazy("Thanks: the crew chief knows you are on your way."),
    Attendance.Arrival.CANT_COME: gettext_lazy(
        "Thanks for telling us: the event's managers have been told."
    ),
}


@login_required
def coming(request, event_id):
    """Two buttons: "On my way" and "Can't make it". Opening the link changes nothing (a chat
    app's preview must not answer for the member); the tap (POST) does."""
    attendance = get_object_or_404(
        Attendance.objects.select_related("event"), event_id=event_id, user=request.user
    )
    if request.method == "POST":
        try:
            answered = show_answer_coming(
                attendance=attendance, answer=request.POST.get("answer", "")
            )
        except AttendanceError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, ANSWERED[answered.attendance.arrival_answer])
        return redirect("attendance:event_detail", event_id)
    return render(
        request, "attendance/coming.html", {"attendance": attendance, "event": attendance.event}
    )


@login_required
def call_sheet(request, event_id):
    """The call sheet of an event the member is confirmed for (404 for anyone else's)."""
    assignment = (
        EventCrew.objects.select_related("event", "role")
        .filter(
            event_id=event_id,
            user=request.user,
            status__in=[EventCrew.Status.CONFIRMED, EventCrew.Status.COMPLETED],
        )
        .first()
    )
    if assignment is None:
        raise Http404
    return render(
        request,
        "attendance/call_sheet.html",
        {"sheet": call_sheet_for(assignment), "event": assignment.event},
    )


def arrivals_wall(request, token):
    """The arrivals board on a screen at the venue: read-only, no login, by a secret link a
    manager turned on (a new link, or turning it off, stops this one)."""
    event = arrivals_wall_event(token)
    if event is None:
        raise Http404
    return render(
        request,
        "admin/attendance/event/arrivals.html",
        {
            "event": event,
            "wall": True,
            "states": STATES,
            "data_url": reverse("attendance:arrivals_wall_json", args=[token]),
        },
    )


def arrivals_wall_json(request, token):
    event = arrivals_wall_event(token)
    if event is None:
        raise Http404
    return JsonResponse(board_json(arrivals_board(event)))
