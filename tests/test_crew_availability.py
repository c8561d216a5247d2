"""Availability and skills (issue 19): members mark dates they cannot work from the portal;
assigning or inviting them warns; a date marked after confirming tells the managers."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from attendance.models import EmailNotification, Unavailability
from attendance.services.crew.assignments import crew_confirm
from attendance.services.crew.availability import (
    AvailabilityError,
    availability_mark,
    unavailable_for,
)
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")


@pytest.fixture(autouse=True)
def _on_the_1st_of_december():
    with time_machine.travel(datetime(2026, 12, 1, 9, tzinfo=NAIROBI), tick=False):
        yield


def _event(day: int, start_hour: int = 18, hours: int = 5, **fields):
    starts = datetime(2026, 12, day, start_hour, tzinfo=NAIROBI)
    return EventFactory(
        starts_at=starts,
        ends_at=starts + timedelta(hours=hours),
        call_time=starts - timedelta(hours=2),
        **fields,
    )


def test_a_range_covers_both_ends_and_an_overnight_show_counts_on_both_days(crew, other_crew):
    availability_mark(user=crew, starts_on=date(2026, 12, 5), ends_on=date(2026, 12, 6))
    availability_mark(user=other_crew, starts_on=date(2026, 12, 8))
    assert set(unavailable_for(_event(5))) == {crew.pk}
    assert set(unavailable_for(_event(6))) == {crew.pk}
    assert unavailable_for(_event(7)) == {}
    overnight = _event(7, start_hour=22, hours=6)  # ends at 04:00 on the 8th
    assert set(unavailable_for(overnight)) == {other_crew.pk}


def test_wrong_ranges_are_refused_with_a_reason(crew):
    with pytest.raises(AvailabilityError, match="before the first"):
        availability_mark(user=crew, starts_on=date(2026, 12, 9), ends_on=date(2026, 12, 8))
    with pytest.raises(AvailabilityError, match="in the past"):
        availability_mark(user=crew, starts_on=date(2026, 11, 2), ends_on=date(2026, 11, 3))
    with pytest.raises(AvailabilityError, match="at most"):
        availability_mark(user=crew, starts_on=date(2026, 12, 2), ends_on=date(2028, 1, 1))
    assert not Unavailability.objects.exists()


def test_marking_a_confirmed_date_tells_the_managers(crew):
    manager = UserFactory(is_staff=True, email="amina@soundfusion.co.ke")
    event = _event(12, name="Blankets & Wine")
    event.managers.add(manager)
    assignment = EventCrewFactory(event=event, user=crew, role=CrewRoleFactory(name="Driver"))
    crew_confirm(assignment=assignment)
    _row, clashes = availability_mark(
        user=crew, starts_on=date(2026, 12, 11), ends_on=date(2026, 12, 13), reason="Funeral"
    )
    assert clashes == [assignment]
    alert = EmailNotification.objects.get(notification_type="crew_unavailable")
    assert alert.recipient == "amina@soundfusion.co.ke"
    assert "Blankets & Wine" in alert.subject and "Funeral" in alert.message
    # Dates that touch no confirmed work tell nobody.
    availability_mark(user=crew, starts_on=date(2026, 12, 20))
    assert EmailNotification.objects.filter(notification_type="crew_unavailable").count() == 1


def test_the_portal_page_marks_lists_and_removes_only_the_members_own(crew_client, crew):
    page = crew_client.get("/crew/availability/")
    assert page.status_code == 200 and "No dates marked" in page.content.decode()
    response = crew_client.post(
        "/crew/availability/",
        {"starts_on": "2026-12-24", "ends_on": "2026-12-26", "reason": "Christmas upcountry"},
        follow=True,
    )
    body = response.content.decode()
    assert "Saved: you cannot work" in body and "Christmas upcountry" in body
    row = Unavailability.objects.get(user=crew)
    bad = crew_client.post("/crew/availability/", {"starts_on": "2026-12-24", "ends_on": "x"})
    assert "Enter a valid date" in bad.content.decode()
    someone_else = Unavailability.objects.create(
        user=UserFactory(), starts_on=date(2026, 12, 2), ends_on=date(2026, 12, 2)
    )
    assert crew_client.post("/crew/availability/", {"remove": someone_else.pk}).status_code == 404
    assert Unavailability.objects.filter(pk=someone_else.pk).exists()
    crew_client.post("/crew/availability/", {"remove": row.pk})
    assert not Unavailability.objects.filter(pk=row.pk).exists()


def test_assigning_and_inviting_someone_unavailable_warns(staff_client, crew):
    event = _event(5, name="Sauti Sol tribute")
    availability_mark(user=crew, starts_on=date(2026, 12, 5), reason="Graduation")
    role = CrewRoleFactory(name="Stagehand")
    response = staff_client.post(
        "/admin/attendance/eventcrew/add/",
        {
            "event": event.pk,
            "user": crew.pk,
            "role": role.pk,
            "transport_allowance": "0",
            "meals_allowance": "0",
            "per_diem": "0",
        },
        follow=True,
    )
    said = [str(m) for m in response.context["messages"]]
    assert any("marked Sat 05 Dec 2026 as unavailable (Graduation)" in m for m in said), said
    assignment = event.crew.get()
    response = staff_client.post(
        f"/admin/attendance/eventcrew/{assignment.pk}/invite/", follow=True
    )
    said = [str(m) for m in response.context["messages"]]
    assert any("as unavailable" in m for m in said), said


def test_the_profile_page_shows_roles_and_marked_dates(staff_client, crew):
    crew.profile.roles.add(CrewRoleFactory(name="Rigger"))
    availability_mark(user=crew, starts_on=date(2026, 12, 5), reason="Exam")
    page = staff_client.get(f"/admin/attendance/profile/{crew.profile.pk}/change/")
    body = page.content.decode()
    assert "Rigger" in body and "Sat 05 Dec 2026: Exam" in body
