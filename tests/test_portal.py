import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from attendance.models import Attendance, SmsMessage
from attendance.services.attendance import attendance_expect
from attendance.services.ledger import ledger_post
from tests.support.factories import EventFactory


@pytest.fixture
def open_event(crew):
    now = timezone.now()
    event = EventFactory(
        name="Launch night",
        call_time=now - timedelta(minutes=5),
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=6),
    )
    attendance_expect(event=event, user=crew)
    return event


def test_pages_need_login(client):
    for url in ["/", "/attendance/", "/balance/", "/events/1/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")


def test_home_shows_upcoming_events_balance_and_ledger(crew_client, crew, open_event):
    ledger_post(user=crew, kind="charge", amount=1500, description="Lost DI box")
    page = crew_client.get("/").content.decode()
    assert "Launch night" in page
    assert "KES 1,500.00" in page
    assert "Lost DI box" in page
    assert "Check in" in page


def test_check_in_and_out_from_the_portal(crew_client, crew, open_event):
    response = crew_client.post(f"/events/{open_event.pk}/check-in/", follow=True)
    assert "Checked in at" in response.content.decode()
    attendance = Attendance.objects.get(user=crew, event=open_event)
    assert attendance.status == Attendance.Status.PRESENT
    # Hours before the end: the portal asks first, and records nothing until asked again.
    asked = crew_client.post(f"/events/{open_event.pk}/check-out/")
    assert "Check out now?" in asked.content.decode()
    response = crew_client.post(
        f"/events/{open_event.pk}/check-out/", {"early": "yes"}, follow=True
    )
    assert "Checked out" in response.content.decode()


def test_check_in_is_post_only(crew_client, open_event):
    assert crew_client.get(f"/events/{open_event.pk}/check-in/").status_code == 405
    assert crew_client.get(f"/events/{open_event.pk}/check-out/").status_code == 405


def test_crew_cannot_see_or_check_in_to_someone_elses_event(client, other_crew, open_event, crew):
    client.force_login(other_crew)
    assert client.get(f"/events/{open_event.pk}/").status_code == 404
    assert client.post(f"/events/{open_event.pk}/check-in/").status_code == 404
    assert client.post(f"/events/{open_event.pk}/check-out/").status_code == 404
    assert Attendance.objects.get(user=crew, event=open_event).check_in_at is None
    assert "Launch night" not in client.get("/").content.decode()
    assert "Launch night" not in client.get("/attendance/").content.decode()


def test_crew_do_not_see_each_others_ledger(client, crew, other_crew):
    ledger_post(user=crew, kind="charge", amount=999, description="Secret charge")
    client.force_login(other_crew)
    assert "Secret charge" not in client.get("/balance/").content.decode()
    assert "Secret charge" not in client.get("/").content.decode()


def test_check_in_needs_csrf(crew, open_event):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(crew)
    assert strict.post(f"/events/{open_event.pk}/check-in/").status_code == 403


def test_redirect_after_check_in_stays_on_this_site(crew_client, open_event):
    response = crew_client.post(
        f"/events/{open_event.pk}/check-in/", {"next": "https://evil.example/"}
    )
    assert response.url == "/"


def test_refused_check_in_explains_why(crew_client, crew):
    later = timezone.now() + timedelta(days=2)
    event = EventFactory(call_time=later, starts_at=later, ends_at=later + timedelta(hours=3))
    attendance_expect(event=event, user=crew)
    response = crew_client.post(f"/events/{event.pk}/check-in/", follow=True)
    assert "Check-in opens at" in response.content.decode()


def test_login_page_and_lockout(client, crew, settings):
    assert client.get("/accounts/login/").status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": crew.username, "password": "wrong"})
    response = client.post(
        "/accounts/login/", {"username": crew.username, "password": "crew-password-123"}
    )
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_login_with_the_right_password(client, crew):
    response = client.post(
        "/accounts/login/", {"username": crew.username, "password": "crew-password-123"}
    )
    assert response.status_code == 302
    assert response.url == "/"


def test_history_lists_own_attendance_with_pagination(crew_client, crew):
    for n in range(25):
        past = EventFactory(starts_at=timezone.now() - timedelta(days=n + 1))
        attendance_expect(event=past, user=crew)
    page = crew_client.get("/attendance/").content.decode()
    assert "Page 1 of 2" in page


def test_history_lists_only_events_that_have_happened(crew_client, crew):
    attendance_expect(
        event=EventFactory(name="Done gig", starts_at=timezone.now() - timedelta(days=2)), user=crew
    )
    attendance_expect(event=EventFactory(name="Next week's gig"), user=crew)  # to come
    page = crew_client.get("/attendance/").content.decode()
    assert "Done gig" in page and "Next week" not in page


@pytest.mark.parametrize("rows", [1, 60])
def test_portal_pages_cost_the_same_queries_for_1_and_60_rows(
    crew_client, crew, staff, django_assert_max_num_queries, rows
):
    for n in range(rows):
        past = EventFactory(starts_at=timezone.now() - timedelta(days=n + 1))
        attendance_expect(event=past, user=crew)
        attendance_expect(event=EventFactory(), user=crew)
        ledger_post(user=crew, kind="charge", amount=10, description="Cable", created_by=staff)
    # /account/: +1 since a number change may be waiting for its code.
    for url, budget in {"/": 7, "/attendance/": 4, "/balance/": 5, "/account/": 4}.items():
        with django_assert_max_num_queries(budget):
            assert crew_client.get(url).status_code == 200, url


