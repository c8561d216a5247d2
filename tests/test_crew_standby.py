"""Standby and replacement (issue 19): a role's places are never over-filled, even when two
members answer at once; a decline invites the next standby without the manager."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from attendance.models import EmailNotification, EventCrew, EventRoleRequirement
from attendance.services.crew.assignments import (
    CrewError,
    RoleFilled,
    crew_assign,
    crew_confirm,
    crew_decline,
    crew_invite,
    crew_promote_standby,
    crew_remove,
)
from attendance.services.crew.availability import availability_mark
from tests.support.factories import CrewRoleFactory, EventFactory, UserFactory

Status = EventCrew.Status


def _event_needing(role, needed=1, **fields):
    manager = UserFactory(is_staff=True, email="producer@soundfusion.co.ke")
    event = EventFactory(starts_at=timezone.now() + timedelta(days=5), **fields)
    event.ends_at = event.starts_at + timedelta(hours=5)
    event.call_time = event.starts_at - timedelta(hours=1)
    event.save()
    event.managers.add(manager)
    EventRoleRequirement.objects.create(event=event, role=role, needed=needed)
    return event


@pytest.mark.django_db
def test_a_decline_invites_the_next_standby_and_tells_the_manager():
    role = CrewRoleFactory(name="Monitor engineer")
    event = _event_needing(role)
    confirmed = crew_assign(event=event, user=UserFactory(), role=role)
    crew_invite(assignment=confirmed)
    crew_confirm(assignment=confirmed)
    first = crew_assign(event=event, user=UserFactory(first_name="Otieno"), role=role, standby=True)
    second = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    assert not first.invitation_sent
    crew_decline(assignment=confirmed, reason="Sick")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.invitation_sent) == (Status.INVITED, True)
    assert second.status == Status.STANDBY
    assert EmailNotification.objects.filter(
        crew_assignment=first, notification_type="crew_invitation"
    ).exists()
    alert = EmailNotification.objects.get(notification_type="crew_declined")
    assert "Invited from standby: Otieno" in alert.message


@pytest.mark.django_db
def test_a_standby_who_cannot_come_that_day_is_skipped_and_waits():
    role = CrewRoleFactory()
    event = _event_needing(role)
    leaving = crew_assign(event=event, user=UserFactory(), role=role)
    crew_invite(assignment=leaving)
    crew_confirm(assignment=leaving)
    away = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    ready = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    availability_mark(user=away.user, starts_on=timezone.localdate(event.starts_at))
    crew_remove(assignment=leaving)
    away.refresh_from_db()
    ready.refresh_from_db()
    assert away.status == Status.STANDBY and ready.status == Status.INVITED


@pytest.mark.django_db
def test_without_auto_replace_the_manager_chooses():
    role = CrewRoleFactory()
    event = _event_needing(role, auto_replace=False)
    leaving = crew_assign(event=event, user=UserFactory(), role=role)
    crew_invite(assignment=leaving)
    crew_confirm(assignment=leaving)
    waiting = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    crew_decline(assignment=leaving)
    waiting.refresh_from_db()
    assert waiting.status == Status.STANDBY
    assert crew_promote_standby(event=event, role=role) == [waiting]


@pytest.mark.django_db
def test_a_standby_cannot_confirm_until_invited_and_a_full_role_says_so_politely():
    role = CrewRoleFactory(name="Rigger")
    event = _event_needing(role)
    waiting = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    with pytest.raises(CrewError, match="on standby"):
        crew_confirm(assignment=waiting)
    one, two = (crew_assign(event=event, user=UserFactory(), role=role) for _ in range(2))
    for assignment in (one, two):
        crew_invite(assignment=assignment)
    crew_confirm(assignment=one)
    with pytest.raises(RoleFilled, match=r"Thank you! The Rigger places .* were filled"):
        crew_confirm(assignment=two)
    two.refresh_from_db()
    assert two.status == Status.STANDBY and two.standby_since is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_standbys_answering_at_once_for_one_place_confirm_exactly_one():
    role = CrewRoleFactory(name="Stagehand")
    event = _event_needing(role, needed=3)
    for _ in range(2):
        crew_confirm(assignment=_invited(event, role))
    answering = [_invited(event, role) for _ in range(2)]  # both invited from standby
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def answer(assignment):
        try:
            barrier.wait()
            crew_confirm(assignment=EventCrew.objects.get(pk=assignment.pk))
            outcomes.append("confirmed")
        except RoleFilled as error:
            outcomes.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=answer, args=(a,)) for a in answering]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("confirmed") == 1, outcomes
    [told] = [o for o in outcomes if o != "confirmed"]
    assert "were filled just before your answer" in told
    statuses = sorted(
        EventCrew.objects.filter(pk__in=[a.pk for a in answering]).values_list("status", flat=True)
    )
    assert statuses == [Status.CONFIRMED, Status.STANDBY]
    assert event.crew.filter(status=Status.CONFIRMED).count() == 3
    assert event.attendances.count() == 3


def _invited(event, role):
    assignment = crew_assign(event=event, user=UserFactory(), role=role)
    crew_invite(assignment=assignment)
    return assignment


@pytest.mark.django_db
def test_roles_without_a_requirement_have_no_limit():
    event = EventFactory(starts_at=timezone.now() + timedelta(days=2))
    role = CrewRoleFactory()
    for _ in range(3):
        crew_confirm(assignment=_invited(event, role))
    assert event.crew.filter(status=Status.CONFIRMED).count() == 3


@pytest.mark.django_db
def test_the_manager_can_invite_a_standby_out_of_turn_from_the_board(staff_client):
    role = CrewRoleFactory()
    event = _event_needing(role, needed=2)
    first = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    chosen = crew_assign(event=event, user=UserFactory(), role=role, standby=True)
    response = staff_client.post(
        f"/admin/attendance/event/{event.pk}/board/?role={role.pk}",
        {"do": "invite_now", "assignment": chosen.pk},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    chosen.refresh_from_db()
    assert (chosen.status, chosen.invitation_sent, chosen.standby_since) == (
        Status.INVITED,
        True,
        None,
    )
    assert first.status == Status.STANDBY
    offer = EventCrew.objects.create(event=event, user=UserFactory(), role=role, status="offered")
    with pytest.raises(CrewError, match="accept or decline the offer"):
        crew_invite(assignment=offer)


def test_a_member_leaves_standby_from_the_portal_and_only_their_own(client, db):
    from attendance.models import EventCrew as Crew
    from tests.support.factories import EventCrewFactory

    member = UserFactory()
    other = UserFactory()
    event = EventFactory()
    waiting = EventCrewFactory(event=event, user=member, status="standby")
    theirs = EventCrewFactory(event=event, user=other, status="standby")
    client.force_login(member)
    page = client.get("/crew/assignments/").content.decode()
    assert "Leave standby" in page
    assert client.get(f"/crew/{waiting.pk}/leave/").status_code == 405  # a change is a POST
    assert client.post(f"/crew/{theirs.pk}/leave/").status_code == 404
    page = client.post(f"/crew/{waiting.pk}/leave/", follow=True).content.decode()
    assert "You left the standby list" in page
    assert not Crew.objects.filter(pk=waiting.pk).exists()
    assert Crew.objects.filter(pk=theirs.pk).exists()
    again = client.post(f"/crew/{waiting.pk}/leave/")
    assert again.status_code == 404  # gone: Back and press again changes nothing
