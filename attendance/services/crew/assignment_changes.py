"""Changing one member's part in an event (role, personal call time, instructions, pickup)
and telling them what changed, in their language, in one message."""

from datetime import datetime
from typing import Literal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from attendance.models import CrewRole, EmailNotification, EventCrew
from attendance.services.attendance import attendance_correct, attendance_expect
from attendance.services.core.rows import keep_in_step
from attendance.services.crew.assignments import lock_assignment
from attendance.services.crew.events import event_changes_lazily
from attendance.services.crew.notices import crew_calendar_file, crew_email
from attendance.wording import when_lazily

Status = EventCrew.Status


def crew_update(
    *,
    assignment: EventCrew,
    role: CrewRole | None = None,
    call_time: datetime | Literal[False] | None = None,
    notes: str | None = None,
    pickup_point: str | None = None,
    pickup_at: datetime | Literal[False] | None = None,
    by: User | None = None,
) -> list[dict]:
    """Change role, personal call time, instructions or pickup; tell the member what changed
    if they know of the assignment (one message, the calendar entry moved on once).

    `call_time=None` leaves it as it is; pass `False` to clear it. A confirmed member's
    attendance record follows the call time (kept as a correction by `by`). Returns the
    changes.
    """
    with transaction.atomic():
        current = lock_assignment(assignment)
        changes = []
        if role is not None and role != current.role:
            changes.append(_change("role", current.role, role))
            current.role = role
        if call_time is not None:
            new_call = call_time or None
            if new_call != current.call_time:
                changes.append(
                    _change(
                        "call_time", current.expected_call_time, new_call or current.event.call_time
                    )
                )
                current.call_time = new_call
        if notes is not None and notes != current.notes:
            changes.append(_change("special_instructions", current.notes, notes))
            current.notes = notes
        old_pickup = _pickup_words(current)
        if pickup_point is not None:
            current.pickup_point = pickup_point.strip()
        if pickup_at is not None:
            current.pickup_at = pickup_at or None
        if _pickup_words(current) != old_pickup:
            changes.append(_change("pickup", old_pickup, _pickup_words(current)))
        if not changes:
            return []
        current.calendar_sequence += 1
        current.save(
            update_fields=[
                "role",
                "call_time",
                "notes",
                "pickup_point",
                "pickup_at",
                "calendar_sequence",
                "updated_at",
            ]
        )
        if current.status == Status.CONFIRMED:
            attendance = attendance_expect(event=current.event, user=current.user)
            if attendance.call_time != current.call_time:
                attendance_correct(
                    attendance=attendance,
                    by=by,
                    call_time=current.call_time,
                    reason="Call time changed on the crew assignment",
                )
        told = current.status == Status.CONFIRMED or (
            current.status == Status.INVITED and current.invitation_sent
        )
        if told:
            crew_email(
                current,
                EmailNotification.Type.EVENT_UPDATED,
                {"changes": changes},
                attachments=(crew_calendar_file(current),),
                # The text says what changed ("call Mon 7 Dec 15:00, pickup 13:30 at …").
                sms_context={
                    "what": event_changes_lazily(current.event, changes, current.expected_call_time)
                },
            )
    keep_in_step(assignment, current)
    return changes


def _pickup_words(assignment: EventCrew) -> str:
    """ "15:00 at Sarit Centre", as the member reads it ("" for no pickup)."""
    when = (
        timezone.localtime(assignment.pickup_at).strftime("%H:%M") if assignment.pickup_at else ""
    )
    return " at ".join(part for part in (when, assignment.pickup_point) if part)


# What each change is called in the member's message, in their language.
_LABELS = {
    "role": gettext_lazy("Role"),
    "call_time": gettext_lazy("Your call time"),
    "special_instructions": gettext_lazy("Instructions for you"),
    "pickup": gettext_lazy("Pickup"),
}


def _change(field: str, before: object, after: object) -> dict:
    def shown(value: object) -> object:
        if isinstance(value, datetime):
            return when_lazily(value)
        return str(value) if value else ""

    return {"field": field, "label": _LABELS[field], "before": shown(before), "after": shown(after)}
