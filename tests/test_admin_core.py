from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import Attendance, AttendanceCorrection, BulkJob, LedgerEntry
from attendance.services.attendance import attendance_expect
from tests.support.factories import EventFactory, UserFactory
from tests.support.jobs import export_rows


@pytest.mark.parametrize("model", ["profile", "ledgerentry", "event", "attendance"])
def test_changelists_and_add_pages_render(staff_client, model, crew):
    event = EventFactory()
    attendance_expect(event=event, user=crew)
    assert staff_client.get(f"/admin/attendance/{model}/").status_code == 200
    if model != "profile":
        assert staff_client.get(f"/admin/attendance/{model}/add/").status_code == 200


def test_event_change_page_shows_attendance_inline(staff_client, crew):
    event = EventFactory(name="Gala")
    attendance_expect(event=event, user=crew)
    page = staff_client.get(f"/admin/attendance/event/{event.pk}/change/").content.decode()
    assert crew.username in page or crew.get_full_name() in page


def test_ledger_entries_are_added_through_the_service_and_cannot_be_edited(
    staff_client, staff, crew
):
    response = staff_client.post(
        "/admin/attendance/ledgerentry/add/",
        {"user": crew.pk, "kind": "charge", "amount": "750", "description": "Broken XLR"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = LedgerEntry.objects.get()
    assert entry.created_by == staff
    crew.profile.refresh_from_db()
    assert crew.profile.balance == Decimal("750.00")
    # A second save of the same row changes nothing.
    staff_client.post(
        f"/admin/attendance/ledgerentry/{entry.pk}/change/",
        {"user": crew.pk, "kind": "charge", "amount": "1", "description": "x"},
    )
    entry.refresh_from_db()
    assert entry.amount == Decimal("750.00")
    assert (
        staff_client.post(
            f"/admin/attendance/ledgerentry/{entry.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )


def test_ledger_add_form_explains_a_bad_amount(staff_client, crew):
    response = staff_client.post(
        "/admin/attendance/ledgerentry/add/",
        {"user": crew.pk, "kind": "payment", "amount": "-5", "description": "x"},
    )
    assert response.status_code == 200
    assert "positive amount" in response.content.decode()
    assert not LedgerEntry.objects.exists()


def test_balance_is_not_editable_in_admin(staff_client, crew):
    staff_client.post(
        f"/admin/attendance/profile/{crew.profile.pk}/change/",
        {"phone_number": "0712345678", "department": "audio", "skills": "", "balance": "-99999"},
    )
    crew.profile.refresh_from_db()
    assert crew.profile.balance == 0
    assert crew.profile.department == "audio"


def test_admin_attendance_edit_records_a_correction(staff_client, staff, crew):
    event = EventFactory()
    attendance = attendance_expect(event=event, user=crew)
    check_in = timezone.localtime(event.call_time + timedelta(minutes=30))
    response = staff_client.post(
        f"/admin/attendance/attendance/{attendance.pk}/change/",
        {
            "event": event.pk,
            "user": crew.pk,
            "status": "expected",
            "check_in_at_0": check_in.strftime("%Y-%m-%d"),
            "check_in_at_1": check_in.strftime("%H:%M:%S"),
            "notes": "",
            "correction_reason": "Forgot to check in",
            "corrections-TOTAL_FORMS": "0",
            "corrections-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    correction = AttendanceCorrection.objects.get()
    assert correction.changed_by == staff
    assert correction.reason == "Forgot to check in"
    attendance.refresh_from_db()
    assert attendance.check_in_method == Attendance.Method.ADMIN


def test_csv_export_for_a_date_range(
    staff_client, crew, other_crew, django_capture_on_commit_callbacks
):
    inside = EventFactory(name="Inside", starts_at=timezone.now() - timedelta(days=3))
    outside = EventFactory(name="Outside", starts_at=timezone.now() - timedelta(days=40))
    attendance_expect(event=inside, user=crew)
    attendance_expect(event=inside, user=other_crew)
    attendance_expect(event=outside, user=crew)
    start = (timezone.localdate() - timedelta(days=7)).isoformat()
    end = timezone.localdate().isoformat()
    url = "/admin/attendance/attendance/export/"
    page = staff_client.get(url, {"start": start, "end": end}).content.decode()
    assert f'value="{start}"' in page  # dates given in the link fill the form; nothing starts
    assert not BulkJob.objects.exists()
    rows = export_rows(
        staff_client, url, {"start": start, "end": end}, capture=django_capture_on_commit_callbacks
    )
    assert rows[0][0] == "event"
    assert {r[0] for r in rows[1:]} == {"Inside"}
    assert len(rows) == 3


def test_csv_export_form_shows_on_a_bad_range(staff_client):
    response = staff_client.post(
        "/admin/attendance/attendance/export/", {"start": "2026-02-02", "end": "2026-01-01"}
    )
    assert response.status_code == 200
    assert "before the start date" in response.content.decode()


def test_crew_cannot_open_admin(crew_client):
    assert crew_client.get("/admin/attendance/attendance/").status_code == 302


@pytest.mark.parametrize("rows", [1, 60])
def test_attendance_changelist_query_count_does_not_grow_with_rows(
    staff_client, django_assert_max_num_queries, rows
):
    event = EventFactory()
    for user in UserFactory.create_batch(rows):
        attendance_expect(event=event, user=user)
    with django_assert_max_num_queries(12):
        assert staff_client.get("/admin/attendance/attendance/").status_code == 200


@pytest.mark.parametrize("rows", [1, 60])
def test_event_and_ledger_changelists_query_counts_are_flat(
    staff_client, staff, django_assert_max_num_queries, rows
):
    from attendance.services.ledger import ledger_post

    users = UserFactory.create_batch(3)
    for n in range(rows):
        event = EventFactory()
        attendance_expect(event=event, user=users[n % 3])
        ledger_post(user=users[n % 3], kind="charge", amount=10, description="x", created_by=staff)
    with django_assert_max_num_queries(12):
        assert staff_client.get("/admin/attendance/event/").status_code == 200
    with django_assert_max_num_queries(12):
        assert staff_client.get("/admin/attendance/ledgerentry/").status_code == 200
    with django_assert_max_num_queries(12):
        assert staff_client.get("/admin/attendance/profile/").status_code == 200


@pytest.mark.parametrize("rows", [1, 60])
def test_change_pages_query_counts_do_not_grow_with_rows(
    staff_client, staff, django_assert_max_num_queries, rows
):
    """An event with a big crew, a member with a long ledger and many payments: each change
    page costs the same handful of queries as with one row."""
    from attendance.models import Attendance, EventCrew
    from attendance.services.ledger import ledger_post
    from tests.support.factories import CrewRoleFactory, EventCrewFactory, PaymentFactory

    event = EventFactory()
    roles = [CrewRoleFactory(name=f"Role {n}") for n in range(3)]
    member = UserFactory()
    for n, user in enumerate(UserFactory.create_batch(rows)):
        attendance_expect(event=event, user=user)
        EventCrewFactory(event=event, user=user, role=roles[n % 3])
        ledger_post(user=member, kind="charge", amount=10, description="x", created_by=staff)
        PaymentFactory(user=member, phone_number=f"2547110{n:05d}")
    pages = {
        # +3: whether the crew, attendance and pay lists pass the inline cap
        # (CappedInlineMixin); +1 the pay lines; +1 on every admin page: the session's
        # second-factor device (django-otp); +1 the texts beside the emails in the
        # message history of an event, a member and an assignment.
        # +1: has it a manager? +2: the run of show (its blocks, and the empty form's).
        f"/admin/attendance/event/{event.pk}/change/": 23,
        # +3: the roles the member can do (the choices, their own), their unavailable dates;
        # +4: their track record (three counts, their last ratings).
        f"/admin/attendance/profile/{member.profile.pk}/change/": 14,
        f"/admin/auth/user/{member.pk}/change/": 13,  # +2: the roles in the profile inline
        f"/admin/attendance/eventcrew/{EventCrew.objects.first().pk}/change/": 11,
        f"/admin/attendance/mpesapayment/{member.mpesa_payments.first().pk}/change/": 7,
        f"/admin/attendance/attendance/{Attendance.objects.first().pk}/change/": 10,
    }
    for url, budget in pages.items():
        with django_assert_max_num_queries(budget):
            assert staff_client.get(url).status_code == 200, url


def test_the_admin_lists_the_business_before_third_party_apps(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Sound Fusion admin" in page and "Events, crew and payments" in page
    sound_fusion = page.index('<a href="/admin/attendance/"')
    assert sound_fusion < page.index('<a href="/admin/auth/"')
    # Sign-in records, task results and schedules: one "System" entry, last.
    system = page.index("System (administrators)")
    assert sound_fusion < page.index('<a href="/admin/auth/"') < system
    assert system < page.index('href="/admin/django_celery_beat/periodictask/"')
    # No navigation sidebar on list pages: it hid key columns at 1280 px; the breadcrumbs
    # lead home, where everything is listed.
    listing = admin_client.get("/admin/attendance/event/").content.decode()
    assert 'id="nav-sidebar"' not in listing and '<a href="/admin/">Home</a>' in listing


def test_removing_attendance_in_admin_keeps_what_it_held_who_and_why(staff_client, staff, crew):
    from attendance.models import AttendanceRemoval

    event = EventFactory(name="Gala")
    attendance = attendance_expect(event=event, user=crew)
    staff_client.post(
        f"/admin/attendance/attendance/{attendance.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert not Attendance.objects.filter(pk=attendance.pk).exists()
    removal = AttendanceRemoval.objects.get()
    assert (removal.event, removal.user, removal.removed_by) == (event, crew, staff)
    assert removal.reason == "Deleted in admin"
    assert removal.record["status"] == "expected"
    page = staff_client.get("/admin/attendance/attendanceremoval/").content.decode()
    assert (
        "Gala" in page
        and staff_client.get(
            f"/admin/attendance/attendanceremoval/{removal.pk}/delete/"
        ).status_code
        == 403
    )


def test_a_declined_member_leaves_the_list_with_a_record_of_why(crew):
    from attendance.models import AttendanceRemoval
    from attendance.services.crew.assignments import crew_confirm, crew_decline
    from tests.support.factories import EventCrewFactory

    assignment = EventCrewFactory(
        user=crew,
        event=EventFactory(
            starts_at=timezone.now() + timedelta(days=2),
            ends_at=timezone.now() + timedelta(days=2, hours=4),
        ),
    )
    crew_confirm(assignment=assignment)
    crew_decline(assignment=assignment, reason="Sick")
    removal = AttendanceRemoval.objects.get()
    assert (removal.user, removal.removed_by, removal.reason) == (
        crew,
        crew,
        "Declined the assignment",
    )


def test_malformed_ids_are_404_not_500(admin_client):
    for url in ("/admin/attendance/event/abc/change/", "/admin/attendance/bulkjob/abc/change/"):
        assert admin_client.get(url).status_code == 404, url


def test_the_member_picker_finds_and_shows_names(admin_client):
    UserFactory(username="omondi", first_name="Collins", last_name="Omondi")
    UserFactory(username="stagehand00005", first_name="Peter", last_name="Kamau")
    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "term": "Collins",
            "app_label": "attendance",
            "model_name": "ledgerentry",
            "field_name": "user",
        },
    )
    assert [r["text"] for r in response.json()["results"]] == ["Collins Omondi (omondi)"]


def test_times_read_one_way_on_the_24_hour_clock(admin_client):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from attendance.models import EmailNotification

    row = EmailNotification.objects.create(recipient="a@example.com", subject="Hi", message="x")
    at = datetime(2026, 12, 5, 19, 2, tzinfo=ZoneInfo("Africa/Nairobi"))
    EmailNotification.objects.filter(pk=row.pk).update(created_at=at, sent_at=at)
    listing = admin_client.get("/admin/attendance/emailnotification/").content.decode()
    page = admin_client.get(f"/admin/attendance/emailnotification/{row.pk}/change/")
    for text in (listing, page.content.decode()):
        assert "5 Dec 2026, 19:02" in text and "p.m." not in text
