"""The staffing board, open roles, replacement requests and track records (issue 19)."""

from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import (
    Attendance,
    BulkJob,
    EmailNotification,
    Event,
    EventCrew,
    EventRoleRequirement,
    ReplacementRequest,
)
from attendance.services.crew.assignments import CrewError, crew_confirm, crew_decline, crew_invite
from attendance.services.crew.availability import availability_mark
from attendance.services.crew.board import board_candidates
from attendance.services.crew.offers import (
    crew_ask_replacement,
    crew_offer,
    crew_offer_accept,
    crew_offer_decline,
    crew_replacement_decide,
    open_roles_for,
)
from attendance.services.crew.track_record import crew_rate, track_record
from tests.support.clock import HOURS, NAIROBI, nairobi_at
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = EventCrew.Status


def _event(days=5, **fields):
    starts = (timezone.now() + timedelta(days=days)).replace(second=0, microsecond=0)
    return EventFactory(
        starts_at=starts,
        ends_at=starts + timedelta(hours=5),
        call_time=starts - timedelta(hours=1),
        **fields,
    )


def _past_worked(member, role, *, rating=None, status=Status.COMPLETED):
    starts = timezone.now() - timedelta(days=10)
    event = EventFactory(
        starts_at=starts, ends_at=starts + timedelta(hours=4), status=Event.Status.COMPLETED
    )
    assignment = EventCrewFactory(
        event=event,
        user=member,
        role=role,
        status=status,
        confirmed_at=starts - timedelta(days=2),
    )
    if rating:
        crew_rate(assignment=assignment, rating=rating, note="Solid")
    return assignment


@pytest.fixture
def rigger():
    return CrewRoleFactory(name="Rigger")


def test_ranking_puts_the_available_skilled_reliable_member_above_an_unavailable_one(rigger):
    event = _event(name="Safari Rally")
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=2)
    best = UserFactory(first_name="Zawadi")  # last alphabetically: only merit lifts her
    best.profile.roles.add(rigger)
    for _ in range(3):
        _past_worked(best, rigger, rating=5)
    away = UserFactory(first_name="Akinyi")
    away.profile.roles.add(rigger)
    for _ in range(5):
        _past_worked(away, rigger, rating=5)
    availability_mark(user=away, starts_on=timezone.localdate(event.starts_at), reason="Exam")
    unskilled = UserFactory(first_name="Baraka")
    booked = UserFactory(first_name="Chebet")
    booked.profile.roles.add(rigger)
    clash = EventCrewFactory(event=_event(name="Other gig"), user=booked, role=rigger)
    clash.event.starts_at = event.starts_at
    clash.event.ends_at = event.ends_at
    clash.event.save()
    crew_confirm(assignment=clash)
    no_show = UserFactory(first_name="Daudi")
    no_show.profile.roles.add(rigger)
    _past_worked(no_show, rigger, status=Status.CONFIRMED)  # never checked in
    candidates, considered = board_candidates(event, rigger)
    order = [c.user for c in candidates]
    assert order.index(best) < order.index(no_show) < order.index(unskilled)
    assert order.index(unskilled) < order.index(booked) and order.index(unskilled) < order.index(
        away
    )
    by_user = {c.user: c for c in candidates}
    assert by_user[away].unavailable.reason == "Exam"
    assert by_user[booked].booked_at == "Other gig"
    assert by_user[no_show].record.no_shows == 1
    assert by_user[best].record.rating == 5.0 and by_user[best].record.worked == 3
    assert considered == len(candidates)


def test_the_board_lists_crew_not_office_staff(rigger):
    event = _event()
    office = UserFactory(first_name="Office", is_staff=True)
    engineer_manager = UserFactory(first_name="Dual", is_staff=True)
    engineer_manager.profile.roles.add(rigger)  # also works as crew
    member = UserFactory(first_name="Crew")
    candidates, _ = board_candidates(event, rigger)
    shown = {c.user for c in candidates}
    assert member in shown and engineer_manager in shown and office not in shown


def _board_queries(staff_client, event, role) -> int:
    url = f"/admin/attendance/event/{event.pk}/board/?role={role.pk}"
    staff_client.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("members", [1, 200])
def test_the_board_costs_the_same_queries_for_1_and_200_candidates(staff_client, rigger, members):
    event = _event()
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=5)
    for n in range(members):
        member = UserFactory()
        if n % 2:
            member.profile.roles.add(rigger)
        if n % 3 == 0:
            _past_worked(member, rigger, rating=4)
        if n % 7 == 0:
            availability_mark(user=member, starts_on=timezone.localdate(event.starts_at))
    for _ in range(3):
        crew_confirm(assignment=EventCrewFactory(event=event, role=rigger))
    # 18 at both sizes: the session, the second factor, the event, its staffing (2), roles,
    # the crew on the role with their records (3), the candidates (1), their unavailable dates
    # (1) and records (3), replacement requests, messages, the counts of not invited yet, and
    # the role's open places (2); +2 for the replacement requests per role (the roles table)
    # and who checked in (no-shows after the event).
    assert _board_queries(staff_client, event, rigger) == 22


