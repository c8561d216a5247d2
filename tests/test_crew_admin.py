"""Crew in admin: assigning on the event page, the assignment list, its buttons and actions."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import EmailNotification, EventCrew, EventRoleRequirement
from attendance.services.crew.assignments import crew_confirm, crew_invite
from tests.support.admin_forms import event_form, management_forms
from tests.support.auth import log_in_staff
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory
from tests.support.jobs import run_action

Status = EventCrew.Status
CHANGELIST = "/admin/attendance/eventcrew/"


def test_assign_several_people_at_once_on_the_event_page(staff_client, crew, other_crew):
    event = EventFactory(name="Jamhuri Day concert")
    foh, hands = CrewRoleFactory(name="FOH engineer"), CrewRoleFactory(name="Stagehand")
    data = event_form(
        event,
        **{
            "crew-2-TOTAL_FORMS": "2",
            "crew-2-0-user": crew.pk,
            "crew-2-0-role": foh.pk,
            "crew-2-0-notes": "Bring the laptop",
            "crew-2-1-user": other_crew.pk,
            "crew-2-1-role": hands.pk,
            "role_requirements-TOTAL_FORMS": "2",
            "role_requirements-0-role": foh.pk,
            "role_requirements-0-needed": "1",
            "role_requirements-1-role": hands.pk,
            "role_requirements-1-needed": "4",
        },
    )
    response = staff_client.post(f"/admin/attendance/event/{event.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:4000]
    assigned = {a.user_id: a for a in EventCrew.objects.filter(event=event)}
    assert set(assigned) == {crew.pk, other_crew.pk}
    assert assigned[crew.pk].notes == "Bring the laptop"
    assert all(a.status == Status.INVITED and not a.invitation_sent for a in assigned.values())
    assert EventRoleRequirement.objects.filter(event=event).count() == 2

    page = staff_client.get(f"/admin/attendance/event/{event.pk}/change/").content.decode()
    assert "<td>FOH engineer</td><td>0 / 1</td>" in page
    assert "<td>Stagehand</td><td>0 / 4</td>" in page
    assert "4 to find" in page


def test_assigning_someone_booked_elsewhere_warns(staff_client, crew):
    start = timezone.now() + timedelta(days=4)
    booked = EventCrewFactory(
        user=crew,
        event=EventFactory(
            name="Wedding in Karen", starts_at=start, ends_at=start + timedelta(hours=8)
        ),
    )
    crew_confirm(assignment=booked)
    event = EventFactory(starts_at=start + timedelta(hours=2), ends_at=start + timedelta(hours=6))
    data = event_form(
        event,
        **{
            "crew-2-TOTAL_FORMS": "1",
            "crew-2-0-user": crew.pk,
            "crew-2-0-role": CrewRoleFactory().pk,
        },
    )
    response = staff_client.post(f"/admin/attendance/event/{event.pk}/change/", data, follow=True)
    assert "already confirmed for Wedding in Karen" in response.content.decode()
    assert EventCrew.objects.filter(event=event, user=crew).exists()


def test_the_send_invite_button_posts_and_emails(staff_client, crew):
    assignment = EventCrewFactory(user=crew)
    page = staff_client.get(CHANGELIST).content.decode()
    invite_url = f"/admin/attendance/eventcrew/{assignment.pk}/invite/"
    assert f'formaction="{invite_url}"' in page and "Send invite" in page
    assert staff_client.get(invite_url).status_code == 405
    response = staff_client.post(invite_url, HTTP_REFERER=f"http://testserver{CHANGELIST}")
    assert response.status_code == 302 and response.url.endswith(CHANGELIST)
    assignment.refresh_from_db()
    assert assignment.invitation_sent
    assert EmailNotification.objects.filter(
        crew_assignment=assignment, notification_type="crew_invitation"
    ).exists()
    assert "Resend invite" in staff_client.get(CHANGELIST).content.decode()


def test_crew_cannot_use_the_invite_button(crew_client, crew):
    assignment = EventCrewFactory(user=crew)
    response = crew_client.post(f"/admin/attendance/eventcrew/{assignment.pk}/invite/")
    assert response.status_code == 302 and "/admin/login/" in response.url
    assignment.refresh_from_db()
    assert not assignment.invitation_sent


def _action(staff_client, action, assignments):
    return staff_client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [a.pk for a in assignments]},
        follow=True,
    ).content.decode()


def _job(staff_client, capture, action, assignments):
    data = {"action": action, "_selected_action": [a.pk for a in assignments]}
    return run_action(staff_client, CHANGELIST, data, capture=capture)


def test_bulk_actions_invite_confirm_remind_and_complete(
    staff_client, crew, other_crew, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    event = EventFactory()
    first, second = (EventCrewFactory(event=event, user=u) for u in (crew, other_crew))
    job, page = _job(staff_client, capture, "send_invitations", [first, second])
    assert (job.done, job.failed) == (2, 0) and page.count("Invitation sent.") == 2
    job, page = _job(staff_client, capture, "mark_confirmed", [first])
    assert job.done == 1 and "Marked confirmed." in page
    job, page = _job(staff_client, capture, "send_reminders", [first, second])
    assert (job.done, job.skipped) == (1, 1)
    assert "Reminder sent." in page and "Not confirmed, or reminded already." in page
    page = _action(staff_client, "mark_completed", [first])
    assert "1 left as they were" in page  # the event has not started: nobody checked in
    first.refresh_from_db()
    assert (first.status, first.reminder_sent) == (Status.CONFIRMED, True)
    job, page = _job(staff_client, capture, "send_invitations", [first])
    assert job.failed == 1 and "already answered" in page


def test_the_assignment_page_shows_its_emails_and_only_safe_fields(staff_client, crew):
    assignment = EventCrewFactory(user=crew)
    crew_invite(assignment=assignment)
    page = staff_client.get(f"{CHANGELIST}{assignment.pk}/change/").content.decode()
    assert "Communication tracking" in page
    assert "Can you work" in page  # the invitation in its history
    assert 'name="status"' not in page  # answers come from the member, not a dropdown


def test_event_action_sends_the_setup_briefing(
    staff_client, crew, django_capture_on_commit_callbacks
):
    assignment = EventCrewFactory(user=crew)
    crew_confirm(assignment=assignment)
    job, page = run_action(
        staff_client,
        "/admin/attendance/event/",
        {"action": "send_setup_briefing", "_selected_action": [assignment.event_id]},
        capture=django_capture_on_commit_callbacks,
    )
    assert job.done == 1 and "Briefing sent." in page
    assert EmailNotification.objects.filter(notification_type="setup_briefing").count() == 1


def _crew_rows(count: int):
    roles = [CrewRoleFactory(name=n) for n in ("FOH engineer", "Stagehand", "Driver")]
    now = timezone.now()
    events = [
        EventFactory(
            starts_at=now + timedelta(days=1 + n), ends_at=now + timedelta(days=1 + n, hours=4)
        )
        for n in range(max(1, count // 20))
    ]
    for i in range(count):
        event = events[i % len(events)]
        EventRoleRequirement.objects.get_or_create(
            event=event, role=roles[i % 3], defaults={"needed": 20}
        )
        assignment = EventCrewFactory(event=event, user=UserFactory(), role=roles[i % 3])
        if i % 2:
            crew_confirm(assignment=assignment)


def _queries(staff_client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", [CHANGELIST, "/admin/attendance/event/"])
def test_changelists_issue_the_same_queries_for_1_and_200_assignments(staff_client, url):
    _crew_rows(1)
    few = _queries(staff_client, url)
    _crew_rows(199)
    assert EventCrew.objects.count() == 200
    assert _queries(staff_client, url) == few
    assert few <= 14


def test_the_event_page_with_a_large_crew_stays_flat(staff_client):
    event = EventFactory()
    roles = [CrewRoleFactory(name=n) for n in ("FOH engineer", "Stagehand", "Driver")]
    crew_confirm(assignment=EventCrewFactory(event=event, role=roles[0]))
    url = f"/admin/attendance/event/{event.pk}/change/"
    few = _queries(staff_client, url)
    for i in range(60):
        assignment = EventCrewFactory(event=event, role=roles[i % 3])
        if i % 2:
            crew_confirm(assignment=assignment)  # also on the attendance list
    assert _queries(staff_client, url) == few


def test_moving_a_confirmed_members_call_time_into_another_booking_warns(staff_client, crew):
    start = timezone.now() + timedelta(days=4)
    EventCrewFactory(
        user=crew,
        event=EventFactory(
            name="Morning service", starts_at=start, ends_at=start + timedelta(hours=3)
        ),
    )
    crew_confirm(assignment=EventCrew.objects.get(user=crew))
    later = EventFactory(
        starts_at=start + timedelta(hours=5),
        ends_at=start + timedelta(hours=9),
        call_time=start + timedelta(hours=4),
    )
    assignment = EventCrewFactory(user=crew, event=later)
    crew_confirm(assignment=assignment)
    call = timezone.localtime(start + timedelta(hours=1)).replace(microsecond=0)
    response = staff_client.post(
        f"{CHANGELIST}{assignment.pk}/change/",
        {
            "role": assignment.role_id,
            "call_time_0": call.strftime("%Y-%m-%d"),
            "call_time_1": call.strftime("%H:%M:%S"),
            "notes": "",
        },
        follow=True,
    )
    assert "already confirmed for Morning service" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.call_time == call


def test_staff_who_may_only_view_assignments_cannot_invite(client, crew):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_eventcrew"))
    log_in_staff(client, viewer)
    assignment = EventCrewFactory(user=crew)
    assert client.post(f"/admin/attendance/eventcrew/{assignment.pk}/invite/").status_code == 403
    page = client.get(CHANGELIST).content.decode()
    assert "send_invitations" not in page
    client.post(CHANGELIST, {"action": "send_invitations", "_selected_action": [assignment.pk]})
    assignment.refresh_from_db()
    assert not assignment.invitation_sent
    assert not EmailNotification.objects.exists()


def test_the_event_form_says_what_is_wrong_in_words(staff_client):
    event = EventFactory(name="Jazz Night")
    start = timezone.localtime(event.starts_at)
    before = start - timedelta(hours=2)
    page = staff_client.post(
        f"/admin/attendance/event/{event.pk}/change/",
        event_form(
            event, ends_at_0=before.strftime("%Y-%m-%d"), ends_at_1=before.strftime("%H:%M:%S")
        ),
    ).content.decode()
    assert "before it starts" in page and "Constraint" not in page
    later = start + timedelta(hours=1)
    page = staff_client.post(
        f"/admin/attendance/event/{event.pk}/change/",
        event_form(
            event, call_time_0=later.strftime("%Y-%m-%d"), call_time_1=later.strftime("%H:%M:%S")
        ),
    ).content.decode()
    assert "after the start" in page
    event.refresh_from_db()
    assert timezone.localtime(event.call_time) < start  # nothing saved


def test_a_new_event_in_the_past_is_saved_with_a_warning_and_one_message(staff_client):
    start = timezone.localtime(timezone.now() - timedelta(days=2))
    data = {
        "name": "Last week's gig",
        "client": "Acme",
        "status": "planned",
        "venue": "KICC",
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": start.strftime("%H:%M:%S"),
        "ends_at_0": (start + timedelta(hours=4)).strftime("%Y-%m-%d"),
        "ends_at_1": (start + timedelta(hours=4)).strftime("%H:%M:%S"),
        "call_time_0": (start - timedelta(hours=1)).strftime("%Y-%m-%d"),
        "call_time_1": (start - timedelta(hours=1)).strftime("%H:%M:%S"),
        **management_forms("role_requirements"),
    }
    page = staff_client.post("/admin/attendance/event/add/", data, follow=True).content.decode()
    assert "ended before now" in page and "Set it to Completed" in page


def test_the_add_page_shows_only_the_crew_needed(staff_client):
    page = staff_client.get("/admin/attendance/event/add/").content.decode()
    assert 'id="role_requirements-group"' in page
    assert 'id="attendances-group"' not in page and 'id="timesheet_lines-group"' not in page
    assert "Save the event first" not in page
