"""Crew scheduling as an events company runs it (issue 19): managers by default, reminders by
the real date, "not invited yet", completion only after the end, early check-out confirmed."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from attendance.models import Attendance, EmailNotification, EventCrew
from attendance.services.attendance import attendance_check_in
from attendance.services.crew.assignments import CrewError, crew_confirm, crew_decline, crew_invite
from attendance.services.crew.events import event_ensure_manager
from attendance.services.crew.followup import crew_complete_event, crew_remind
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")
Type = EmailNotification.Type


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=NAIROBI)


def test_the_decline_alert_reaches_the_events_creator_when_no_manager_was_picked(crew):
    creator = UserFactory(is_staff=True, email="producer@soundfusion.co.ke")
    event = EventFactory(created_by=creator)
    assignment = EventCrewFactory(event=event, user=crew)
    crew_decline(assignment=assignment, reason="Sick")
    alert = EmailNotification.objects.get(notification_type=Type.CREW_DECLINED)
    assert alert.recipient == "producer@soundfusion.co.ke" and alert.user == creator


def test_the_creator_becomes_the_manager_of_an_event_nobody_manages(staff):
    event = EventFactory(created_by=staff)
    assert event_ensure_manager(event=event) is True
    assert list(event.managers.all()) == [staff]
    assert event_ensure_manager(event=event) is False  # someone manages it now
    crew_member = UserFactory()
    other = EventFactory(created_by=crew_member)
    assert event_ensure_manager(event=other) is False  # crew do not manage events
    assert not other.managers.exists()


def test_an_event_without_managers_is_flagged_on_its_page_and_in_the_list(staff_client):
    lonely = EventFactory(name="Nobody's gig")
    managed = EventFactory(name="Managed gig")
    managed.managers.add(UserFactory(is_staff=True))
    page = staff_client.get(f"/admin/attendance/event/{lonely.pk}/change/").content.decode()
    assert "has no manager" in page
    page = staff_client.get(f"/admin/attendance/event/{managed.pk}/change/").content.decode()
    assert "has no manager" not in page
    listing = staff_client.get("/admin/attendance/event/").content.decode()
    assert listing.count("No manager") == 1


@pytest.mark.parametrize(
    ("now", "wording"),
    [
        (_at(5, 8), "today at 16:00"),
        (_at(4, 10), "tomorrow at 16:00"),
        (_at(2, 10), "on Sat 5 Dec at 16:00"),
    ],
)
def test_a_reminder_says_when_by_the_real_date(crew, now, wording):
    event = EventFactory(
        name="Koroga", starts_at=_at(5, 18), ends_at=_at(5, 23), call_time=_at(5, 16)
    )
    assignment = EventCrewFactory(event=event, user=crew)
    with time_machine.travel(now - timedelta(days=1), tick=False):
        crew_confirm(assignment=assignment)
    with time_machine.travel(now, tick=False):
        assert crew_remind(assignment=assignment)
    reminder = EmailNotification.objects.get(notification_type=Type.CREW_REMINDER)
    assert reminder.subject == f"Reminder: Koroga, call {wording}"
    assert f"Please be at the venue {wording}." in reminder.message
    for other in {"today at 16:00", "tomorrow at 16:00", "on Sat 5 Dec at 16:00"} - {wording}:
        assert other not in reminder.message and other not in reminder.subject
    # The link goes to the page with the Check in button.
    assert f"Check in here when you arrive: http://testserver/events/{event.pk}/" in (
        reminder.message.replace("http://127.0.0.1:8000", "http://testserver")
    )


def test_assigned_but_not_invited_is_never_called_invited(staff_client, crew, other_crew):
    event = EventFactory()
    EventCrewFactory(event=event, user=crew)
    sent = EventCrewFactory(event=event, user=other_crew)
    crew_invite(assignment=sent)
    listing = staff_client.get(f"/admin/attendance/eventcrew/?event={event.pk}").content.decode()
    assert listing.count("Not invited yet") == 1
    assert listing.count('sf-badge sf-invited">Invited') == 1
    page = staff_client.get(f"/admin/attendance/event/{event.pk}/change/").content.decode()
    assert "Not invited yet" in page


def _checked_in_crew(event, member):
    assignment = EventCrewFactory(event=event, user=member)
    with time_machine.travel(event.call_time - timedelta(days=1), tick=False):
        crew_confirm(assignment=assignment)
    with time_machine.travel(event.call_time, tick=False):
        attendance_check_in(attendance=Attendance.objects.get(event=event, user=member))
    return assignment


def test_completion_waits_for_the_end_and_checks_out_who_is_still_in(crew):
    event = EventFactory(starts_at=_at(5, 18), ends_at=_at(5, 23), call_time=_at(5, 16))
    assignment = _checked_in_crew(event, crew)
    with pytest.raises(CrewError, match="has not ended yet"):
        crew_complete_event(event=event, now=_at(5, 18, 3))
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED
    result = crew_complete_event(event=event, now=_at(5, 23, 30))
    assert (result.completed, result.checked_out_at_end) == (1, 1)
    attendance = Attendance.objects.get(event=event, user=crew)
    assert attendance.check_out_at == event.ends_at
    assert str(attendance.hours_worked) == "7.00"
    assert "Checked out at the end of the event (23:00)" in attendance.notes


def test_checking_out_hours_early_asks_first(client, crew):
    event = EventFactory(starts_at=_at(5, 18), ends_at=_at(5, 23), call_time=_at(5, 16))
    _checked_in_crew(event, crew)
    client.force_login(crew)
    url = f"/events/{event.pk}/check-out/"
    with time_machine.travel(_at(5, 18, 50), tick=False):
        asked = client.post(url)
        assert asked.status_code == 200
        body = asked.content.decode()
        assert "Check out now?" in body and "4 h 10 min from now" in body
        assert Attendance.objects.get(event=event, user=crew).check_out_at is None
        done = client.post(url, {"early": "yes"})
    assert done.status_code == 302
    assert Attendance.objects.get(event=event, user=crew).check_out_at == _at(5, 18, 50)


def test_checking_out_near_the_end_needs_no_second_tap(client, crew):
    event = EventFactory(starts_at=_at(5, 18), ends_at=_at(5, 23), call_time=_at(5, 16))
    _checked_in_crew(event, crew)
    client.force_login(crew)
    with time_machine.travel(_at(5, 22, 45), tick=False):
        assert client.post(f"/events/{event.pk}/check-out/").status_code == 302
    assert Attendance.objects.get(event=event, user=crew).check_out_at == _at(5, 22, 45)


def test_the_reminder_sms_says_today_and_links_the_check_in_page(at_sms, crew, settings):
    event = EventFactory(
        name="Koroga", starts_at=_at(5, 18), ends_at=_at(5, 23), call_time=_at(5, 16)
    )
    assignment = EventCrewFactory(event=event, user=crew)
    with time_machine.travel(_at(4, 9), tick=False):
        crew_confirm(assignment=assignment)
    with time_machine.travel(_at(5, 8), tick=False):
        crew_remind(assignment=assignment)
    from attendance.models import SmsMessage

    text = SmsMessage.objects.get(notification_type="crew_reminder").message
    assert "call today at 16:00" in text and f"/events/{event.pk}/" in text
