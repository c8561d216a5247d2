"""Show day (issue 29): call-time messages at their time and once, offering a missing member's
place to standby, the arrivals board's counts, and "what changed" when the call sheet does.

The clock is frozen (time-machine) around a show on Mon 7 Dec 2026: call 16:00 Nairobi,
doors 17:00, end 23:00. CI runs at any hour in UTC; these tests mean the same at all of them.
"""

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from attendance.models import (
    Attendance,
    EmailNotification,
    EventCrew,
    EventRoleRequirement,
    ShowDayNotice,
    SmsMessage,
    Unavailability,
)
from attendance.services.attendance import attendance_check_in, attendance_expect
from attendance.services.crew.arrivals import arrivals_board
from attendance.services.crew.assignment_changes import crew_update
from attendance.services.crew.assignments import CrewError
from attendance.services.crew.showday import (
    show_answer_coming,
    show_day_run,
    show_offer_place,
)
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db
NAIROBI = ZoneInfo("Africa/Nairobi")
DAY = (2026, 12, 7)


def at(hh_mm: str, day=DAY) -> datetime:
    hour, minute = (int(p) for p in hh_mm.split(":"))
    return datetime(*day, hour, minute, tzinfo=NAIROBI)


def _show(crew=3, role="Stagehand", needed=None, **fields):
    """A confirmed show with `crew` confirmed members and a manager who hears of it."""
    with time_machine.travel(at("09:00", (2026, 12, 1)), tick=False):
        manager = UserFactory(is_staff=True, email="manager@example.com")
        event = EventFactory(
            name="Sauti Sol reunion",
            starts_at=at("17:00"),
            ends_at=at("23:00"),
            call_time=at("16:00"),
            **fields,
        )
        event.managers.add(manager)
        stagehand = CrewRoleFactory(name=role)
        EventRoleRequirement.objects.create(
            event=event, role=stagehand, needed=crew if needed is None else needed
        )
        members = []
        for n in range(crew):
            member = UserFactory(username=f"{role.lower()}{n}", profile__phone_number="")
            EventCrewFactory(
                event=event,
                user=member,
                role=stagehand,
                status="confirmed",
                confirmed_at=at("09:00", (2026, 12, 1)),
                invitation_sent=True,
            )
            attendance_expect(event=event, user=member)
            members.append(member)
    return event, members, manager


def run(when: datetime) -> dict:
    """The beat job at `when`, with the clock there too (messages say "today at 16:00")."""
    with time_machine.travel(when, tick=False):
        return show_day_run()


def _sent(kind):
    return EmailNotification.objects.filter(notification_type=kind)


def test_leave_now_goes_once_at_its_time_and_not_before():
    event, _members, _ = _show()
    assert run(at("13:59"))["leave_now"] == 0  # 2 h before 16:00 is 14:00
    assert run(at("14:00"))["leave_now"] == 3
    assert run(at("14:01"))["leave_now"] == 0  # the next minute: sent already
    emails = _sent("show_leave_now")
    assert emails.count() == 3
    body = emails.first().message
    assert "call time is today at 16:00" in body
    assert f"/events/{event.pk}/call-sheet/" in body and "Map:" in body


def test_a_members_own_call_time_decides_their_leave_now():
    _event, members, _ = _show(crew=2)
    early = EventCrew.objects.get(user=members[0])
    with time_machine.travel(at("09:00", (2026, 12, 1))):
        crew_update(assignment=early, call_time=at("12:00"))
    assert run(at("10:00"))["leave_now"] == 1
    assert _sent("show_leave_now").get().user == members[0]


def test_nothing_is_sent_for_cancelled_or_completed_events_or_with_the_message_off():
    _show(status="cancelled")
    _show(role="Rigger", status="completed")
    off, *_ = _show(role="Driver", leave_now_hours=0, late_alert_minutes=0, short_alert_hours="")
    for hh_mm in ("14:00", "16:20", "23:59"):
        assert sum(run(at(hh_mm)).values()) == 0, hh_mm
    assert not ShowDayNotice.objects.exclude(event=off).exists()


