import pytest
from django.db import connection

from attendance.admin.display import EstimatedCountPaginator
from attendance.models import EmailNotification
from tests.support.factories import EventFactory, UserFactory


def _rows(n, **kwargs):
    return EmailNotification.objects.bulk_create(
        EmailNotification(
            recipient=f"crew{i}@example.com",
            notification_type="event_updated",
            subject=f"Subject {i}",
            message="m",
            html_message="<p>Hello <script>alert(1)</script></p>",
            **kwargs,
        )
        for i in range(n)
    )


@pytest.mark.parametrize("rows", [1, 300])
def test_changelist_query_count_is_flat(staff_client, django_assert_max_num_queries, rows):
    _rows(rows)
    with django_assert_max_num_queries(9):
        response = staff_client.get("/admin/attendance/emailnotification/?status__exact=queued")
    assert response.status_code == 200
    assert f"crew{rows - 1}@example.com" in response.content.decode()


def test_detail_is_read_only_with_a_sandboxed_preview(staff_client):
    [row] = _rows(1)
    page = staff_client.get(
        f"/admin/attendance/emailnotification/{row.pk}/change/"
    ).content.decode()
    assert '<iframe class="sf-email-preview" sandbox srcdoc=' in page
    assert "<script>alert(1)</script>" not in page  # escaped into srcdoc, never live
    assert 'name="_save"' not in page
    assert staff_client.get("/admin/attendance/emailnotification/add/").status_code == 403


def test_member_and_event_pages_show_their_communication_history(staff_client):
    member = UserFactory()
    event = EventFactory()
    _rows(3, user=member, event=event)
    profile_page = staff_client.get(f"/admin/attendance/profile/{member.profile.pk}/change/")
    assert profile_page.content.decode().count("Subject ") == 3 + 1  # + the column header
    event_page = staff_client.get(f"/admin/attendance/event/{event.pk}/change/")
    assert event_page.content.decode().count("Subject ") == 3 + 1


@pytest.mark.postgres
def test_unfiltered_large_tables_use_the_planner_estimate(db):
    _rows(5)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE attendance_emailnotification")
    paginator = EstimatedCountPaginator(EmailNotification.objects.all(), 100)
    paginator.EXACT_BELOW = 1  # pretend the table is large
    assert paginator.count == 5  # the estimate after ANALYZE
    filtered = EstimatedCountPaginator(EmailNotification.objects.filter(status="sent"), 100)
    assert filtered.count == 0