def test_the_board_assigns_and_invites_several_at_once_as_a_background_job(
    staff_client, rigger, django_capture_on_commit_callbacks
):
    event = _event(name="Koroga")
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=2)
    picks = [UserFactory() for _ in range(2)]
    url = f"/admin/attendance/event/{event.pk}/board/"
    page = staff_client.get(url)
    assert page.status_code == 200 and "Candidates" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            url, {"do": "invite", "role": rigger.pk, "member": [u.pk for u in picks]}
        )
    job = BulkJob.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{job.pk}/change/")
    assert job.kind == BulkJob.Kind.SEND_INVITATIONS
    rows = EventCrew.objects.filter(event=event)
    assert {r.user for r in rows} == set(picks)
    assert all(r.invitation_sent for r in rows)  # the job ran (tasks in-process in tests)
    # Standby from the board: assigned to wait, nothing sent.
    waiting = UserFactory()
    staff_client.post(url, {"do": "standby", "role": rigger.pk, "member": [waiting.pk]})
    assert EventCrew.objects.get(user=waiting).status == Status.STANDBY


def test_view_only_staff_see_the_board_but_cannot_change_it(client, rigger):
    from django.contrib.auth.models import Permission

    from tests.support.auth import log_in_staff

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_event"))
    log_in_staff(client, viewer)
    event = _event()
    url = f"/admin/attendance/event/{event.pk}/board/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"do": "standby", "role": rigger.pk}).status_code == 403


def test_open_roles_list_what_a_member_could_work_and_an_offer_is_accepted(rigger, crew):
    manager = UserFactory(is_staff=True, email="boss@soundfusion.co.ke")
    event = _event(name="Blankets & Wine")
    event.managers.add(manager)
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=1)
    other_role = CrewRoleFactory(name="Driver")
    EventRoleRequirement.objects.create(event=event, role=other_role, needed=1)
    crew.profile.roles.add(rigger)
    assert [(o.event, o.role) for o in open_roles_for(crew)] == [(event, rigger)]
    offer = crew_offer(member=crew, event=event, role=rigger)
    assert offer.status == Status.OFFERED
    assert EmailNotification.objects.get(notification_type="crew_staffing").recipient == (
        "boss@soundfusion.co.ke"
    )
    assert open_roles_for(crew) == []  # on the event now
    with pytest.raises(CrewError):
        crew_offer(member=crew, event=event, role=rigger)
    crew_offer_accept(assignment=offer, by=manager)
    offer.refresh_from_db()
    assert offer.status == Status.CONFIRMED
    assert Attendance.objects.filter(event=event, user=crew).exists()
    answer = EmailNotification.objects.get(notification_type="crew_offer_answer")
    assert "You are on the crew of Blankets & Wine" in answer.subject
    # The role is full now: nobody else sees it.
    other = UserFactory()
    other.profile.roles.add(rigger)
    assert open_roles_for(other) == []


def test_a_declined_offer_is_removed_and_the_member_thanked(rigger, crew):
    event = _event()
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=1)
    offer = crew_offer(member=crew, event=event, role=rigger)
    manager = UserFactory(username="wangari", is_staff=True)
    crew_offer_decline(assignment=offer, by=manager, note="Full this time")
    assert not EventCrew.objects.filter(pk=offer.pk).exists()
    # Who said no stays on record (before, `by` was taken and recorded nowhere).
    from auditlog.models import LogEntry

    entry = LogEntry.objects.get(additional_data__event="crew_offer_declined")
    assert entry.actor == manager and entry.object_pk == str(event.pk)
    assert entry.additional_data["note"] == "Full this time"
    assert (
        "thank you for offering"
        in EmailNotification.objects.get(notification_type="crew_offer_answer").subject
    )
    with pytest.raises(CrewError, match="already been answered"):
        crew_offer_decline(assignment=offer)