def test_a_member_not_checked_in_is_asked_and_the_managers_told_once():
    event, members, manager = _show()
    with time_machine.travel(at("15:50")):
        attendance_check_in(attendance=Attendance.objects.get(user=members[0]))
    assert run(at("16:14"))["late"] == 0
    assert run(at("16:15"))["late"] == 2
    assert run(at("16:16"))["late"] == 0
    asked = _sent("show_are_you_coming")
    assert {e.user for e in asked} == {members[1], members[2]}
    assert f"/events/{event.pk}/coming/" in asked.first().message
    told = _sent("show_late").get()
    assert told.recipient == manager.email
    assert "Not checked in" in told.subject and "Offer the place to standby" in told.message
    crew_id = EventCrew.objects.get(user=members[1]).pk
    assert f"/arrivals/offer/{crew_id}/" in told.message


def test_each_message_goes_by_the_members_channel(at_sms):
    _event, members, _ = _show(crew=1)
    members[0].profile.phone_number = "254712000111"
    members[0].profile.save()
    run(at("14:00"))
    text = SmsMessage.objects.get(notification_type="show_leave_now")
    assert "call sheet" in text.message.lower() and len(text.message) <= 160
    # The text is what reaches them: the email is held back as its fallback.
    assert not _sent("show_leave_now").filter(sent_at__isnull=False).exists()


def test_answers_to_are_you_coming_reach_the_board_and_the_managers(client):
    event, members, _ = _show(crew=2)
    run(at("16:15"))
    with time_machine.travel(at("16:20")):
        first = Attendance.objects.get(user=members[0])
        client.force_login(members[0])
        page = client.get(f"/events/{event.pk}/coming/")
        assert page.status_code == 200 and Attendance.objects.get(pk=first.pk).arrival_answer == ""
        client.post(f"/events/{event.pk}/coming/", {"answer": "on_way"})
        show_answer_coming(attendance=Attendance.objects.get(user=members[1]), answer="cant")
        again = show_answer_coming(
            attendance=Attendance.objects.get(user=members[1]), answer="cant"
        )
        assert not again.changed
        board = arrivals_board(event)
    states = {a.crew_id: a.state for a in board.arrivals}
    assert sorted(states.values()) == ["cant", "on_way"]
    cant_mail = _sent("show_late").filter(subject__startswith="Can't make it")
    assert cant_mail.count() == 1
    # Someone else's event: a 404, not a page.
    client.force_login(UserFactory())
    assert client.get(f"/events/{event.pk}/coming/").status_code == 404


def test_roles_still_short_are_told_at_24_and_3_hours_once_each():
    event, _members, _manager = _show(crew=2, needed=4)
    assert run(at("15:59", (2026, 12, 6)))["role_short"] == 0
    assert run(at("16:00", (2026, 12, 6)))["role_short"] == 1
    assert run(at("16:01", (2026, 12, 6)))["role_short"] == 0
    assert run(at("13:00"))["role_short"] == 1
    assert run(at("13:30"))["role_short"] == 0
    mails = _sent("show_role_short")
    assert mails.count() == 2
    body = mails.first().message
    assert "Stagehand: 2 confirmed of 4 needed" in body
    role = EventRoleRequirement.objects.get(event=event).role_id
    assert f"/admin/attendance/event/{event.pk}/board/?role={role}" in body


def test_a_filled_event_is_checked_once_and_told_nothing():
    _show(crew=2)
    assert run(at("16:00", (2026, 12, 6)))["role_short"] == 0
    assert ShowDayNotice.objects.get(kind="role_short").detail == "nothing short"
    assert not _sent("show_role_short").exists()


