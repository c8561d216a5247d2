"""The admin with a year of data: searches that use indexes, filters that do not scan,
lists that do not load what they do not show, pages whose cost does not grow with the rows."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import MpesaPayment
from attendance.services.attendance import attendance_expect
from attendance.services.messaging.email import notification_create
from tests.support.factories import EventCrewFactory, EventFactory, PaymentFactory, UserFactory

PAYMENTS = "/admin/attendance/mpesapayment/"


def _listed(admin_client, url, **params):
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url, params).content.decode()
    return page, [q["sql"] for q in queries.captured_queries]


@pytest.fixture
def payments(db):
    wanjiku = UserFactory(first_name="Wanjiku", last_name="Kamau", email="wanjiku@example.com")
    brian = UserFactory(first_name="Brian", last_name="Otieno")
    return {
        "wanjiku": PaymentFactory(
            user=wanjiku, phone_number="254712345678", receipt_number="TKA1B2C3D4"
        ),
        "brian": PaymentFactory(
            user=brian, phone_number="254722000111", receipt_number="TKZ9Y8X7W6"
        ),
    }


@pytest.mark.parametrize(
    "term",
    [
        "0712 345 678",
        "+254-712-345678",
        "254712345678",
        "tka1b2c3d4",
        "Wanjiku",
        "wanjiku@example.com",
        "kamau",
    ],
)
def test_payments_are_found_by_phone_receipt_name_or_email(admin_client, payments, term):
    page, _ = _listed(admin_client, PAYMENTS, q=term)
    assert payments["wanjiku"].receipt_number in page
    assert payments["brian"].receipt_number not in page


@pytest.mark.parametrize(
    ("term", "column"),
    [
        ("0712345678", "phone_number"),
        ("TKA1B2C3D4", "receipt_number"),
        ("ws_CO_TEST00000001", "checkout_request_id"),
    ],
)
def test_an_identifier_is_looked_up_whole_never_with_a_like_over_the_table(
    admin_client, payments, term, column
):
    _, sql = _listed(admin_client, PAYMENTS, q=term)
    searches = [q for q in sql if 'FROM "attendance_mpesapayment"' in q and column in q]
    assert searches, sql
    assert all("LIKE" not in q.upper() for q in searches)


def test_a_name_is_looked_up_in_the_user_table_then_by_member(admin_client, payments):
    _, sql = _listed(admin_client, PAYMENTS, q="Wanj")
    [listing] = [q for q in sql if 'FROM "attendance_mpesapayment"' in q and "ORDER BY" in q]
    # The LIKE runs on auth_user, inside "user_id IN (...)", not across the joined columns.
    assert '"attendance_mpesapayment"."user_id" IN (SELECT' in listing


def test_the_month_filter_bounds_the_list_without_a_distinct_over_every_row(admin_client, db):
    old = PaymentFactory(phone_number="254711000001", receipt_number="OLD1234567")
    MpesaPayment.objects.filter(pk=old.pk).update(initiated_at=timezone.now() - timedelta(days=70))
    PaymentFactory(phone_number="254711000002", receipt_number="NEW1234567")
    month = timezone.localdate().strftime("%Y-%m")
    page, sql = _listed(admin_client, PAYMENTS, month=month)
    assert "NEW1234567" in page and "OLD1234567" not in page
    assert not [q for q in sql if "DISTINCT" in q.upper()]
    assert timezone.localdate().strftime("%B %Y") in page  # offered from the calendar


def test_email_lists_never_load_the_bodies_they_do_not_show(admin_client, db):
    member = UserFactory(email="otieno@example.com")
    event = EventFactory()
    notification_create(
        recipient=member.email,
        user=member,
        notification_type="event_created",
        context={"event": event},
    )
    page, sql = _listed(
        admin_client, "/admin/attendance/emailnotification/", q="otieno@example.com"
    )
    assert "otieno@example.com" in page
    listing = [q for q in sql if 'FROM "attendance_emailnotification"' in q and "ORDER BY" in q]
    assert listing and all('"html_message"' not in q and '."message"' not in q for q in listing)


@pytest.mark.parametrize("emails", [1, 20])
def test_a_members_page_costs_the_same_queries_for_1_and_20_emails(
    admin_client, django_assert_max_num_queries, emails
):
    member = UserFactory()
    event = EventFactory()
    for _ in range(emails):
        notification_create(
            recipient=member.email,
            user=member,
            notification_type="event_created",
            context={"event": event},
        )
    url = f"/admin/attendance/profile/{member.profile.pk}/change/"
    admin_client.get(url)  # warms the per-process content type cache, whatever ran before
    # It was 26 for 20 emails (each row fetched twice); +1: the texts beside the emails;
    # +3: the roles they can do (the choices and their own) and the dates they cannot work;
    # +4: their track record (three counts, their last ratings).
    with django_assert_max_num_queries(14):
        admin_client.get(url)


@pytest.mark.parametrize("crew", [1, 150])
def test_a_big_events_page_shows_the_first_twenty_crew_at_a_flat_cost(
    admin_client, django_assert_max_num_queries, crew
):
    start = timezone.now() + timedelta(days=5)
    event = EventFactory(starts_at=start, ends_at=start + timedelta(hours=8))
    for _ in range(crew):
        member = UserFactory()
        EventCrewFactory(event=event, user=member)
        attendance_expect(event=event, user=member)
    with django_assert_max_num_queries(30):
        page = admin_client.get(f"/admin/attendance/event/{event.pk}/change/").content.decode()
    shown = int(page.split('name="crew-TOTAL_FORMS" value="')[1].split('"')[0])
    assert shown == min(crew, 20)
    if crew > 20:
        assert "The page shows the first 20 of the crew." in page


def test_a_capped_inline_shows_this_events_rows_not_the_first_rows_of_any_event(admin_client):
    start = timezone.now() + timedelta(days=5)
    other = EventFactory(starts_at=start, ends_at=start + timedelta(hours=8))
    for _ in range(25):
        EventCrewFactory(event=other, user=UserFactory())  # older rows, of another event
    event = EventFactory(starts_at=start, ends_at=start + timedelta(hours=8))
    mine = EventCrewFactory(event=event, user=UserFactory(first_name="Onlyhere"))
    page = admin_client.get(f"/admin/attendance/event/{event.pk}/change/").content.decode()
    assert "Onlyhere" in page
    assert 'name="crew-TOTAL_FORMS" value="1"' in page
    assert f'value="{mine.pk}"' in page
