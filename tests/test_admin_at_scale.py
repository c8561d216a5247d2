"""How the big lists stay fast at a year of data (bench/bench_admin_scale.py measures it):
sorted columns whose ties an index holds, counts the planner estimates, filters that read no
whole table, searches that look a term up, and the SMS costs on a page of their own."""

from datetime import timedelta

import pytest
from axes.models import AccessLog
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_results.models import TaskResult

from attendance.admin.display import EstimatedCountPaginator
from attendance.management.volume import dates_as_given
from attendance.models import EmailNotification, SmsMessage
from tests.support.auth import log_in_staff, staff_in

EMAILS = "/admin/attendance/emailnotification/"


def _emails(recipients_and_ages):
    now = timezone.now()
    rows = [
        EmailNotification(
            recipient=recipient,
            notification_type="event_updated",
            subject=f"{recipient} {age}",
            message="m",
            status="sent",
            created_at=now - timedelta(minutes=age),
        )
        for recipient, age in recipients_and_ages
    ]
    with dates_as_given(EmailNotification, "created_at"):
        return EmailNotification.objects.bulk_create(rows)


def _listed(client, url):
    response = client.get(url)
    assert response.status_code == 200
    cl = response.context_data["cl"]
    return cl.queryset.query.order_by, [row.pk for row in cl.result_list]


def test_a_sorted_column_breaks_ties_newest_first_and_descending_is_its_reverse(staff_client):
    a_old, a_new, b_old, b_new = _emails(
        [("a@example.com", 50), ("a@example.com", 5), ("b@example.com", 40), ("b@example.com", 1)]
    )
    ordering, up = _listed(staff_client, f"{EMAILS}?o=1")  # recipient (after the tick box), A to Z
    # Newest first within a recipient, as the unsorted list is; not Django's bare "-pk".
    assert list(ordering) == ["recipient", "-created_at", "-id"]
    assert up == [a_new.pk, a_old.pk, b_new.pk, b_old.pk]
    ordering, down = _listed(staff_client, f"{EMAILS}?o=-1")
    # Exactly the ascending order read backwards: one (recipient, -created_at) index serves both.
    assert list(ordering) == ["-recipient", "created_at", "id"]
    assert down == list(reversed(up))
    # Unsorted, the list is as it always was.
    ordering, plain = _listed(staff_client, EMAILS)
    assert plain == [b_new.pk, a_new.pk, b_old.pk, a_old.pk]