def test_an_event_made_late_sends_only_the_nearest_short_alert():
    _show(crew=1, needed=3)
    assert run(at("14:00"))["role_short"] == 1  # both 24 h and 3 h are past
    assert _sent("show_role_short").count() == 1
    assert ShowDayNotice.objects.filter(kind="role_short").count() == 2


def test_a_forgotten_check_out_is_asked_an_hour_after_the_end():
    event, members, _ = _show(crew=2)
    with time_machine.travel(at("15:55")):
        for member in members:
            attendance_check_in(attendance=Attendance.objects.get(user=member))
    assert run(at("23:59"))["check_out"] == 0
    assert run(at("00:00", (2026, 12, 8)))["check_out"] == 2
    assert run(at("00:05", (2026, 12, 8)))["check_out"] == 0
    assert f"/events/{event.pk}/" in _sent("show_check_out").first().message


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_workers_at_once_send_each_message_once():
    """Eight threads, each its own PostgreSQL connection, run the beat job at the same
    minute: every member is asked once, the managers told once."""
    from django.db import connections

    _show(crew=30)
    results, errors = [], []
    barrier = threading.Barrier(8)

    def work():
        try:
            barrier.wait()
            results.append(show_day_run())
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(8)]
    with time_machine.travel(at("16:15"), tick=False):  # one clock for all eight
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert sum(r["late"] for r in results) == 30
    assert _sent("show_are_you_coming").count() == 30
    assert _sent("show_late").count() == 1
    assert ShowDayNotice.objects.filter(kind="late").count() == 30


def test_offering_the_place_invites_the_next_standby_free_that_day():
    event, members, manager = _show(crew=2)
    role = EventRoleRequirement.objects.get(event=event).role
    with time_machine.travel(at("09:00", (2026, 12, 1))):
        away = UserFactory(username="away")
        free = UserFactory(username="free")
        for n, member in enumerate((away, free)):
            EventCrewFactory(
                event=event,
                user=member,
                role=role,
                status="standby",
                standby_since=at(f"09:0{n}", (2026, 12, 1)),
            )
        day = at("17:00").date()
        Unavailability.objects.create(user=away, starts_on=day, ends_on=day)
    missing = EventCrew.objects.get(user=members[1])
    with time_machine.travel(at("16:20")):
        invited = show_offer_place(assignment=missing, by=manager)
    assert [a.user for a in invited] == [free]
    missing.refresh_from_db()
    assert missing.status == "declined" and "Not at the venue" in missing.decline_reason
    assert EventCrew.objects.get(user=away).status == "standby"
    # The capacity rule holds: one place freed, one invited.
    assert EventCrew.objects.filter(event=event, status__in=["confirmed", "invited"]).count() == 2
    assert EmailNotification.objects.filter(user=members[1], notification_type="crew_off").exists()
    with time_machine.travel(at("16:21")), pytest.raises(CrewError, match="not confirmed"):
        show_offer_place(assignment=missing, by=manager)


def test_the_place_cannot_be_offered_once_the_show_has_started():
    _event, members, manager = _show(crew=1)
    with time_machine.travel(at("17:05")), pytest.raises(CrewError, match="already started"):
        show_offer_place(assignment=EventCrew.objects.get(user=members[0]), by=manager)


def _independent_counts(event, now):
    """What the board should say, worked out row by row without its code."""
    counts = {}
    for assignment in EventCrew.objects.filter(event=event):
        row = Attendance.objects.filter(event=event, user=assignment.user).first()
        if assignment.status == "invited" and assignment.invitation_sent:
            state = "standby"
        elif assignment.status != "confirmed":
            continue
        elif row and row.check_out_at:
            state = "left"
        elif row and row.check_in_at:
            state = "on_site"
        elif row and row.arrival_answer == "cant":
            state = "cant"
        elif now > min(event.call_time + timedelta(hours=4), event.ends_at):
            state = "no_show"
        elif row and row.arrival_answer == "on_way":
            state = "on_way"
        elif now > event.call_time + timedelta(minutes=15):
            state = "late"
        else:
            state = "expected"
        counts[state] = counts.get(state, 0) + 1
    return counts


