"""The demo's show day: today's product launch ready for its day (seed_demo calls it)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from attendance.models import (
    Attendance,
    CrewRole,
    Event,
    EventCrew,
    EventRoleRequirement,
    RunOfShowBlock,
)
from attendance.services.crew.assignments import CrewError, crew_assign


def demo_show_day(admin, members, stderr) -> None:
    """Today's show ready for its day: the venue's position (check-in by location), a run of
    show, kit per role, a pickup, someone on standby. By day, one stagehand's own call was
    20 minutes ago and they have not checked in: within a minute the beat asks them "are
    you coming?" and tells the manager, who can offer the place to standby."""
    event = Event.objects.filter(name="Product launch", client="Safaricom PLC").first()
    if event is None or event.run_of_show.exists():
        return
    event.venue_latitude, event.venue_longitude = Decimal("-1.288750"), Decimal("36.823290")
    event.save(update_fields=["venue_latitude", "venue_longitude", "updated_at"])
    call, starts, ends = event.call_time, event.starts_at, event.ends_at
    RunOfShowBlock.objects.bulk_create(
        [
            RunOfShowBlock(
                event=event, name="Load-in", starts_at=call, ends_at=call + timedelta(hours=1)
            ),
            RunOfShowBlock(
                event=event,
                name="Soundcheck",
                starts_at=call + timedelta(hours=1),
                ends_at=starts - timedelta(minutes=15),
            ),
            RunOfShowBlock(event=event, name="Doors", starts_at=starts),
            RunOfShowBlock(
                event=event,
                name="Show",
                starts_at=starts + timedelta(minutes=30),
                ends_at=ends - timedelta(minutes=30),
                notes="Keynote, then the band",
            ),
            RunOfShowBlock(
                event=event,
                name="Load-out",
                starts_at=ends - timedelta(minutes=30),
                ends_at=ends,
            ),
        ]
    )
    kits = {
        "FOH engineer": "Laptop with the show file, ear plugs, black clothing",
        "Stagehand": "Gloves, torch, black clothing",
        "Lighting technician": "Torch, gaffer tape, black clothing",
    }
    for requirement in EventRoleRequirement.objects.filter(event=event).select_related("role"):
        requirement.kit = kits.get(requirement.role.name, "Black clothing")
        requirement.save(update_fields=["kit"])
    by_name = {member.username: member for member in members}
    EventCrew.objects.filter(event=event, user=by_name["wanjiku"]).update(
        pickup_point="Sarit Centre car park, Westlands", pickup_at=call - timedelta(minutes=45)
    )
    stagehand = CrewRole.objects.get(name="Stagehand")
    try:
        crew_assign(event=event, user=by_name["mutua"], role=stagehand, by=admin, standby=True)
    except CrewError as error:
        stderr.write(f"{event.name}: {error}")
    now = timezone.now()
    late_call = (now - timedelta(minutes=20)).replace(second=0, microsecond=0)
    if starts - late_call <= timedelta(hours=4):  # by day: today's show is hours away
        # Set as it would stand, not announced: nobody is told of a change that never was.
        EventCrew.objects.filter(event=event, user=by_name["kiprop"]).update(call_time=late_call)
        Attendance.objects.filter(event=event, user=by_name["kiprop"]).update(call_time=late_call)