def test_the_balance_reads_as_owed_or_credit_and_offers_m_pesa_only_when_owed(crew_client, crew):
    assert 'id="pay-link"' not in crew_client.get("/balance/").content.decode()
    ledger_post(user=crew, kind="charge", amount=700, description="Lost XLR")
    page = crew_client.get("/balance/").content.decode()
    assert 'id="pay-link"' in page and 'href="/#pay-card"' in page
    assert 'You owe <span class="amount">KES 700.00' in page
    ledger_post(user=crew, kind="payment", amount=900, description="Cash")  # now in credit
    page = crew_client.get("/balance/").content.decode()
    assert 'id="pay-link"' not in page
    # A credit reads as one: the label says which way, the amount has no minus sign.
    assert 'Credit: <span class="amount">KES 200.00' in page
    home = crew_client.get("/").content.decode()
    assert "Credit</div>" in home and 'id="balance-value">KES 200.00<' in home


def test_a_member_changes_their_m_pesa_number_on_the_account_page(crew_client, crew, at_sms):
    ledger_post(user=crew, kind="charge", amount=300, description="Lost clamp")
    page = crew_client.get("/account/").content.decode()
    assert crew.email in page and 'name="phone_number"' in page

    response = crew_client.post(
        "/account/",
        {"phone_number": "+254 (722) 000-111", "password": "crew-password-123"},
        follow=True,
    )
    assert "We texted a code to +254 722 000111" in response.content.decode()
    code = re.search(
        r"code is (\d{6})", SmsMessage.objects.get(phone_number="254722000111").message
    )
    response = crew_client.post("/account/", {"code": code.group(1)}, follow=True)
    assert "Saved. Your M-Pesa number is +254 722 000111." in response.content.decode()
    crew.profile.refresh_from_db()
    assert crew.profile.phone_number == "254722000111"
    assert crew.profile.balance == 300  # untouched
    # The pay form now offers the new number.
    assert 'value="+254 722 000111"' in crew_client.get("/").content.decode()


def test_a_wrong_number_is_refused_with_a_message_and_changes_nothing(crew_client, crew):
    before = crew.profile.phone_number
    response = crew_client.post("/account/", {"phone_number": "0812 345 678"})
    assert response.status_code == 200
    assert "Enter a Kenyan mobile number" in response.content.decode()
    crew.profile.refresh_from_db()
    assert crew.profile.phone_number == before


def test_the_account_page_needs_login_and_csrf(client, crew):
    assert client.get("/account/").url.startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(crew)
    assert strict.post("/account/", {"phone_number": "0722000111"}).status_code == 403


def test_the_pay_form_shows_only_when_money_is_owed_with_the_balance_rounded_up(crew_client, crew):
    assert 'id="pay-form"' not in crew_client.get("/").content.decode()  # nothing owed
    ledger_post(user=crew, kind="charge", amount="100.50", description="Lost clamp")
    page = crew_client.get("/").content.decode()
    assert 'id="pay-form"' in page
    assert 'value="101"' in page and 'data-owed="101"' in page
    assert 'max="250000"' in page
    ledger_post(user=crew, kind="payment", amount="300", description="Cash")  # in credit
    assert 'id="pay-form"' not in crew_client.get("/").content.decode()


def test_before_its_window_an_event_says_when_check_in_opens_not_not_checked_in(crew_client, crew):
    start = timezone.localtime() + timedelta(hours=5)
    event = EventFactory(
        name="Evening show",
        starts_at=start,
        ends_at=start + timedelta(hours=4),
        call_time=start - timedelta(hours=2),
    )
    attendance_expect(event=event, user=crew)
    page = crew_client.get("/").content.decode()
    opens = timezone.localtime(event.call_time - timedelta(hours=1))
    assert f"Check-in opens {opens:%a} {opens.day} {opens:%b, %H:%M}" in page
    assert "Not checked in" not in page
    # The events come before the balance and the pay form: on event day, Check in is on top.
    assert page.index("Evening show") < page.index('id="balance-card"')


def test_the_thank_you_survives_the_reload_only_for_the_members_own_completed_payment(
    crew_client, crew, other_crew
):
    from tests.support.factories import PaymentFactory

    def settled(user, receipt):
        payment = PaymentFactory(user=user, status="completed", receipt_number=receipt)
        payment.ledger_entry = ledger_post(
            user=user, kind="payment", amount=100, description="M-Pesa", source=payment
        )
        payment.save()
        return payment

    mine = settled(crew, "OWNRECEIPT")
    theirs = settled(other_crew, "NOTMINE123")
    page = crew_client.get(f"/?paid={mine.pk}").content.decode()
    assert 'id="pay-result"' in page and "OWNRECEIPT" in page
    page = crew_client.get(f"/?paid={theirs.pk}").content.decode()
    assert 'id="pay-result"' not in page and "NOTMINE123" not in page


def test_ledger_rows_read_as_charged_paid_owed_and_credit_without_signs(crew_client, crew):
    ledger_post(user=crew, kind="charge", amount=500, description="Lost cable")
    ledger_post(user=crew, kind="payment", amount=700, description="M-Pesa payment X")
    page = crew_client.get("/balance/").content.decode()
    assert "KES 500.00 charged" in page and "KES 500.00 owed" in page
    assert "KES 700.00 paid" in page and "KES 200.00 credit" in page
    assert "-KES" not in page


def test_the_menu_marks_the_current_page(crew_client):
    page = crew_client.get("/balance/").content.decode()
    assert '<a href="/balance/" aria-current="page">Balance</a>' in page
    assert '<a href="/" aria-current="page">' not in page