def test_the_portal_offers_and_asks_for_a_replacement(crew_client, crew, rigger):
    event = _event(name="Sol Fest")
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=2)
    page = crew_client.get("/crew/open-roles/").content.decode()
    assert "Sol Fest" in page and "Offer to work as Rigger" in page
    crew_client.post("/crew/open-roles/", {"event": event.pk, "role": rigger.pk})
    offer = EventCrew.objects.get(user=crew, event=event)
    assert offer.status == Status.OFFERED
    assert "You offered to work this role" in crew_client.get("/crew/assignments/").content.decode()
    crew_offer_accept(assignment=offer)
    colleague = UserFactory(first_name="Wekesa")
    colleague.profile.roles.add(rigger)
    page = crew_client.get(f"/crew/{offer.pk}/replace/").content.decode()
    assert "Wekesa" in page
    response = crew_client.post(
        f"/crew/{offer.pk}/replace/", {"proposed": colleague.pk, "reason": "Exam moved"}
    )
    assert response.status_code == 302
    ask = ReplacementRequest.objects.get()
    assert ask.proposed == colleague and ask.reason == "Exam moved"
    page = crew_client.get("/crew/assignments/").content.decode()
    assert "You asked to be replaced" in page and "Ask to be replaced</a>" not in page
    # Someone else's assignment is a 404.
    other = EventCrewFactory(event=event, user=UserFactory(), role=rigger)
    assert crew_client.get(f"/crew/{other.pk}/replace/").status_code == 404


def test_an_approved_replacement_invites_the_colleague_and_takes_the_member_off(rigger, crew):
    manager = UserFactory(is_staff=True)
    event = _event()
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=1)
    assignment = EventCrewFactory(event=event, user=crew, role=rigger)
    crew_invite(assignment=assignment)
    crew_confirm(assignment=assignment)
    colleague = UserFactory()
    colleague.profile.roles.add(rigger)
    ask = crew_ask_replacement(assignment=assignment, proposed=colleague, reason="Sick")
    with pytest.raises(CrewError, match="already asked"):
        crew_ask_replacement(assignment=assignment)
    before = set(EmailNotification.objects.values_list("pk", flat=True))
    [invited] = crew_replacement_decide(request=ask, approve=True, by=manager)
    assert invited.user == colleague and invited.invitation_sent
    assignment.refresh_from_db()
    assert assignment.status == Status.DECLINED and "Replaced" in assignment.decline_reason
    # One message to the member (with the calendar cancel), none saying she "declined" or
    # that "as you answered" she is off; the colleague's invitation.
    sent = EmailNotification.objects.exclude(pk__in=before)
    to_her = list(sent.filter(user=crew).values_list("notification_type", flat=True))
    assert to_her == ["crew_offer_answer"]
    answer = sent.get(user=crew)
    assert "Replacement approved" in answer.subject and answer.attachments
    assert not sent.filter(notification_type__in=["crew_declined", "crew_off"]).exists()
    assert sent.filter(user=colleague, notification_type="crew_invitation").exists()
    with pytest.raises(CrewError, match="already been answered"):
        crew_replacement_decide(request=ask, approve=False, by=manager)


def test_a_refused_replacement_keeps_the_member_on(rigger, crew):
    event = _event()
    assignment = EventCrewFactory(event=event, user=crew, role=rigger)
    crew_confirm(assignment=assignment)
    ask = crew_ask_replacement(assignment=assignment, reason="Tired")
    crew_replacement_decide(
        request=ask, approve=False, by=UserFactory(is_staff=True), note="We need you"
    )
    assignment.refresh_from_db()
    assert assignment.status == Status.CONFIRMED
    mail = EmailNotification.objects.get(notification_type="crew_offer_answer")
    assert "You stay on" in mail.subject and "We need you" in mail.message


def test_the_track_record_counts_late_declines_lateness_and_ratings(rigger, crew):
    _past_worked(crew, rigger, rating=4)
    _past_worked(crew, rigger, rating=2)
    _past_worked(crew, rigger, status=Status.CONFIRMED)  # a no-show
    soon = _event(days=1)  # call time in under 48 hours
    late = EventCrewFactory(event=soon, user=crew, role=rigger)
    crew_invite(assignment=late)
    crew_decline(assignment=late, reason="Overslept")
    early = EventCrewFactory(event=_event(days=20), user=crew, role=rigger)
    crew_decline(assignment=early)
    record = track_record(crew)
    assert (record.worked, record.no_shows, record.late_declines) == (2, 1, 1)
    assert record.rating == 3.0 and record.ratings == 2
    assert 20 < record.shortest_notice_hours < 24
    assert "1 no-show" in record.summary and "late decline" in record.summary


def test_ratings_wait_for_the_end_of_the_event(rigger, crew):
    upcoming = EventCrewFactory(event=_event(), user=crew, role=rigger)
    crew_confirm(assignment=upcoming)
    with pytest.raises(CrewError, match="once the event is over"):
        crew_rate(assignment=upcoming, rating=5)
    past = _past_worked(crew, rigger)
    with pytest.raises(CrewError, match="1 to 5"):
        crew_rate(assignment=past, rating=6)
    crew_rate(assignment=past, rating=3, note="Late twice")
    past.refresh_from_db()
    assert (past.rating, past.rating_note) == (3, "Late twice")


