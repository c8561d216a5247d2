"""The crew portal's assignments page and its confirm/decline endpoints."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import EventCrew
from attendance.services.crew.assignments import crew_confirm, crew_decline, crew_invite
from attendance.services.crew.followup import crew_send_briefing
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

Status = EventCrew.Status


def _event(days: float, **kwargs):
    start = timezone.now() + timedelta(days=days)
    return EventFactory(
        starts_at=start,
        ends_at=start + timedelta(hours=5),
        call_time=start - timedelta(hours=1),
        **kwargs,
    )


@pytest.fixture
def invited(crew):
    assignment = EventCrewFactory(
        user=crew, event=_event(3, name="Blankets & Wine"), role=CrewRoleFactory(name="DJ")
    )
    crew_invite(assignment=assignment)
    return assignment


def test_assignments_need_login(client):
    response = client.get("/crew/assignments/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_the_page_shows_stats_invitations_upcoming_with_roster_history_and_messages(
    crew_client, crew, other_crew, invited
):
    upcoming = EventCrewFactory(
        user=crew,
        event=_event(6, name="Sauti Sol reunion", special_instructions="Radio channel 4"),
        notes="Bring the spare SM58s",
    )
    crew_confirm(assignment=upcoming)
    colleague = EventCrewFactory(
        user=other_crew, event=upcoming.event, role=CrewRoleFactory(name="Driver")
    )
    crew_confirm(assignment=colleague)
    crew_send_briefing(event=upcoming.event)
    declined = EventCrewFactory(user=crew, event=_event(9, name="Corporate gala"))
    crew_decline(assignment=declined, reason="Travelling")

    page = crew_client.get("/crew/assignments/").content.decode()
    assert '<div class="label">Waiting for your answer</div><div class="value">1</div>' in page
    assert '<div class="label">Upcoming</div><div class="value">1</div>' in page
    assert '<div class="label">Declined</div><div class="value">1</div>' in page
    assert "Blankets &amp; Wine" in page
    assert f'action="/crew/{invited.pk}/confirm/"' in page
    assert "Radio channel 4" in page and "Bring the spare SM58s" in page
    assert other_crew.get_full_name() in page and "+254 722 000111" in page  # the roster
    assert "Setup briefing: Sauti Sol reunion" in page  # the messages about it
    assert "Can you work Blankets &amp; Wine" in page
    assert "Corporate gala" in page and "Travelling" in page


def test_the_home_page_points_to_waiting_invitations(crew_client, invited):
    page = crew_client.get("/").content.decode()
    assert "1 invitation</strong> waiting" in page


def test_confirm_and_decline_from_the_portal(crew_client, invited):
    response = crew_client.post(f"/crew/{invited.pk}/confirm/", follow=True)
    assert "Confirmed: Blankets &amp; Wine as DJ" in response.content.decode()
    invited.refresh_from_db()
    assert invited.status == Status.CONFIRMED
    response = crew_client.post(
        f"/crew/{invited.pk}/decline/", {"reason": "Sick", "next": "/"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/"
    invited.refresh_from_db()
    assert (invited.status, invited.decline_reason) == (Status.DECLINED, "Sick")


def test_a_refused_confirmation_is_explained(crew_client, crew, invited):
    clash = EventCrewFactory(user=crew, event=_event(3, name="Overlapping show"))
    crew_confirm(assignment=clash)
    response = crew_client.post(f"/crew/{invited.pk}/confirm/", follow=True)
    assert "already confirmed for Overlapping show" in response.content.decode()
    invited.refresh_from_db()
    assert invited.status == Status.INVITED


def test_someone_elses_assignment_is_a_404_and_stays_unchanged(client, other_crew, invited):
    client.force_login(other_crew)
    assert client.post(f"/crew/{invited.pk}/confirm/").status_code == 404
    assert client.post(f"/crew/{invited.pk}/decline/", {"reason": "x"}).status_code == 404
    invited.refresh_from_db()
    assert invited.status == Status.INVITED


def test_confirm_and_decline_are_post_only_with_csrf(crew_client, crew, invited):
    assert crew_client.get(f"/crew/{invited.pk}/confirm/").status_code == 405
    assert crew_client.get(f"/crew/{invited.pk}/decline/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(crew)
    assert strict.post(f"/crew/{invited.pk}/confirm/").status_code == 403
    invited.refresh_from_db()
    assert invited.status == Status.INVITED


def _assignments_for(member, count: int) -> None:
    """`count` assignments across every section of the page, each with an email."""
    roles = [CrewRoleFactory(name=n) for n in ("FOH engineer", "Stagehand", "Driver")]
    for i in range(count):
        kind = i % 4
        event = _event(2 + i if kind != 3 else -30 - i)
        assignment = EventCrewFactory(user=member, event=event, role=roles[i % 3])
        if kind == 0:
            crew_invite(assignment=assignment)
        elif kind == 1:
            crew_confirm(assignment=assignment)
            colleague = EventCrewFactory(event=event, role=roles[0])
            crew_confirm(assignment=colleague)
            crew_send_briefing(event=event)
        elif kind == 2:
            crew_decline(assignment=assignment, reason="Away")
        else:
            EventCrew.objects.filter(pk=assignment.pk).update(
                status=Status.COMPLETED, confirmed_at=event.starts_at
            )


@pytest.mark.parametrize("count", [1, 200])
def test_the_page_issues_the_same_queries_for_1_and_200_assignments(
    db, client, django_assert_max_num_queries, count
):
    member = UserFactory(profile__phone_number="0712000999")
    _assignments_for(member, count)
    client.force_login(member)
    # 12: the rosters of the upcoming events are two queries (the first 40 each, the counts);
    # +1: standby and offers.
    with django_assert_max_num_queries(13):
        response = client.get("/crew/assignments/")
    assert response.status_code == 200
    with django_assert_max_num_queries(13):
        assert client.get("/crew/assignments/?page=2").status_code == 200


def test_every_section_filled_costs_the_same_queries_as_fifty_times_more(db, client):
    counts = []
    for per_section in (1, 50):
        member = UserFactory()
        _assignments_for(member, 4 * per_section)
        client.force_login(member)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/crew/assignments/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_assignments_not_yet_invited_stay_hidden_and_a_cancelled_event_shows_once(
    crew_client, crew
):
    planning = EventCrewFactory(user=crew, event=_event(4, name="Still being planned"))
    cancelled = EventCrewFactory(user=crew, event=_event(5, name="Rained off"))
    crew_confirm(assignment=cancelled)
    cancelled.event.status = "cancelled"
    cancelled.event.save()
    page = crew_client.get("/crew/assignments/").content.decode()
    assert "Still being planned" not in page
    assert page.count(f'id="assignment-{cancelled.pk}"') == 1
    assert "Event cancelled" in page
    assert '<div class="label">Waiting for your answer</div><div class="value">0</div>' in page
    crew_invite(assignment=planning)
    assert "Still being planned" in crew_client.get("/crew/assignments/").content.decode()


def test_a_festivals_roster_shows_the_members_own_role_first_and_counts_the_rest(db, client):
    from datetime import timedelta

    from django.utils import timezone

    from attendance.services.crew.assignments import crew_confirm
    from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

    start = timezone.now() + timedelta(days=3)
    festival = EventFactory(starts_at=start, ends_at=start + timedelta(hours=10))
    stagehand, driver = CrewRoleFactory(name="Stagehand"), CrewRoleFactory(name="Driver")
    member = UserFactory(first_name="Zawadi")
    mine = EventCrewFactory(event=festival, user=member, role=driver)
    crew_confirm(assignment=mine)
    for n in range(60):
        other = EventCrewFactory(
            event=festival, user=UserFactory(first_name=f"Aaa{n:02d}"), role=stagehand
        )
        crew_confirm(assignment=other)
    fellow = EventCrewFactory(event=festival, user=UserFactory(first_name="Zuri"), role=driver)
    crew_confirm(assignment=fellow)
    client.force_login(member)
    page = client.get("/crew/assignments/").content.decode()
    assert "Crew on this event (62)" in page
    assert "Zuri" in page  # a fellow driver, though last by name
    assert page.count("Aaa") == 38  # 40 shown: the two drivers, then 38 stagehands
    assert "62 in all" in page
