"""The call sheet: what a member needs on the day (their call, pickup, kit, the run of show,
whom to call), and for the crew chief the whole crew on one page. Reads only; what changed on
it is told by services/crew/events.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from attendance.models import Event, EventCrew, EventRoleRequirement, RunOfShowBlock
from attendance.phones import format_phone
from attendance.services.crew.staffing import event_contacts


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class CallSheet:
    event: Event
    assignment: EventCrew
    call_time: datetime
    kit: str
    blocks: list[RunOfShowBlock]
    contacts: list[Contact]


def _contacts(event: Event) -> list[Contact]:
    return [
        Contact(
            name=manager.get_full_name() or manager.username,
            phone=format_phone(getattr(getattr(manager, "profile", None), "phone_number", "")),
            email=manager.email,
        )
        for manager in event_contacts(event)
    ]


def _kits(event: Event) -> dict[int, str]:
    return dict(
        EventRoleRequirement.objects.filter(event=event)
        .exclude(kit="")
        .values_list("role_id", "kit")
    )


def call_sheet_for(assignment: EventCrew) -> CallSheet:
    """One member's call sheet (four queries, whatever the event's size)."""
    event = assignment.event
    return CallSheet(
        event=event,
        assignment=assignment,
        call_time=assignment.expected_call_time,
        kit=_kits(event).get(assignment.role_id, ""),
        blocks=list(event.run_of_show.all()),
        contacts=_contacts(event),
    )


@dataclass(frozen=True)
class RoleSection:
    role: str
    kit: str
    crew: list[EventCrew] = field(default_factory=list)


@dataclass(frozen=True)
class EventCallSheet:
    event: Event
    blocks: list[RunOfShowBlock]
    contacts: list[Contact]
    roles: list[RoleSection]

    @property
    def crew_count(self) -> int:
        return sum(len(section.crew) for section in self.roles)


def event_call_sheet(event: Event) -> EventCallSheet:
    """The crew chief's sheet: the run of show, then the confirmed crew by role with their
    call, pickup and phone, and each role's kit (a fixed number of queries)."""
    kits = _kits(event)
    crew = (
        EventCrew.objects.filter(event=event, status=EventCrew.Status.CONFIRMED)
        .select_related("user__profile", "role")
        .order_by("role__sort_order", "role__name", "user__first_name", "user__username")
    )
    sections: dict[int, RoleSection] = {}
    for assignment in crew:
        section = sections.get(assignment.role_id)
        if section is None:
            section = sections[assignment.role_id] = RoleSection(
                assignment.role.name, kits.get(assignment.role_id, "")
            )
        section.crew.append(assignment)
    return EventCallSheet(
        event=event,
        blocks=list(RunOfShowBlock.objects.filter(event=event)),
        contacts=_contacts(event),
        roles=list(sections.values()),
    )


def run_of_show_snapshot(event: Event) -> dict[int, tuple[str, str]]:
    """The run of show as crew read it: {block id: (name, "15:00-16:00")}."""
    return {
        block.pk: (block.name, _times(block))
        for block in RunOfShowBlock.objects.filter(event=event)
    }


def _times(block: RunOfShowBlock) -> str:
    starts = timezone.localtime(block.starts_at).strftime("%H:%M")
    if block.ends_at is None:
        return starts
    return f"{starts}-{timezone.localtime(block.ends_at):%H:%M}"


def run_of_show_changes(
    before: dict[int, tuple[str, str]], after: dict[int, tuple[str, str]]
) -> list[dict]:
    """What changed between two snapshots, as event_announce tells it ("Soundcheck: 14:00 ->
    15:00"); a renamed block is told under its new name."""
    changes = []
    for pk in sorted(before.keys() | after.keys()):
        old, new = before.get(pk), after.get(pk)
        if old == new:
            continue
        changes.append(
            {
                "field": "run_of_show",
                "label": (new or old or ("", ""))[0],
                "before": old[1] if old else "",
                "after": new[1] if new else "",
            }
        )
    return changes