@pytest.mark.postgres
def test_a_sorted_list_reads_its_index_not_the_whole_table(staff_client):
    _emails([(f"m{n % 7}@example.com", n) for n in range(300)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE attendance_emailnotification")
    for order in ("1", "-1", "4", "-4"):  # recipient and status, both ways
        response = staff_client.get(f"{EMAILS}?o={order}")
        sql, params = response.context_data["cl"].result_list.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a small table would be read whole
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        # A full sort of every row is what took 441-641 ms at a million emails.
        assert "Index" in plan and ("Incremental Sort" in plan or "  Sort " not in plan), plan


@pytest.mark.postgres
def test_a_large_filtered_result_is_counted_by_the_planner_a_small_one_exactly(db):
    _emails([("a@example.com", n) for n in range(40)])
    EmailNotification.objects.filter(pk__in=EmailNotification.objects.values("pk")[:10]).update(
        status="failed"
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE attendance_emailnotification")
    sent = EmailNotification.objects.filter(status="sent")
    large = EstimatedCountPaginator(sent, 100)
    large.EXACT_BELOW = 1  # pretend 30 is many
    with CaptureQueriesContext(connection) as queries:
        assert large.count == 30  # the plan's estimate, exact here after ANALYZE
    assert queries.captured_queries[0]["sql"].startswith("EXPLAIN")
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    small = EstimatedCountPaginator(sent, 100)
    with CaptureQueriesContext(connection) as queries:
        assert small.count == 30
    assert any("COUNT(" in q["sql"] for q in queries.captured_queries)


def _texts(n):
    SmsMessage.objects.bulk_create(
        SmsMessage(
            phone_number=f"2547{i:08d}",
            notification_type="crew_reminder",
            message="Reminder",
            status="sent",
            encoding="UCS-2" if i % 3 == 0 else "GSM-7",
            delivery_status="Success" if i % 2 else "Failed",
            cost="0.8000",
            cost_currency="KES",
        )
        for i in range(n)
    )


@pytest.mark.parametrize("rows", [1, 200])
def test_the_sms_list_reads_no_whole_table_for_its_filters(
    staff_client, django_assert_max_num_queries, rows
):
    _texts(rows)
    with CaptureQueriesContext(connection) as queries, django_assert_max_num_queries(8):
        page = staff_client.get("/admin/attendance/smsmessage/?encoding=UCS-2")
    assert page.status_code == 200
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "DISTINCT" not in sql  # the encodings are named, not gathered from every text
    assert "SUM(" not in sql  # the costs are a page of their own
    shown = page.context_data["cl"].result_count
    assert shown == SmsMessage.objects.filter(encoding="UCS-2").count()
    delivered = staff_client.get("/admin/attendance/smsmessage/?delivery=delivered")
    assert delivered.context_data["cl"].result_count == rows // 2


def test_the_sms_costs_page_needs_the_right_to_see_texts(client, staff_client):
    _texts(3)
    page = staff_client.get("/admin/attendance/smsmessage/costs/?encoding=GSM-7")
    assert "KES 1.60" in page.content.decode()  # two of the three are GSM-7
    assert staff_client.get("/admin/attendance/smsmessage/costs/?bogus=1").status_code == 302
    nobody = staff_in("Event managers")
    nobody.groups.clear()  # staff, but not allowed to see texts
    client.logout()
    assert (
        log_in_staff(client, nobody).get("/admin/attendance/smsmessage/costs/").status_code == 403
    )


def test_task_results_are_searched_by_id_or_name_and_sorted_by_indexed_columns(staff_client):
    now = timezone.now()
    TaskResult.objects.create(
        task_id="abc-1",
        task_name="attendance.tasks.payments_reconcile_task",
        periodic_task_name="Reconcile pending M-Pesa payments",
        status="SUCCESS",
        task_args="()",
        date_done=now,
    )
    TaskResult.objects.create(
        task_id="abc-2", task_name="attendance.tasks.alerts_check_task", status="SUCCESS"
    )
    url = "/admin/django_celery_results/taskresult/"

    def found(term):
        response = staff_client.get(url, {"q": term})
        return {row.task_id for row in response.context_data["cl"].result_list}

    assert found("payments_reconcile_task") == {"abc-1"}  # the short name, as staff say it
    assert found("attendance.tasks.alerts_check_task") == {"abc-2"}
    assert found("abc-2") == {"abc-2"}
    assert found("Reconcile pending M-Pesa payments") == {"abc-1"}
    assert found("()") == set()  # arguments are not searched: that read every result
    page = staff_client.get(url)
    assert page.context_data["cl"].date_hierarchy is None
    assert set(page.context_data["cl"].sortable_by) == {
        "task_name",
        "periodic_task_name",
        "date_done",
    }


def test_sign_ins_are_searched_by_username_or_address(staff_client):
    for name, ip in (("wanjiku", "105.1.2.3"), ("otieno", "105.9.9.9")):
        AccessLog.objects.create(
            username=name, ip_address=ip, user_agent="phone", http_accept="*/*", path_info="/"
        )
    url = "/admin/axes/accesslog/"

    def found(term):
        response = staff_client.get(url, {"q": term})
        assert response.status_code == 200
        return {row.username for row in response.context_data["cl"].result_list}

    assert found("105.9.9.9") == {"otieno"}
    assert found("Wanjiku") == {"wanjiku"}  # as typed, or in lower case
    assert found("phone") == set()  # the user agent is not searched: that read every row


def test_sign_ins_are_filtered_by_the_page_they_came_through(staff_client):
    for name, path in (("wanjiku", "/accounts/login/"), ("grace", "/admin/login/")):
        AccessLog.objects.create(
            username=name,
            ip_address="105.1.2.3",
            user_agent="phone",
            http_accept="*/*",
            path_info=path,
        )
    url = "/admin/axes/accesslog/"
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(url)
    assert page.status_code == 200
    assert not any("DISTINCT" in q["sql"] for q in queries)  # choices are not read from rows
    assert "Crew portal" in page.content.decode()

    def found(choice):
        response = staff_client.get(url, {"page_signed_in": choice})
        return {row.username for row in response.context_data["cl"].result_list}

    assert found("portal") == {"wanjiku"}
    assert found("admin") == {"grace"}
    for path in ("/admin/axes/accessfailurelog/", "/admin/axes/accessattempt/"):
        assert staff_client.get(path, {"page_signed_in": "admin"}).status_code == 200


@pytest.mark.postgres
def test_the_sign_in_records_have_an_index_on_their_time(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN "
            "('axes_accesslog', 'axes_accessfailurelog') AND indexname LIKE 'sf_axes_%%'"
        )
        assert {row[0] for row in cursor.fetchall()} == {
            "sf_axes_accesslog_time",
            "sf_axes_accesslog_logout",
            "sf_axes_failurelog_time",
        }