@pytest.mark.parametrize("now", ["15:30", "16:40", "20:30"])
def test_the_boards_counts_equal_an_independent_count(now):
    event, members, _ = _show(crew=12)
    with time_machine.travel(at("15:50")):
        for member in members[:5]:
            attendance_check_in(attendance=Attendance.objects.get(user=member))
    with time_machine.travel(at("16:30")):
        show_answer_coming(attendance=Attendance.objects.get(user=members[6]), answer="on_way")
        show_answer_coming(attendance=Attendance.objects.get(user=members[7]), answer="cant")
    with time_machine.travel(at("09:00", (2026, 12, 1))):
        # A place given to standby: one more invited, waiting for an answer.
        from attendance.services.crew.assignments import crew_assign, crew_invite

        role = EventRoleRequirement.objects.get(event=event).role
        crew_invite(assignment=crew_assign(event=event, user=UserFactory(), role=role))
        crew_assign(event=event, user=UserFactory(), role=role, standby=True)  # not counted
    board = arrivals_board(event, now=at(now))
    expected = _independent_counts(event, at(now))
    assert {k: v for k, v in board.counts.items() if v} == expected
    assert expected["standby"] == 1
    assert sum(r["crew"] for r in board.roles) == 12
    assert sum(r["here"] for r in board.roles) == 5


@pytest.mark.parametrize("crew", [10, 500])
def test_the_board_costs_the_same_queries_for_10_and_500_crew(staff_client, crew):
    event, *_ = _show(crew=crew)
    with CaptureQueriesContext(connection) as queries:
        data = staff_client.get(f"/admin/attendance/event/{event.pk}/arrivals.json").json()
    assert len(data["rows"]) == crew
    # The session and its user, the second factor, the event, the crew, their attendance.
    assert len(queries) <= 6, [q["sql"][:80] for q in queries]


# --- The call sheet and what changed ------------------------------------------------------


def _sequences(event):
    return dict(EventCrew.objects.filter(event=event).values_list("user_id", "calendar_sequence"))


def _event_page_post(staff_client, event, **extra):
    from tests.support.admin_forms import event_form

    with time_machine.travel(at("09:00", (2026, 12, 5))):
        return staff_client.post(
            f"/admin/attendance/event/{event.pk}/change/", event_form(event, **extra)
        )


def test_a_run_of_show_change_sends_one_what_changed_and_moves_the_calendar_once(staff_client):
    from attendance.models import RunOfShowBlock

    event, _members, _ = _show(crew=2)
    soundcheck = RunOfShowBlock.objects.create(
        event=event, name="Soundcheck", starts_at=at("14:00"), ends_at=at("15:00")
    )
    before = _sequences(event)
    response = _event_page_post(
        staff_client,
        event,
        **{
            "run_of_show-TOTAL_FORMS": "1",
            "run_of_show-INITIAL_FORMS": "1",
            "run_of_show-0-id": str(soundcheck.pk),
            "run_of_show-0-event": str(event.pk),
            "run_of_show-0-name": "Soundcheck",
            "run_of_show-0-starts_at_0": "2026-12-07",
            "run_of_show-0-starts_at_1": "15:00:00",
            "run_of_show-0-ends_at_0": "2026-12-07",
            "run_of_show-0-ends_at_1": "15:45:00",
        },
    )
    assert response.status_code == 302
    told = _sent("event_updated")
    assert told.count() == 2  # one per member
    assert "Soundcheck: 14:00-15:00 -> 15:00-15:45" in told.first().message
    after = _sequences(event)
    assert all(after[user] == before[user] + 1 for user in before)


