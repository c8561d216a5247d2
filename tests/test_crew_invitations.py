"""Invitation emails: what they carry, and answer links that only a POST can use."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.utils import timezone

from attendance.models import Attendance, EmailNotification, EventCrew
from attendance.services.crew.assignments import crew_invite
from attendance.services.crew.links import crew_answer_token
from tests.support.factories import EventCrewFactory, EventFactory

Status = EventCrew.Status


@pytest.fixture
def event(db):
    start = timezone.now() + timedelta(days=3)
    return EventFactory(
        name="Safari Rally gala",
        venue="Naivasha Sopa Resort",
        starts_at=start,
        ends_at=start + timedelta(hours=6),
        call_time=start - timedelta(hours=3),
        special_instructions="Bring your own in-ear monitors; black clothing.",
    )


@pytest.fixture
def assignment(event, crew):
    return EventCrewFactory(event=event, user=crew, notes="You run the monitor desk")


def _delivered_invitation(smtp_server, assignment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        crew_invite(assignment=assignment)
    [message] = smtp_server.messages
    return message


def _parts(message):
    text = html = None
    attachments = []
    for part in message.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_filename():
            attachments.append(part)
        elif part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
    return text, html, attachments


def _links(text: str) -> dict[str, str]:
    found = dict(re.findall(r"^(Confirm|Decline): (\S+)\r?$", text, flags=re.M))
    # Paths only: the test client serves them without the SITE_URL host.
    return {action.lower(): "/" + url.split("/", 3)[3] for action, url in found.items()}


def test_the_invitation_carries_event_role_call_time_map_instructions_and_calendar(
    smtp_server, assignment, django_capture_on_commit_callbacks
):
    message = _delivered_invitation(smtp_server, assignment, django_capture_on_commit_callbacks)
    assert message["To"] == assignment.user.email
    assert "Safari Rally gala" in message["Subject"] and "Stagehand" in message["Subject"]
    text, html, attachments = _parts(message)
    call = timezone.localtime(assignment.event.call_time)
    for body in (text, html):
        assert "Naivasha Sopa Resort" in body
        assert call.strftime("%H:%M") in body
        assert "google.com/maps" in body
        assert "in-ear monitors" in body
        assert "You run the monitor desk" in body
    assert set(_links(text)) == {"confirm", "decline"}
    [ics] = attachments
    assert ics.get_content_type() == "text/calendar"
    calendar = ics.get_payload(decode=True).decode()
    assert "BEGIN:VEVENT" in calendar and "LOCATION:Naivasha Sopa Resort" in calendar
    assert f"UID:eventcrew-{assignment.pk}@" in calendar
    assert all(len(line.encode()) <= 75 for line in calendar.split("\r\n"))
    assignment.refresh_from_db()
    assert assignment.invitation_sent and assignment.invitation_sent_at
    row = EmailNotification.objects.get(crew_assignment=assignment)
    assert row.notification_type == EmailNotification.Type.CREW_INVITATION
    assert row.status == "sent"


def test_opening_the_confirm_link_changes_nothing_until_the_page_is_posted(
    smtp_server, client, assignment, django_capture_on_commit_callbacks
):
    message = _delivered_invitation(smtp_server, assignment, django_capture_on_commit_callbacks)
    links = _links(_parts(message)[0])

    page = client.get(links["confirm"])
    assert page.status_code == 200
    assert "Yes, confirm" in page.content.decode()
    assert client.head(links["confirm"]).status_code == 200
    client.get(links["decline"])
    assignment.refresh_from_db()
    assert assignment.status == Status.INVITED
    assert not Attendance.objects.filter(user=assignment.user).exists()

    response = client.post(links["confirm"])
    assert response.status_code == 200
    assert "you are confirmed" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == Status.CONFIRMED and assignment.confirmed_at
    assert Attendance.objects.filter(user=assignment.user, event=assignment.event).exists()


def test_the_decline_link_saves_the_reason_on_post(
    smtp_server, client, assignment, django_capture_on_commit_callbacks
):
    message = _delivered_invitation(smtp_server, assignment, django_capture_on_commit_callbacks)
    links = _links(_parts(message)[0])
    response = client.post(links["decline"], {"reason": "  At a wedding\nin Nakuru "})
    assert "you have declined" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == Status.DECLINED
    assert assignment.decline_reason == "At a wedding in Nakuru"
    assert assignment.responded_at is not None


def test_answer_links_expire(client, assignment, settings):
    settings.CREW_ANSWER_LINK_MAX_AGE_DAYS = 2
    token = crew_answer_token(assignment=assignment, action="confirm")
    url = f"/crew/{assignment.pk}/answer/{token}/"
    with time_machine.travel(timezone.now() + timedelta(days=2, minutes=1)):
        assert client.get(url).status_code == 410
        response = client.post(url)
    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == Status.INVITED


def test_a_link_cannot_answer_another_assignment(client, assignment, event, other_crew):
    other = EventCrewFactory(event=event, user=other_crew)
    token = crew_answer_token(assignment=assignment, action="confirm")
    assert client.post(f"/crew/{other.pk}/answer/{token}/").status_code == 404
    # Nor can one be made up for it without the server's key.
    forged = signing.dumps([other.pk, other.user_id, "confirm"], key="not-the-key")
    assert client.post(f"/crew/{other.pk}/answer/{forged}/").status_code == 404
    assert client.post(f"/crew/{assignment.pk}/answer/{token[:-2]}xx/").status_code == 404
    other.refresh_from_db()
    assignment.refresh_from_db()
    assert other.status == assignment.status == Status.INVITED


def test_a_link_for_an_event_that_has_started_is_refused(client, assignment):
    token = crew_answer_token(assignment=assignment, action="confirm")
    with time_machine.travel(assignment.event.starts_at + timedelta(minutes=5)):
        response = client.post(f"/crew/{assignment.pk}/answer/{token}/")
    assert response.status_code == 409
    assert "already started" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.status == Status.INVITED


def test_answer_page_post_needs_csrf(assignment):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    token = crew_answer_token(assignment=assignment, action="confirm")
    assert client.post(f"/crew/{assignment.pk}/answer/{token}/").status_code == 403
    assignment.refresh_from_db()
    assert assignment.status == Status.INVITED


def test_no_invitation_once_answered_or_without_email(assignment, other_crew, event):
    from attendance.services.crew.assignments import CrewError, crew_confirm

    crew_confirm(assignment=assignment)
    with pytest.raises(CrewError, match="already answered"):
        crew_invite(assignment=assignment)
    other_crew.email = ""
    other_crew.save()
    with pytest.raises(CrewError, match="no email"):
        crew_invite(assignment=EventCrewFactory(event=event, user=other_crew))
    assert not EmailNotification.objects.exists()
