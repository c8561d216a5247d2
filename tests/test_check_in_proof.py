"""Check-in that proves presence (issue 29): the phone's location inside the venue's radius
proves it; a refused, weak or distant location is recorded and flagged, never refused; an
event can turn the plain button off, and hold unproven check-ins for a manager before pay."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import Attendance, TimesheetLine
from attendance.services.attendance import (
    AttendanceError,
    attendance_check_in_from_portal,
    attendance_check_out,
    attendance_correct,
)
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.timesheets import (
    PayError,
    timesheet_approve,
    timesheet_recalculate,
)
from attendance.services.pay.unproven import timesheet_accept_unproven
from attendance.venue_location import (
    Position,
    coordinates_from_map_link,
    distance_m,
    judge_position,
    parse_coordinates,
)
from tests.support.clock import nairobi_at
from tests.support.factories import AttendanceFactory, EventCrewFactory, EventFactory, UserFactory
from tests.support.pay import role_with

pytestmark = pytest.mark.django_db

# KICC, Nairobi, and points around it.
KICC = (Decimal("-1.288750"), Decimal("36.823290"))
AT_THE_DOOR = {"latitude": "-1.28890", "longitude": "36.82340", "accuracy": "20"}  # ~20 m
WESTLANDS = {"latitude": "-1.26800", "longitude": "36.81100", "accuracy": "15"}  # ~2.7 km


def _today(user, **event_fields):
    now = timezone.now()
    event = EventFactory(
        starts_at=now + timedelta(hours=1),
        call_time=now + timedelta(minutes=30),
        venue_latitude=KICC[0],
        venue_longitude=KICC[1],
        **event_fields,
    )
    return AttendanceFactory(event=event, user=user)


def test_reading_positions_from_what_managers_paste():
    assert parse_coordinates(" -1.2921 , 36.8219 ") == (Decimal("-1.292100"), Decimal("36.821900"))
    assert parse_coordinates("Nairobi") is None
    assert parse_coordinates("-95.0, 36.8") is None  # no such latitude
    google = "https://www.google.com/maps/place/KICC/@-1.2887499,36.8232901,17z/data=!3d-1.28875!4d36.82329"
    assert coordinates_from_map_link(google) == (Decimal("-1.288750"), Decimal("36.823290"))
    assert coordinates_from_map_link("https://maps.google.com/?q=-1.2887,36.8233") == (
        Decimal("-1.288700"),
        Decimal("36.823300"),
    )
    assert coordinates_from_map_link("https://www.google.com/maps/search/?api=1&query=KICC") is None


def test_distance_is_right_to_a_few_metres():
    # One thousandth of a degree of latitude is 111 m everywhere.
    assert round(distance_m(-1.0, 36.8, -1.001, 36.8)) == 111
    # KICC to Westlands, measured on a map: about 2.7 km.
    assert 2500 < distance_m(-1.28875, 36.82329, -1.268, 36.811) < 2900


@pytest.mark.parametrize(
    ("form", "at_venue", "flag"),
    [
        (AT_THE_DOOR, True, ""),
        (WESTLANDS, False, "outside"),
        ({"location_error": "denied"}, False, "no_fix"),
        ({"location_error": "timeout"}, False, "no_fix"),
        # A fix 3 km wide, its centre 2.7 km away: says nothing about where they are.
        ({**WESTLANDS, "accuracy": "3000"}, False, "weak_fix"),
        # Just outside the radius, but the fix is 50 m wide: given the benefit of the doubt.
        ({"latitude": "-1.29150", "longitude": "36.82329", "accuracy": "50"}, True, ""),  # 306 m
        ({"latitude": "nonsense", "longitude": "36.8"}, False, "plain"),
        ({}, False, "plain"),  # no JavaScript: the form sent no position at all
    ],
)
def test_a_position_is_judged_against_the_venue_and_its_radius(form, at_venue, flag):
    judged = judge_position(Position.from_form(form), venue=KICC, radius_m=300)
    assert (judged.at_venue, judged.flag) == (at_venue, flag)


@pytest.mark.parametrize(
    ("form", "method", "flag", "proof"),
    [
        (AT_THE_DOOR, "gps", "", "Location, 21 m from the venue"),
        (WESTLANDS, "self", "outside", "Button, 2.7 km from the venue (not proven)"),
        (
            {"location_error": "denied"},
            "self",
            "no_fix",
            "Button, location refused or unavailable (not proven)",
        ),
    ],
)
def test_the_portal_check_in_records_how_it_was_proven_and_never_refuses(
    client, crew, form, method, flag, proof
):
    with nairobi_at("18:00"):
        attendance = _today(crew)
        client.force_login(crew)
        page = client.post(f"/events/{attendance.event_id}/check-in/", form, follow=True)
        assert "Checked in at" in page.content.decode()
        attendance.refresh_from_db()
        assert attendance.check_in_at is not None
        assert (attendance.check_in_method, attendance.check_in_flag) == (method, flag)
        assert attendance.check_in_proof == proof
        assert attendance.check_in_proven is (flag == "")
        # The position itself is not kept anywhere on the record.
        assert "-1.2889" not in str(Attendance.objects.filter(pk=attendance.pk).values().get())


def test_the_card_asks_for_the_location_only_where_the_venue_has_one(client, crew):
    with nairobi_at("18:00"):
        located = _today(crew)
        plain = AttendanceFactory(
            event=EventFactory(
                starts_at=located.event.starts_at, call_time=located.event.call_time
            ),
            user=crew,
        )
        client.force_login(crew)
        html = client.get("/").content.decode()
    located_card = html.split(f'id="event-{located.event_id}"')[1].split("</article>")[0]
    plain_card = html.split(f'id="event-{plain.event_id}"')[1].split("</article>")[0]
    assert "data-locate" in located_card and 'name="latitude"' in located_card
    assert "data-locate" not in plain_card and "Check in</button>" in plain_card


def test_without_the_plain_button_and_a_venue_position_crew_are_told_to_scan(client, crew):
    with nairobi_at("18:00"):
        attendance = _today(crew, plain_check_in=False)
        attendance.event.venue_latitude = attendance.event.venue_longitude = None
        attendance.event.save()
        client.force_login(crew)
        home = client.get("/").content.decode()
        assert "scanning the venue's QR code" in home
        assert f"/events/{attendance.event_id}/check-in/" not in home
        with pytest.raises(AttendanceError, match="QR code"):
            attendance_check_in_from_portal(attendance=attendance, position=None)
        # With the venue's position the button asks for the location, and a refusal is
        # still a check-in (flagged): nobody really there is turned away.
        attendance.event.venue_latitude, attendance.event.venue_longitude = KICC
        attendance.event.save()
        attendance.refresh_from_db()
        done = attendance_check_in_from_portal(
            attendance=attendance, position=Position(error="denied")
        )
        assert done.check_in_at is not None and done.check_in_flag == "no_fix"


def test_check_out_is_judged_the_same_way(crew):
    with nairobi_at("18:00"):
        attendance = _today(crew)
        attendance_check_in_from_portal(
            attendance=attendance, position=Position.from_form(AT_THE_DOOR)
        )
    with nairobi_at("23:59"):
        attendance.refresh_from_db()
        done = attendance_check_out(attendance=attendance, position=Position.from_form(WESTLANDS))
    assert (done.check_out_method, done.check_out_flag) == ("self", "outside")
    assert done.check_in_proven  # the check-in's proof is its own


def test_staff_recording_the_time_replace_the_members_flag(crew):
    manager = UserFactory(is_staff=True)
    with nairobi_at("18:00"):
        attendance = _today(crew)
        attendance_check_in_from_portal(attendance=attendance, position=Position(error="denied"))
        attendance.refresh_from_db()
        fixed = attendance_correct(
            attendance=attendance,
            by=manager,
            reason="Seen at the door",
            check_in_at=attendance.check_in_at - timedelta(minutes=5),
        )
    assert (fixed.check_in_method, fixed.check_in_flag) == ("admin", "")
    assert fixed.check_in_proven and fixed.check_in_proof == "Recorded by staff"


def _held_event_with(members_and_proof):
    """A finished event that holds unproven check-ins; each member checked in as given."""
    starts = timezone.now() - timedelta(hours=12)
    event = EventFactory(
        starts_at=starts,
        ends_at=starts + timedelta(hours=8),
        call_time=starts - timedelta(hours=1),
        hold_unproven=True,
    )
    role = role_with("Stagehand", day_rate=Decimal("1500"), hourly_rate=None)
    for member, method, flag in members_and_proof:
        EventCrewFactory(
            event=event, user=member, role=role, status="confirmed", confirmed_at=starts
        )
        AttendanceFactory(
            event=event,
            user=member,
            status="present",
            check_in_at=event.call_time,
            check_out_at=event.ends_at,
            hours_worked=Decimal("9"),
            check_in_method=method,
            check_in_flag=flag,
        )
    return event


def test_an_event_that_holds_unproven_check_ins_holds_their_lines_until_accepted():
    manager = UserFactory(is_staff=True)
    proven, unproven = UserFactory(username="proven"), UserFactory(username="unproven")
    event = _held_event_with([(proven, "qr", ""), (unproven, "self", "outside")])
    crew_complete_event(event=event, by=manager)
    lines = {line.user.username: line for line in TimesheetLine.objects.select_related("user")}
    assert not lines["proven"].held and lines["proven"].proof == "Venue QR"
    assert lines["unproven"].held and "not proven" in lines["unproven"].proof

    approved, left = timesheet_approve(lines=TimesheetLine.objects.all(), by=manager)
    assert (approved, left) == (1, 1)
    with pytest.raises(PayError, match="Say why"):
        timesheet_accept_unproven(lines=TimesheetLine.objects.all(), by=manager, reason=" ")
    accepted = timesheet_accept_unproven(
        lines=TimesheetLine.objects.all(), by=manager, reason="Seen on site by the crew chief"
    )
    assert accepted == 1
    line = TimesheetLine.objects.get(user=unproven)
    assert not line.held
    assert line.changes.last().kind == "accepted"
    assert timesheet_approve(lines=TimesheetLine.objects.all(), by=manager) == (1, 1)


def test_a_held_line_is_released_when_staff_record_the_check_in():
    manager = UserFactory(is_staff=True)
    member = UserFactory()
    event = _held_event_with([(member, "self", "no_fix")])
    crew_complete_event(event=event, by=manager)
    line = TimesheetLine.objects.get()
    assert line.held
    attendance = Attendance.objects.get(user=member)
    attendance_correct(
        attendance=attendance,
        by=manager,
        reason="Signed the paper list",
        check_in_at=attendance.check_in_at + timedelta(minutes=1),
    )
    timesheet_recalculate(line=line, by=manager)
    line.refresh_from_db()
    assert not line.held and line.proof == "Recorded by staff"
    assert line.changes.last().changes["held"] == ["True", "False"]


def test_events_that_do_not_hold_pay_as_before():
    manager = UserFactory(is_staff=True)
    event = _held_event_with([(UserFactory(), "self", "plain")])
    event.hold_unproven = False
    event.save()
    crew_complete_event(event=event, by=manager)
    line = TimesheetLine.objects.get()
    assert not line.held and line.proof == "Button (not proven)"


def test_managers_set_the_venue_position_by_typing_it_or_from_the_map_link(staff_client):
    from tests.support.admin_forms import event_form

    event = EventFactory()
    url = f"/admin/attendance/event/{event.pk}/change/"
    typed = staff_client.post(url, event_form(event, position="-1.2887, 36.8233"))
    assert typed.status_code == 302
    event.refresh_from_db()
    assert event.venue_position == (Decimal("-1.288700"), Decimal("36.823300"))

    page = staff_client.post(url, event_form(event, position="KICC")).content.decode()
    assert "Not a position" in page

    link = "https://www.google.com/maps/@-1.3,36.8,15z"
    from_link = staff_client.post(url, event_form(event, venue_map_url=link, position=""))
    assert from_link.status_code == 302
    event.refresh_from_db()
    assert event.venue_position == (Decimal("-1.300000"), Decimal("36.800000"))

    far = staff_client.post(url, event_form(event, venue_radius_m="20")).content.decode()
    assert "between 50 and 5,000 metres" in far
    page = staff_client.get(url).content.decode()
    assert 'value="-1.300000, 36.800000"' in page


def test_managers_see_the_proof_on_the_event_page_and_the_attendance_list(staff_client, crew):
    with nairobi_at("18:00"):
        attendance = _today(crew)
        attendance_check_in_from_portal(attendance=attendance, position=Position(error="denied"))
        event_page = staff_client.get(f"/admin/attendance/event/{attendance.event_id}/change/")
        listing = staff_client.get("/admin/attendance/attendance/")
    for page in (event_page, listing):
        html = page.content.decode()
        assert "Button, not proven" in html
        assert "Button, location refused or unavailable (not proven)" in html  # on hover


def test_a_manager_accepts_many_held_lines_with_one_reason(admin_client):
    manager = UserFactory(is_staff=True)
    members = [UserFactory() for _ in range(3)]
    event = _held_event_with([(m, "self", "plain") for m in members])
    crew_complete_event(event=event, by=manager)
    ids = [str(pk) for pk in TimesheetLine.objects.values_list("pk", flat=True)]
    url = "/admin/attendance/timesheetline/"
    chosen = {"action": "accept_unproven", "_selected_action": ids}
    page = admin_client.post(url, chosen)
    assert page.status_code == 200 and "3 held lines" in page.content.decode()
    blank = admin_client.post(url, {**chosen, "apply": "1", "reason": " "})
    assert "This field is required" in blank.content.decode()
    assert TimesheetLine.objects.filter(held=True).count() == 3
    done = admin_client.post(url, {**chosen, "apply": "1", "reason": "Seen by the crew chief"})
    assert done.status_code == 302
    assert not TimesheetLine.objects.filter(held=True).exists()
    assert all(
        line.changes.last().reason == "Seen by the crew chief"
        for line in TimesheetLine.objects.all()
    )