def test_a_call_time_and_a_block_changed_together_are_one_message(staff_client):
    from attendance.models import RunOfShowBlock

    event, members, _ = _show(crew=1)
    doors = RunOfShowBlock.objects.create(event=event, name="Doors", starts_at=at("17:00"))
    before = _sequences(event)
    _event_page_post(
        staff_client,
        event,
        call_time_0="2026-12-07",
        call_time_1="15:00:00",
        **{
            "run_of_show-TOTAL_FORMS": "1",
            "run_of_show-INITIAL_FORMS": "1",
            "run_of_show-0-id": str(doors.pk),
            "run_of_show-0-event": str(event.pk),
            "run_of_show-0-name": "Doors",
            "run_of_show-0-starts_at_0": "2026-12-07",
            "run_of_show-0-starts_at_1": "17:30:00",
        },
    )
    message = _sent("event_updated").get().message
    assert "Call time" in message and "Doors: 17:00 -> 17:30" in message
    assert _sequences(event)[members[0].pk] == before[members[0].pk] + 1


def test_a_pickup_change_tells_that_member_what_changed_by_text(at_sms):
    _event, members, _ = _show(crew=2)
    members[0].profile.phone_number = "254712000222"
    members[0].profile.save()
    assignment = EventCrew.objects.get(user=members[0])
    with time_machine.travel(at("09:00", (2026, 12, 5))):
        crew_update(assignment=assignment, pickup_point="Sarit Centre", pickup_at=at("13:30"))
    text = SmsMessage.objects.get(notification_type="event_updated")
    assert text.user == members[0] and "pickup 13:30 at Sarit Centre" in text.message
    assignment.refresh_from_db()
    assert assignment.calendar_sequence == 1
    assert not SmsMessage.objects.filter(user=members[1]).exists()


def test_the_call_sheet_shows_the_members_day_and_is_theirs_only(client):
    from attendance.models import RunOfShowBlock

    event, members, manager = _show(crew=1)
    manager.profile.phone_number = "254700111222"
    manager.profile.save()
    requirement = EventRoleRequirement.objects.get(event=event)
    requirement.kit = "IEMs, black clothing"
    requirement.save()
    RunOfShowBlock.objects.create(event=event, name="Load-in", starts_at=at("12:00"))
    assignment = EventCrew.objects.get(user=members[0])
    assignment.pickup_point, assignment.pickup_at = "Sarit Centre", at("13:30")
    assignment.save()
    client.force_login(members[0])
    page = client.get(f"/events/{event.pk}/call-sheet/").content.decode()
    for text in (
        "16:00",
        "IEMs, black clothing",
        "Load-in",
        "Sarit Centre",
        "13:30",
        "+254 700 111222",
    ):
        assert text in page, text
    client.force_login(UserFactory())
    assert client.get(f"/events/{event.pk}/call-sheet/").status_code == 404


def test_the_crew_chiefs_call_sheet_prints_and_downloads_as_a_pdf(staff_client):
    event, members, _ = _show(crew=4)
    page = staff_client.get(f"/admin/attendance/event/{event.pk}/call-sheet/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Crew (4)" in html and members[0].get_full_name() in html
    pdf = staff_client.get(f"/admin/attendance/event/{event.pk}/call-sheet/?format=pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 1000


def test_the_wall_display_link_works_until_it_is_turned_off(staff_client, client):
    event, *_ = _show(crew=3)
    board = f"/admin/attendance/event/{event.pk}/arrivals/"
    staff_client.post(f"{board}wall/", {"do": "start"})
    event.refresh_from_db()
    wall = f"/wall/{event.wall_token}/"
    assert client.get(wall).status_code == 200  # nobody logged in
    data = client.get(f"/wall/{event.wall_token}.json").json()
    assert data["counts"]["expected"] + data["counts"]["late"] + data["counts"]["no_show"] == 3
    assert "phone" not in str(data)
    staff_client.post(f"{board}wall/", {"do": "stop"})
    assert client.get(wall).status_code == 404
    assert client.get("/wall/guess/").status_code == 404
