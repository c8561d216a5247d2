"""Calendars that stay true (issue 19): the invitation's file, an updated file with the same UID
and a higher SEQUENCE on every change that matters, METHOD:CANCEL when the member is off the
event, and the member's own feed (secret, revocable, following the schedule)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from icalendar import Calendar

from attendance.models import EmailNotification, Event, EventCrew
from attendance.services.crew.assignment_changes import crew_update
from attendance.services.crew.assignments import (
    crew_confirm,
    crew_decline,
    crew_invite,
    crew_remove,
)
from attendance.services.crew.calendar import calendar_feed_start, calendar_feed_stop
from attendance.services.crew.events import event_save
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory

pytestmark = pytest.mark.django_db
Type = EmailNotification.Type


def _calendar(row: EmailNotification) -> Calendar:
    [attachment] = [a for a in row.attachments if a["mimetype"] == "text/calendar"]
    return Calendar.from_ical(attachment["content"])


def _entry(calendar: Calendar):
    [entry] = calendar.walk("VEVENT")
    return entry


@pytest.fixture
def invited(crew):
    event = EventFactory(
        name="Koroga Festival",
        venue="Arboretum",
        starts_at=(timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0),
    )
    event.ends_at = event.starts_at + timedelta(hours=6)
    event.call_time = event.starts_at - timedelta(hours=2)
    event.save()
    assignment = EventCrewFactory(event=event, user=crew, role=CrewRoleFactory(name="Rigger"))
    crew_invite(assignment=assignment)
    return assignment


def test_the_invitation_file_parses_with_one_entry_per_assignment(invited):
    row = EmailNotification.objects.get(notification_type=Type.CREW_INVITATION)
    calendar = _calendar(row)
    entry = _entry(calendar)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(entry["UID"]).startswith(f"eventcrew-{invited.pk}@")
    assert int(entry["SEQUENCE"]) == 0
    assert str(entry["SUMMARY"]) == "Koroga Festival (Rigger)"
    assert str(entry["LOCATION"]) == "Arboretum"
    assert entry.decoded("DTSTART") == invited.event.call_time


def test_a_moved_call_time_sends_the_same_uid_with_a_higher_sequence(invited):
    crew_confirm(assignment=invited)
    later = invited.event.call_time + timedelta(minutes=45)
    crew_update(assignment=invited, call_time=later)
    update = EmailNotification.objects.get(notification_type=Type.EVENT_UPDATED)
    entry = _entry(_calendar(update))
    first = _entry(_calendar(EmailNotification.objects.get(notification_type=Type.CREW_INVITATION)))
    assert entry["UID"] == first["UID"]
    assert int(entry["SEQUENCE"]) == 1 > int(first["SEQUENCE"])
    assert entry.decoded("DTSTART") == later


def test_an_event_change_raises_every_members_sequence(invited, other_crew):
    other = EventCrewFactory(event=invited.event, user=other_crew)
    crew_invite(assignment=other)
    event = invited.event
    event.venue = "Uhuru Gardens"
    event_save(event=event)
    updates = EmailNotification.objects.filter(notification_type=Type.EVENT_UPDATED)
    assert updates.count() == 2
    for row in updates:
        entry = _entry(_calendar(row))
        assert int(entry["SEQUENCE"]) == 1 and str(entry["LOCATION"]) == "Uhuru Gardens"
    # A second change goes higher again.
    event.venue = "Carnivore Grounds"
    event_save(event=event)
    invited.refresh_from_db()
    assert invited.calendar_sequence == 2


def test_a_cancelled_event_sends_method_cancel(invited):
    crew_confirm(assignment=invited)
    event = invited.event
    event.status = Event.Status.CANCELLED
    event_save(event=event)
    row = EmailNotification.objects.get(notification_type=Type.EVENT_UPDATED)
    calendar = _calendar(row)
    assert str(calendar["METHOD"]) == "CANCEL"
    entry = _entry(calendar)
    assert str(entry["STATUS"]) == "CANCELLED" and int(entry["SEQUENCE"]) == 1


def test_a_decline_sends_the_member_a_cancel(invited):
    crew_decline(assignment=invited, reason="Family wedding")
    row = EmailNotification.objects.get(notification_type=Type.CREW_OFF)
    assert row.recipient == invited.user.email and "not working Koroga" in row.subject
    calendar = _calendar(row)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(_entry(calendar)["UID"]).startswith(f"eventcrew-{invited.pk}@")
    # Declining again (with a new reason) sends nothing more.
    crew_decline(assignment=invited, reason="Still the wedding")
    assert EmailNotification.objects.filter(notification_type=Type.CREW_OFF).count() == 1


def test_a_removal_sends_a_cancel_but_not_for_someone_never_told(invited, other_crew):
    uid = f"eventcrew-{invited.pk}@"
    crew_remove(assignment=invited)
    row = EmailNotification.objects.get(notification_type=Type.CREW_OFF)
    assert "off the crew of Koroga" in row.subject
    assert str(_entry(_calendar(row))["UID"]).startswith(uid)
    never_told = EventCrewFactory(event=invited.event, user=other_crew)
    crew_remove(assignment=never_told)
    assert EmailNotification.objects.filter(notification_type=Type.CREW_OFF).count() == 1


def test_the_feed_lists_confirmed_work_follows_changes_and_a_revoked_address_is_404(
    client, invited, crew, other_crew
):
    crew_confirm(assignment=invited)
    unanswered = EventCrewFactory(
        event=EventFactory(name="Not yet answered"), user=crew, status=EventCrew.Status.INVITED
    )
    assert unanswered.pk
    someone_elses = EventCrewFactory(event=EventFactory(name="Someone else's"), user=other_crew)
    crew_confirm(assignment=someone_elses)
    profile = calendar_feed_start(user=crew)
    url = f"/calendar/{profile.calendar_token}.ics"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    entries = Calendar.from_ical(response.content).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in entries] == ["Koroga Festival (Rigger)"]
    later = invited.event.call_time + timedelta(hours=1)
    crew_update(assignment=invited, call_time=later)
    [entry] = Calendar.from_ical(client.get(url).content).walk("VEVENT")
    assert entry.decoded("DTSTART") == later and int(entry["SEQUENCE"]) == 1
    # A new address replaces the old; stopping the feed ends both.
    old = profile.calendar_token
    new = calendar_feed_start(user=crew).calendar_token
    assert client.get(f"/calendar/{old}.ics").status_code == 404
    assert client.get(f"/calendar/{new}.ics").status_code == 200
    calendar_feed_stop(user=crew)
    assert client.get(f"/calendar/{new}.ics").status_code == 404
    assert client.get("/calendar/guess.ics").status_code == 404


def test_the_account_page_starts_renews_and_stops_the_feed_by_post(crew_client, crew):
    page = crew_client.get("/account/").content.decode()
    assert "Get my calendar address" in page
    assert crew_client.get("/account/?calendar=start").status_code == 200
    crew.profile.refresh_from_db()
    assert crew.profile.calendar_token is None  # a GET changes nothing
    crew_client.post("/account/", {"calendar": "start"})
    crew.profile.refresh_from_db()
    token = crew.profile.calendar_token
    page = crew_client.get("/account/").content.decode()
    assert "webcal://" in page and f"/calendar/{token}.ics" in page
    crew_client.post("/account/", {"calendar": "stop"})
    crew.profile.refresh_from_db()
    assert crew.profile.calendar_token is None


def test_a_member_who_takes_texts_hears_by_sms_that_they_are_off(at_sms, invited):
    from attendance.models import SmsMessage
    from attendance.services.people.profiles import profile_set_channel

    profile_set_channel(user=invited.user, channel="sms")
    crew_remove(assignment=invited)
    text = SmsMessage.objects.get(notification_type="crew_off")
    assert "the manager has taken you off Koroga Festival" in text.message
    # The email with the calendar cancel is held as the fallback.
    held = EmailNotification.objects.get(notification_type=Type.CREW_OFF)
    assert held.status == EmailNotification.Status.HELD
    assert str(_calendar(held)["METHOD"]) == "CANCEL"
