"""What crew and their managers are told about an assignment, and the calendar files with it.

Written by services/crew/assignments.py (and its neighbours) inside their transactions; nothing here
changes an assignment but its calendar SEQUENCE, which travels with the message it is for.
"""

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from attendance.ics import CANCEL, PUBLISH, assignment_ics
from attendance.models import EmailNotification, Event, EventCrew
from attendance.services.core.urls import absolute_url
from attendance.services.crew.staffing import event_contacts, event_staffing
from attendance.services.messaging.channels import MemberMessage, member_message
from attendance.services.messaging.email import Attachment, notification_create

logger = logging.getLogger(__name__)


def event_contacts_tell(event: Event, notification_type: str, context: dict[str, Any]) -> int:
    """Email each of the event's contacts (`event_contacts`) one message of this type, in the
    caller's transaction. Returns how many; nobody to tell is logged, since someone should
    have been."""
    contacts = event_contacts(event)
    if not contacts:
        logger.warning(
            "Event %s has no manager with an email: %s told no one", event.pk, notification_type
        )
    for manager in contacts:
        notification_create(
            recipient=manager.email,
            user=manager,
            event=event,
            notification_type=notification_type,
            context=context,
        )
    return len(contacts)


def crew_tell_managers_of_decline(assignment: EventCrew, replacements: list[EventCrew]) -> None:
    """A decline leaves a place to fill: the event's managers hear it with the reason and
    how the role stands. Not linked to the assignment: the member's portal lists those."""
    event = assignment.event
    staffing = next((s for s in event_staffing(event) if s.role == assignment.role.name), None)
    event_contacts_tell(
        event,
        EmailNotification.Type.CREW_DECLINED,
        {
            "assignment": assignment,
            "event": event,
            "member": assignment.user,
            "role": assignment.role,
            "staffing": staffing,
            "replacements": replacements,
        },
    )


def crew_calendar_cancel(assignment: EventCrew) -> Attachment:
    """The METHOD:CANCEL file that removes the entry the invitation added (its SEQUENCE
    raised, as calendars require)."""
    assignment.calendar_sequence += 1
    EventCrew.objects.filter(pk=assignment.pk).update(
        calendar_sequence=assignment.calendar_sequence
    )
    return crew_calendar_file(assignment, method=CANCEL)


def crew_tell_member_off(assignment: EventCrew, *, removed: bool, text: bool = True) -> None:
    """The member is off this event (declined, or taken off by a manager): an email saying so
    with a METHOD:CANCEL calendar file, so the entry their invitation added goes away.
    `text=False`: they declined by SMS and the answer to that text says it already."""
    cancel = crew_calendar_cancel(assignment)
    # On their channel: a member who takes texts only hears it by SMS (the email, with the
    # calendar file, is held as the fallback).
    member_message(
        user=assignment.user,
        event=assignment.event,
        notification_type=EmailNotification.Type.CREW_OFF,
        context={
            "assignment": assignment,
            "event": assignment.event,
            "role": assignment.role,
            "removed": removed,
            "portal_url": absolute_url("attendance:crew_assignments"),
        },
        attachments=(cancel,),
        crew_assignment=None if removed else assignment,  # a removed row is deleted next
        text=text,
    )


def crew_calendar_file(
    assignment: EventCrew, *, now: datetime | None = None, method: str = PUBLISH
) -> Attachment:
    """The assignment's calendar entry as an email attachment (same name every time)."""
    return Attachment(
        filename=f"sound-fusion-{assignment.event_id}.ics",
        content=assignment_ics(
            assignment,
            now=now or timezone.now(),
            url=absolute_url("attendance:crew_assignments"),
            method=method,
        ),
        mimetype="text/calendar",
    )


def crew_email(
    assignment: EventCrew,
    notification_type: str,
    context: dict,
    attachments: tuple[Attachment, ...] = (),
    sms_context: dict | None = None,
) -> MemberMessage | None:
    """A message to the member about this assignment (email and/or SMS, as they chose),
    linked to it for the portal and admin. None if nothing can reach them."""
    return member_message(
        user=assignment.user,
        event=assignment.event,
        crew_assignment=assignment,
        notification_type=notification_type,
        context={
            "assignment": assignment,
            "event": assignment.event,
            "role": assignment.role,
            "call_time": assignment.expected_call_time,
            "portal_url": absolute_url("attendance:crew_assignments"),
            # The page with the Check in button (confirmed crew have an attendance row).
            "event_url": absolute_url("attendance:event_detail", assignment.event_id),
            **context,
        },
        attachments=attachments,
        sms_context=sms_context,
    )
