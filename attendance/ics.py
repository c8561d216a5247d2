"""iCalendar (RFC 5545) for crew: the file attached to invitations and changes, and the feed a
member subscribes to. Built with the `icalendar` library (escaping, folding, UTC times).

One assignment is one VEVENT whose UID never changes; its SEQUENCE (EventCrew.calendar_sequence)
goes up with every change that matters, so a calendar app replaces the entry it has instead of
adding a second one, and a METHOD:CANCEL file with the same UID removes it.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar
from icalendar import Event as VEvent

PUBLISH = "PUBLISH"
CANCEL = "CANCEL"


def _calendar(method: str | None, name: str = "") -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//Sound Fusion//Crew//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    if name:
        # Shown as the subscribed calendar's name (Apple, Google and Outlook read X-WR-CALNAME).
        calendar.add("x-wr-calname", name)
    return calendar


def _vevent(assignment: Any, *, now: datetime, url: str, cancelled: bool) -> VEvent:
    event = assignment.event
    call = timezone.localtime(assignment.expected_call_time)
    description = [
        f"Role: {assignment.role}",
        f"Call time: {call:%a %d %b %Y, %H:%M}",
        f"Map: {event.map_link}",
    ]
    instructions = "\n".join(
        part for part in (event.special_instructions, assignment.notes) if part
    )
    if instructions:
        description.append(instructions)
    entry = VEvent()
    # Stable per assignment, so a re-sent invitation or a change updates the entry.
    entry.add("uid", f"eventcrew-{assignment.pk}@{settings.CREW_CALENDAR_DOMAIN}")
    entry.add("sequence", assignment.calendar_sequence)
    entry.add("dtstamp", now.astimezone(UTC))
    entry.add("dtstart", assignment.expected_call_time.astimezone(UTC))
    entry.add("dtend", event.ends_at.astimezone(UTC))
    entry.add("summary", f"{event.name} ({assignment.role})")
    entry.add("location", event.venue)
    entry.add("description", "\n".join(description))
    entry.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if url:
        entry.add("url", url)
    return entry


def assignment_ics(assignment: Any, *, now: datetime, url: str = "", method: str = PUBLISH) -> str:
    """A calendar file for one assignment, from the member's call time to the event's end.
    `method=CANCEL` takes it out of the member's calendar."""
    calendar = _calendar(method)
    calendar.add_component(_vevent(assignment, now=now, url=url, cancelled=method == CANCEL))
    return calendar.to_ical().decode()


def member_feed_ics(assignments: Iterable[Any], *, name: str, now: datetime, url: str) -> str:
    """The member's subscription: one entry per assignment given (confirmed work)."""
    calendar = _calendar(None, name=name)
    # Calendar apps poll a feed; ask for about an hour (Outlook and Apple read these two).
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for assignment in assignments:
        calendar.add_component(_vevent(assignment, now=now, url=url, cancelled=False))
    return calendar.to_ical().decode()