def test_the_track_record_is_never_shown_to_crew(crew_client, crew, rigger):
    _past_worked(crew, rigger, rating=1)
    for path in ("/crew/assignments/", "/", "/account/"):
        body = crew_client.get(path).content.decode()
        assert "rated" not in body and "no-show" not in body


def test_the_members_admin_page_shows_their_record_and_ratings(staff_client, crew, rigger):
    _past_worked(crew, rigger, rating=4)
    _past_worked(crew, rigger, status=Status.CONFIRMED)
    body = staff_client.get(f"/admin/attendance/profile/{crew.profile.pk}/change/").content.decode()
    assert "1 worked, 1 no-show, rated 4.0/5 (1)" in body and "4/5, Solid" in body


def test_a_40_place_role_is_filled_from_the_board_in_one_click(
    staff_client, rigger, django_capture_on_commit_callbacks
):
    event = _event(name="Koroga Festival")
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=40)
    members = [UserFactory() for _ in range(45)]
    for member in members:
        member.profile.roles.add(rigger)
    away = members[:3]
    for member in away:
        availability_mark(user=member, starts_on=timezone.localdate(event.starts_at))
    UserFactory()  # does not do the role: never picked
    url = f"/admin/attendance/event/{event.pk}/board/?role={rigger.pk}"
    assert "Invite the best 40" in staff_client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, {"do": "fill", "role": rigger.pk})
    assert response.status_code == 302
    invited = EventCrew.objects.filter(event=event)
    assert invited.count() == 40 and all(a.invitation_sent for a in invited)
    assert not invited.filter(user__in=away).exists()
    assert "Invite the best" not in staff_client.get(url).content.decode()  # nothing open


@pytest.mark.parametrize("hour", HOURS)
@pytest.mark.parametrize("events", [1, 25])
def test_open_roles_cost_the_same_queries_for_1_and_25_open_events(
    crew, rigger, events, hour, django_assert_max_num_queries
):
    def on_day(days):
        # 10:00 to 15:00 Nairobi time: an event "on day N" is on that date at any hour the
        # suite runs (one starting at now + N days crossed midnight late in the evening).
        day = timezone.localdate() + timedelta(days=days)
        starts = datetime.combine(day, time(10), tzinfo=NAIROBI)
        return EventFactory(starts_at=starts, ends_at=starts + timedelta(hours=5), call_time=starts)

    with nairobi_at(hour):
        crew.profile.roles.add(rigger)
        for n in range(events):
            event = on_day(3 + n)
            EventRoleRequirement.objects.create(event=event, role=rigger, needed=2)
        availability_mark(user=crew, starts_on=timezone.localdate() + timedelta(days=4))
        booked = EventCrewFactory(event=on_day(6), user=crew, role=rigger)
        crew_confirm(assignment=booked)
        with django_assert_max_num_queries(4):
            found = open_roles_for(crew)
    assert len(found) == (1 if events == 1 else events - 2)


def test_the_board_shows_replacement_requests_and_no_shows_at_a_glance(staff_client, rigger, crew):
    event = _event()
    EventRoleRequirement.objects.create(event=event, role=rigger, needed=2)
    assignment = EventCrewFactory(event=event, user=crew, role=rigger)
    crew_confirm(assignment=assignment)
    crew_ask_replacement(assignment=assignment, reason="Sick")
    page = staff_client.get(f"/admin/attendance/event/{event.pk}/board/").content.decode()
    assert "Asking to be replaced</th>" in page and "1 to decide" in page
    # After the event, a confirmed member who never checked in reads as a no-show.
    past = _event(days=-2)
    gone = EventCrewFactory(event=past, user=UserFactory(), role=rigger)
    EventCrew.objects.filter(pk=gone.pk).update(
        status=Status.CONFIRMED, confirmed_at=timezone.now() - timedelta(days=5)
    )
    page = staff_client.get(
        f"/admin/attendance/event/{past.pk}/board/?role={rigger.pk}"
    ).content.decode()
    assert ">No-show</span>" in page


def test_assigning_to_an_event_that_is_over_says_so_once(staff_client, rigger):
    past = _event(days=-2)
    ticked = [UserFactory().pk, UserFactory().pk]
    page = staff_client.post(
        f"/admin/attendance/event/{past.pk}/board/?role={rigger.pk}",
        {"do": "assign", "role": rigger.pk, "member": ticked},
        follow=True,
    ).content.decode()
    assert page.count("is already over") == 1 and "Nobody was assigned" in page
    assert "Tick at least one member first" not in page
