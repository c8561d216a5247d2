"""The crew workflow: answers, conflicts, reminders, briefings, completion, change notices."""

import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from attendance.models import Attendance, EmailNotification, EventCrew
from attendance.services.attendance import attendance_correct
from attendance.services.crew.assignments import (
    CrewError,
    crew_assign,
    crew_confirm,
    crew_decline,
    crew_invite,
)
from attendance.services.crew.events import event_save
from attendance.services.crew.followup import (
    crew_complete_event,
    crew_send_briefing,
    crew_send_reminders,
)
from attendance.services.crew.staffing import crew_conflicts, event_staffing
from attendance.tasks import crew_send_reminders_task
from tests.support.factories import CrewRoleFactory, EventCrewFactory, EventFactory, UserFactory

Status = EventCrew.Status
Type = EmailNotification.Type


def _event_at(start: datetime, hours: int = 5, **kwargs):
    return EventFactory(
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        call_time=start - timedelta(hours=2),
        **kwargs,
    )


def _local(days: int, hour: int) -> datetime:
    day = timezone.localdate() + timedelta(days=days)
    return datetime.combine(
        day, datetime.min.time(), tzinfo=timezone.get_current_timezone()
    ).replace(hour=hour)


def test_confirming_puts_the_member_on_the_attendance_list_and_declining_takes_them_off(crew):
    assignment = EventCrewFactory(user=crew, call_time=None)
    crew_confirm(assignment=assignment)
    assert assignment.status == Status.CONFIRMED
    assert Attendance.objects.filter(user=crew, event=assignment.event).exists()
    crew_confirm(assignment=assignment)  # a second tap changes nothing
    crew_decline(assignment=assignment, reason="Family emergency")
    assert assignment.status == Status.DECLINED
    assert assignment.confirmed_at is None
    assert not Attendance.objects.filter(user=crew, event=assignment.event).exists()


def test_a_decline_tells_the_managers_with_the_reason_and_the_gap_once(crew, other_crew):
    from attendance.models import EventRoleRequirement

    manager = UserFactory(first_name="Grace", email="grace@example.com")
    no_email = UserFactory(email="")
    event = EventFactory(name="Koroga Festival")
    event.managers.add(manager, no_email)
    foh = CrewRoleFactory(name="FOH engineer")
    EventRoleRequirement.objects.create(event=event, role=foh, needed=2)
    crew_confirm(assignment=EventCrewFactory(event=event, user=other_crew, role=foh))
    assignment = EventCrewFactory(event=event, user=crew, role=foh)
    crew_confirm(assignment=assignment)

    crew_decline(assignment=assignment, reason="Family   emergency")
    alert = EmailNotification.objects.get(notification_type=Type.CREW_DECLINED)
    assert alert.recipient == "grace@example.com"
    assert alert.event == event
    assert alert.crew_assignment is None  # the member's portal lists their assignment's emails
    name = crew.get_full_name() or crew.username
    assert alert.subject.startswith(f"{name} declined FOH engineer for Koroga Festival")
    assert "Reason: Family emergency" in alert.message
    assert "FOH engineer: 1 confirmed of 2 needed." in alert.message
    assert f"/admin/attendance/event/{event.pk}/change/" in alert.message
    assert "Find a replacement" in alert.html_message

    # A second decline (a changed reason) is no new gap: no second alert.
    crew_decline(assignment=assignment, reason="Still away")
    assert EmailNotification.objects.filter(notification_type=Type.CREW_DECLINED).count() == 1


def test_a_decline_on_an_event_without_managers_emails_no_one(crew):
    crew_decline(assignment=EventCrewFactory(user=crew))
    assert not EmailNotification.objects.filter(notification_type=Type.CREW_DECLINED).exists()


def test_overlapping_confirmations_are_refused_with_a_clear_message(crew):
    start = timezone.now() + timedelta(days=2)
    first = EventCrewFactory(user=crew, event=_event_at(start, name="Koroga Festival"))
    overlapping = EventCrewFactory(user=crew, event=_event_at(start + timedelta(hours=4)))
    # Its call time (two hours before start) falls inside the first event: also a clash.
    call_clash = EventCrewFactory(user=crew, event=_event_at(start + timedelta(hours=6)))
    later = EventCrewFactory(user=crew, event=_event_at(start + timedelta(hours=12)))

    crew_confirm(assignment=first)
    for clashing in (overlapping, call_clash):
        with pytest.raises(CrewError, match="already confirmed for Koroga Festival"):
            crew_confirm(assignment=clashing)
        clashing.refresh_from_db()
        assert clashing.status == Status.INVITED
    crew_confirm(assignment=later)

    crew_decline(assignment=first)
    crew_confirm(assignment=overlapping)
    assert list(crew_conflicts(user=crew, event=first.event)) == [overlapping]


