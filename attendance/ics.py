"""iCalendar (RFC 5545) text for one crew assignment, attached to invitations.

Written by hand: one VEVENT needs escaping, UTC times and line folding, not a dependency.
"""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    # Lines longer than 75 octets continue on the next line after CRLF + one space; calendar
    # apps reject or cut unfolded long lines. Never split a UTF-8 character.
    out: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        limit = 75 if not out else 74
        if len(current) + len(encoded) > limit:
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def assignment_ics(assignment: Any, *, now: datetime, url: str = "") -> str:
    """A calendar entry from the member's call time to the end of the event."""
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
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Sound Fusion//Crew//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        # Stable per assignment, so a re-sent invitation updates the entry instead of adding one.
        f"UID:eventcrew-{assignment.pk}@{settings.CREW_CALENDAR_DOMAIN}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(assignment.expected_call_time)}",
        f"DTEND:{_utc(event.ends_at)}",
        f"SUMMARY:{_escape(f'{event.name} ({assignment.role})')}",
        f"LOCATION:{_escape(event.venue)}",
        f"DESCRIPTION:{_escape(chr(10).join(description))}",
    ]
    if url:
        lines.append(f"URL:{url}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