def test_a_cancelled_event_does_not_block_another(crew):
    start = timezone.now() + timedelta(days=2)
    cancelled = EventCrewFactory(user=crew, event=_event_at(start))
    crew_confirm(assignment=cancelled)
    cancelled.event.status = "cancelled"
    event_save(event=cancelled.event)
    crew_confirm(assignment=EventCrewFactory(user=crew, event=_event_at(start)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_confirmations_at_the_same_moment_let_one_through():
    member = UserFactory()
    start = timezone.now() + timedelta(days=2)
    pairs = [
        (
            EventCrewFactory(user=member, event=_event_at(start + timedelta(days=i))),
            EventCrewFactory(user=member, event=_event_at(start + timedelta(days=i, hours=1))),
        )
        for i in range(10)
    ]
    barrier = threading.Barrier(2)
    errors = []

    def confirm(assignment):
        try:
            barrier.wait()
            crew_confirm(assignment=assignment)
        except CrewError:
            pass
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    for a, b in pairs:
        threads = [threading.Thread(target=confirm, args=(x,)) for x in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        barrier.reset()
    assert errors == []
    for a, b in pairs:
        statuses = sorted(
            EventCrew.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)
        )
        assert statuses == [Status.CONFIRMED, Status.INVITED]


def test_answers_are_refused_once_the_event_has_started(crew):
    assignment = EventCrewFactory(user=crew)
    event = assignment.event
    with pytest.raises(CrewError, match="already started"):
        crew_confirm(assignment=assignment, now=event.starts_at + timedelta(minutes=1))
    with pytest.raises(CrewError, match="already started"):
        crew_decline(assignment=assignment, now=event.starts_at)


def test_assigning_twice_or_to_a_finished_event_is_refused(crew, staff):
    role = CrewRoleFactory(name="Driver")
    event = EventFactory()
    crew_assign(event=event, user=crew, role=role, by=staff)
    with pytest.raises(CrewError, match="already on the crew"):
        crew_assign(event=event, user=crew, role=role)
    past = _event_at(timezone.now() - timedelta(days=2))
    with pytest.raises(CrewError, match="already over"):
        crew_assign(event=past, user=crew, role=role)


def test_the_reminder_job_emails_confirmed_crew_of_tomorrows_events_once(
    crew, other_crew, settings
):
    settings.CREW_REMINDER_HOUR = 9
    tomorrow = _event_at(_local(1, 18), name="Tomorrow's show")
    in_two_days = _event_at(_local(2, 18))
    confirmed = EventCrewFactory(user=crew, event=tomorrow)
    crew_confirm(assignment=confirmed)
    EventCrewFactory(user=other_crew, event=tomorrow)  # invited, no answer: no reminder
    crew_confirm(assignment=EventCrewFactory(user=UserFactory(), event=in_two_days))

    with time_machine.travel(_local(0, 7), tick=False):  # before the reminder hour
        assert crew_send_reminders_task.apply().get() == 0
    with time_machine.travel(_local(0, 10), tick=False):
        assert crew_send_reminders_task.apply().get() == 1
        assert crew_send_reminders_task.apply().get() == 0
    reminders = EmailNotification.objects.filter(notification_type=Type.CREW_REMINDER)
    assert [r.crew_assignment_id for r in reminders] == [confirmed.pk]
    assert "Tomorrow's show" in reminders[0].subject
    confirmed.refresh_from_db()
    assert confirmed.reminder_sent and confirmed.reminder_sent_at


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_overlapping_reminder_runs_send_one_email_per_assignment(settings):
    settings.CREW_REMINDER_HOUR = 0
    event = _event_at(_local(1, 18))
    assignments = [EventCrewFactory(event=event) for _ in range(30)]
    for assignment in assignments:
        crew_confirm(assignment=assignment)
    now = _local(0, 12)
    results, barrier = [], threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            results.append(crew_send_reminders(now=now))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 30
    per_assignment = EmailNotification.objects.filter(notification_type=Type.CREW_REMINDER)
    assert sorted(per_assignment.values_list("crew_assignment_id", flat=True)) == sorted(
        a.pk for a in assignments
    )


def test_the_setup_briefing_sends_the_roster_to_confirmed_crew_only(crew, other_crew):
    event = EventFactory(special_instructions="Load-in via gate C")
    foh = EventCrewFactory(event=event, user=crew, role=CrewRoleFactory(name="FOH engineer"))
    crew_confirm(assignment=foh)
    EventCrewFactory(event=event, user=other_crew)  # invited only
    with pytest.raises(CrewError):
        crew_send_briefing(event=EventFactory())
    assert crew_send_briefing(event=event) == 1
    [briefing] = EmailNotification.objects.filter(notification_type=Type.SETUP_BRIEFING)
    assert briefing.recipient == crew.email
    for body in (briefing.message, briefing.html_message):
        assert crew.get_full_name() in body
        assert "FOH engineer" in body
        assert "+254 712 345678" in body
        assert "Load-in via gate C" in body
        assert other_crew.get_full_name() not in body


def test_event_changes_reach_invited_and_confirmed_crew_but_not_those_who_declined(
    crew, other_crew
):
    event = EventFactory(venue="KICC")
    confirmed = EventCrewFactory(event=event, user=crew)
    crew_confirm(assignment=confirmed)
    invited = EventCrewFactory(event=event, user=other_crew)
    crew_invite(assignment=invited)
    not_yet_invited = EventCrewFactory(event=event)
    declined = EventCrewFactory(event=event)
    crew_decline(assignment=declined)

    event.venue = "Carnivore Grounds"
    event.call_time -= timedelta(minutes=30)
    event_save(event=event)
    updates = EmailNotification.objects.filter(notification_type=Type.EVENT_UPDATED)
    assert {u.crew_assignment_id for u in updates} == {confirmed.pk, invited.pk}
    assert not_yet_invited.pk not in {u.crew_assignment_id for u in updates}
    body = updates.get(crew_assignment=confirmed).message
    assert "KICC -> Carnivore Grounds" in body
    assert "Call time:" in body


def test_marking_complete_after_the_event_keeps_those_who_never_came(crew, other_crew, staff):
    event = EventFactory()
    came, stayed_home = (EventCrewFactory(event=event, user=u) for u in (crew, other_crew))
    for assignment in (came, stayed_home):
        crew_confirm(assignment=assignment)
    with pytest.raises(CrewError, match="not ended yet"):
        crew_complete_event(event=event)
    attendance = Attendance.objects.get(event=event, user=crew)
    attendance_correct(
        attendance=attendance,
        by=staff,
        check_in_at=event.call_time,
        check_out_at=event.ends_at,
        reason="Signed the paper sheet",
    )
    result = crew_complete_event(event=event, now=event.ends_at + timedelta(hours=1))
    assert (result.completed, result.never_checked_in, result.checked_out_at_end) == (1, 1, 0)
    came.refresh_from_db()
    stayed_home.refresh_from_db()
    event.refresh_from_db()
    assert came.status == Status.COMPLETED and came.completed_at
    assert stayed_home.status == Status.CONFIRMED
    assert event.status == "completed"


def test_staffing_counts_filled_and_needed_per_role(crew, other_crew):
    from attendance.models import EventRoleRequirement

    event = EventFactory()
    foh, hands = CrewRoleFactory(name="FOH engineer"), CrewRoleFactory(name="Stagehand")
    EventRoleRequirement.objects.create(event=event, role=foh, needed=1)
    EventRoleRequirement.objects.create(event=event, role=hands, needed=4)
    crew_confirm(assignment=EventCrewFactory(event=event, user=crew, role=foh))
    EventCrewFactory(event=event, user=other_crew, role=hands)
    EventCrewFactory(event=event, role=CrewRoleFactory(name="DJ"))
    staffing = {row.role: row for row in event_staffing(event)}
    assert (staffing["FOH engineer"].confirmed, staffing["FOH engineer"].needed) == (1, 1)
    assert staffing["FOH engineer"].is_filled
    # Assigned, no invitation sent yet: "not invited yet", never counted as invited.
    stagehands = staffing["Stagehand"]
    assert (stagehands.confirmed, stagehands.invited, stagehands.not_invited) == (0, 0, 1)
    assert not stagehands.is_filled
    assert (staffing["DJ"].needed, staffing["DJ"].not_invited) == (0, 1)


def test_changing_a_confirmed_members_call_time_tells_them_and_moves_their_attendance(crew, staff):
    from attendance.models import AttendanceCorrection
    from attendance.services.crew.assignment_changes import crew_update

    assignment = EventCrewFactory(user=crew)
    crew_confirm(assignment=assignment)
    earlier = assignment.event.call_time - timedelta(hours=1)
    changes = crew_update(
        assignment=assignment, call_time=earlier, notes="Bring the DI boxes", by=staff
    )
    assert [c["label"] for c in changes] == ["Your call time", "Instructions for you"]
    attendance = Attendance.objects.get(user=crew, event=assignment.event)
    assert attendance.call_time == earlier
    assert AttendanceCorrection.objects.filter(attendance=attendance, changed_by=staff).exists()
    [email] = EmailNotification.objects.filter(notification_type=Type.EVENT_UPDATED)
    assert "Bring the DI boxes" in email.message

    crew_update(assignment=assignment, call_time=False, by=staff)  # back to the event's
    attendance.refresh_from_db()
    assert attendance.call_time is None
    assert crew_update(assignment=assignment, call_time=False, notes="Bring the DI boxes") == []
