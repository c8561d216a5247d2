"""The admin index's dashboard: figures equal to the rows counted here one by one, the same
number of queries at one row and at many, sections only for those who may see them, and every
figure a link to an admin list that shows what it counts."""

import re
import statistics
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import (
    EmailNotification,
    EventCrew,
    EventRoleRequirement,
    MpesaCallback,
    MpesaPayment,
)
from attendance.services.ledger import ledger_post
from attendance.services.ops.dashboard import dashboard_figures
from tests.support.auth import log_in_staff
from tests.support.factories import (
    CrewRoleFactory,
    EventCrewFactory,
    EventFactory,
    PaymentFactory,
    PayRunFactory,
    UserFactory,
)

Pay = MpesaPayment.Status
Crew = EventCrew.Status


def _payment(days_ago: float, status: str, **fields) -> MpesaPayment:
    payment = PaymentFactory(status=status, **fields)
    at = timezone.now() - timedelta(days=days_ago)
    MpesaPayment.objects.filter(pk=payment.pk).update(initiated_at=at)
    payment.initiated_at = at
    return payment


def _email(days_ago: float, status: str) -> EmailNotification:
    email = EmailNotification.objects.create(
        recipient="crew@example.com", subject="Hello", message="Hi", status=status
    )
    EmailNotification.objects.filter(pk=email.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    return email


def _invited(days_ago: float, status: str, answered_after_hours: float | None) -> EventCrew:
    sent = timezone.now() - timedelta(days=days_ago)
    fields = {"invitation_sent": True, "invitation_sent_at": sent, "status": status}
    if answered_after_hours is not None:
        fields["responded_at"] = sent + timedelta(hours=answered_after_hours)
    if status in (Crew.CONFIRMED, Crew.COMPLETED):
        fields["confirmed_at"] = fields["responded_at"]
    return EventCrewFactory(
        event=EventFactory(starts_at=timezone.now() + timedelta(days=40)), **fields
    )


@pytest.fixture
def seeded(db):
    """A month of mixed activity, with rows just outside each window that must not count."""
    payments = [
        _payment(0, Pay.COMPLETED, amount=500, paid_amount=Decimal("500.00")),
        _payment(1, Pay.COMPLETED, amount=300, paid_amount=None),  # settled by a query
        _payment(1, Pay.FAILED, result_code="1", result_description="Insufficient balance"),
        _payment(2, Pay.FAILED, result_code="1", result_description="Insufficient balance"),
        _payment(2, Pay.CANCELLED, result_code="1032", result_description="Cancelled by user"),
        _payment(3, Pay.FAILED, result_code="2001", result_description="Wrong PIN"),
        _payment(5, Pay.PENDING),
        _payment(12, Pay.COMPLETED, amount=1200, paid_amount=Decimal("1199.50")),
        _payment(28.5, Pay.FAILED, result_code="1037", result_description="Timeout"),
        _payment(31, Pay.COMPLETED, amount=9999, paid_amount=Decimal("9999")),  # outside
    ]
    MpesaPayment.objects.filter(pk=payments[6].pk).update(needs_review=True)
    owing = UserFactory()
    ledger_post(user=owing, kind="charge", amount=Decimal("750.25"), description="Truck")
    owing2 = UserFactory()
    ledger_post(user=owing2, kind="charge", amount=Decimal("100"), description="Cable")
    owed = UserFactory()
    ledger_post(user=owed, kind="adjustment", amount=Decimal("-400"), description="Refund")
    emails = [_email(1, "sent"), _email(2, "sent"), _email(3, "failed"), _email(40, "failed")]
    invitations = [
        _invited(2, Crew.CONFIRMED, 3),
        _invited(5, Crew.DECLINED, 10),
        _invited(10, Crew.COMPLETED, 30),
        _invited(20, Crew.INVITED, None),
        _invited(100, Crew.CONFIRMED, 1),  # outside the 90 days
    ]
    MpesaCallback.objects.create(
        checkout_request_id="ws_CO_X", raw_body="{}", status=MpesaCallback.Status.QUARANTINED
    )
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    starts = timezone.make_aware(
        timezone.datetime.combine(monday + timedelta(days=3), timezone.datetime.min.time())
    ) + timedelta(hours=18)
    event = EventFactory(name="Safari Sevens", starts_at=starts)
    engineer = CrewRoleFactory(name="Engineer")
    stagehand = CrewRoleFactory(name="Stagehand")
    EventRoleRequirement.objects.create(event=event, role=engineer, needed=2)
    EventRoleRequirement.objects.create(event=event, role=stagehand, needed=3)
    EventCrewFactory(event=event, role=engineer, status=Crew.CONFIRMED, confirmed_at=timezone.now())
    EventCrewFactory(event=event, role=stagehand, status=Crew.INVITED)
    EventFactory(name="Next week's gig", starts_at=starts + timedelta(days=7))
    return {"payments": payments, "emails": emails, "invitations": invitations, "event": event}


def test_the_figures_equal_the_rows_counted_one_by_one(seeded):
    board = dashboard_figures()
    now = timezone.now()
    recent = [p for p in seeded["payments"] if p.initiated_at >= board.since]
    done = [p for p in recent if p.status == Pay.COMPLETED]
    finished = [p for p in recent if p.status in (Pay.COMPLETED, Pay.FAILED, Pay.CANCELLED)]

    assert board.payments_completed == len(done) == 3
    assert board.payments_finished == len(finished) == 8
    assert board.success_rate == pytest.approx(3 / 8)
    assert board.collected == sum(p.paid_amount or p.amount for p in done) == Decimal("1999.50")
    for day in board.days:
        on_day = [p for p in recent if timezone.localdate(p.initiated_at) == day.day]
        assert (day.completed, day.failed, day.cancelled) == (
            sum(p.status == Pay.COMPLETED for p in on_day),
            sum(p.status == Pay.FAILED for p in on_day),
            sum(p.status == Pay.CANCELLED for p in on_day),
        ), day.day
    assert len(board.days) == 30 and board.days[-1].day == timezone.localdate()
    reasons = Counter(p.result_code for p in finished if p.status != Pay.COMPLETED)
    assert [(f.result_code, f.count) for f in board.top_failures] == sorted(
        reasons.items(), key=lambda item: (-item[1], item[0])
    )
    assert board.top_failures[0].description == "Insufficient balance"

    assert board.owed == Decimal("850.25") and board.members_owing == 2
    assert board.review_queue == 1
    assert board.quarantined_callbacks == 1

    invited = [c for c in seeded["invitations"] if c.invitation_sent_at >= now - timedelta(days=90)]
    assert board.invitations == len(invited) == 4
    assert board.confirmed == 2 and board.declined == 1
    assert board.confirmation_rate == pytest.approx(0.5)
    assert board.median_answer_hours == pytest.approx(statistics.median([3, 10, 30]))

    assert (board.emails_sent, board.emails_failed) == (2, 1)
    assert board.email_delivery_rate == pytest.approx(2 / 3)

    [fill] = board.week
    assert fill.event == seeded["event"]
    assert [(r.role, r.confirmed, r.needed) for r in fill.roles] == [
        ("Engineer", 1, 2),
        ("Stagehand", 0, 3),
    ]
    assert (fill.needed, fill.confirmed, fill.short) == (5, 1, 4)


def test_no_data_shows_dashes_not_errors(db, admin_client):
    board = dashboard_figures()
    assert board.success_rate is None and board.median_answer_hours is None
    page = admin_client.get("/admin/").content.decode()
    assert "Payment success" in page and "—" in page and "No events this week." in page


def _dashboard_queries() -> int:
    with CaptureQueriesContext(connection) as queries:
        dashboard_figures()
    return len(queries.captured_queries)


def test_the_query_count_is_the_same_at_one_row_and_at_many(db):
    _payment(1, Pay.COMPLETED)
    _invited(1, Crew.CONFIRMED, 2)
    _email(1, "sent")
    EventFactory(starts_at=timezone.now())
    one = _dashboard_queries()
    for n in range(40):
        _payment(n % 30, [Pay.COMPLETED, Pay.FAILED, Pay.CANCELLED][n % 3], result_code=str(n % 7))
        _invited(n % 80, [Crew.CONFIRMED, Crew.DECLINED][n % 2], n % 11)
        _email(n % 30, ["sent", "failed"][n % 2])
    for n in range(6):
        event = EventFactory(starts_at=timezone.now() + timedelta(minutes=n))
        EventRoleRequirement.objects.create(event=event, role=CrewRoleFactory(), needed=3)
    many = _dashboard_queries()
    assert one == many <= 14


def test_staff_see_only_the_sections_behind_their_permissions(seeded, client):
    manager = UserFactory(is_staff=True)
    manager.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_dashboard", "view_event", "view_eventcrew"])
    )
    page = log_in_staff(client, manager).get("/admin/").content.decode()
    assert "Safari Sevens" in page and "Crew confirming" in page
    assert "Owed by crew" not in page and "Payments per day" not in page
    assert "Emails delivered" not in page

    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename="view_mpesapayment"))
    client.logout()
    page = log_in_staff(client, clerk).get("/admin/").content.decode()
    assert "Today at Sound Fusion" not in page  # no view_dashboard: the app list only


def test_the_staff_roles_see_the_dashboard(db):
    from django.contrib.auth.models import Group

    for name in ("Finance", "Event managers"):
        assert Group.objects.get(name=name).permissions.filter(codename="view_dashboard").exists()


def test_every_figure_links_to_a_list_that_shows_what_it_counts(seeded, admin_client):
    page = admin_client.get("/admin/").content.decode()
    links = set(re.findall(r'href="(/admin/attendance/[^"]+\?[^"]+)"', page))
    assert len(links) >= 12
    for link in links:
        response = admin_client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link  # not a "?e=1" redirect for a bad filter
    day = seeded["payments"][2].initiated_at
    listed = admin_client.get(
        "/admin/attendance/mpesapayment/", {"day": timezone.localdate(day).isoformat()}
    ).context["cl"]
    assert {p.pk for p in listed.queryset} == {
        p.pk
        for p in seeded["payments"]
        if timezone.localdate(p.initiated_at) == timezone.localdate(day)
    }
    one_day = admin_client.get(
        "/admin/attendance/mpesapayment/", {"day": timezone.localdate(day).isoformat()}
    )
    assert one_day.context["totals"] is not None  # a day narrows the list: totals are cheap
    by_code = admin_client.get("/admin/attendance/mpesapayment/", {"result": "1"}).context["cl"]
    assert by_code.queryset.count() == 2
    owes = admin_client.get("/admin/attendance/profile/", {"balance": "owes"}).context["cl"]
    assert sorted(p.balance for p in owes.queryset) == [Decimal("100.00"), Decimal("750.25")]
    # A hand-edited value is ignored, not an error page.
    assert (
        admin_client.get("/admin/attendance/mpesapayment/", {"day": "2026-02-31"}).status_code
        == 200
    )


@pytest.mark.parametrize("hour", [0, 1, 12, 23])
def test_totals_and_bars_count_the_same_payments_at_any_hour_of_the_day(db, hour):
    # CI once ran at 01:46 in Nairobi: a payment 29.5 days old was in "now minus 30 days"
    # but on no bar of the chart, so the totals and the bars disagreed.
    nairobi = ZoneInfo("Africa/Nairobi")
    with time_machine.travel(datetime(2026, 12, 3, hour, 46, tzinfo=nairobi), tick=False):
        payments = [
            _payment(days, Pay.FAILED, result_code="1", result_description="Insufficient")
            for days in (0, 0.05, 0.5, 1, 28.9, 29.2, 29.5, 29.9, 30.5, 31)
        ]
        board = dashboard_figures()
    first = board.days[0].day
    inside = [p for p in payments if timezone.localdate(p.initiated_at) >= first]
    assert board.payments_finished == len(inside)
    assert [(f.result_code, f.count) for f in board.top_failures] == [("1", len(inside))]
    assert board.since == datetime(2026, 11, 4, tzinfo=nairobi)


def test_the_chart_has_a_bar_per_day_linking_to_its_payments_and_a_table_behind_it(
    seeded, admin_client
):
    page = admin_client.get("/admin/").content.decode()
    chart = re.search(r'<svg class="sf-chart".*?</svg>', page, re.S).group(0)
    days = re.findall(r'href="/admin/attendance/mpesapayment/\?day=(\d{4}-\d{2}-\d{2})"', chart)
    assert len(days) == 30 and days[-1] == timezone.localdate().isoformat()
    today = timezone.localdate().strftime("%a %d %b")
    assert f"{today}: 1 completed, 0 failed, 0 cancelled" in chart
    assert "<summary>The same figures as a table</summary>" in page


def test_crew_cannot_reach_the_dashboard(crew_client):
    response = crew_client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("hour", [0, 10, 19, 23])
def test_places_to_fill_count_and_list_only_this_weeks_events_still_to_come(db, admin_client, hour):
    """Wednesday at several hours: Monday's event is over and Wednesday 09:00's has started
    (neither can be filled now); Thursday's is to come and is the only one counted and listed."""
    nairobi = ZoneInfo("Africa/Nairobi")
    role = CrewRoleFactory(name="Engineer")
    with time_machine.travel(datetime(2026, 12, 9, hour, 30, tzinfo=nairobi), tick=True):
        for name, day, at in (
            ("Monday gig", 7, 18),
            ("Wednesday breakfast", 9, 9),
            ("Safari Sevens", 10, 18),
        ):
            starts = datetime(2026, 12, day, at, tzinfo=nairobi)
            event = EventFactory(name=name, starts_at=starts)
            EventRoleRequirement.objects.create(event=event, role=role, needed=2)
        page = admin_client.get("/admin/").content.decode()
        started = 1 if hour >= 9 else 0  # Wednesday breakfast has started from 09:00
        assert f"{4 - 2 * started} place" in page
        link = re.search(r'href="(/admin/attendance/event/\?[^"]+)"', page).group(1)
        listed = admin_client.get(link.replace("&amp;", "&")).context["cl"].queryset
        expected = ["Safari Sevens"] if started else ["Wednesday breakfast", "Safari Sevens"]
        assert sorted(event.name for event in listed) == sorted(expected)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("width", "phone"), [(375, True), (1280, False)])
def test_the_dashboard_reads_at_phone_and_desktop_width(
    make_browser, live_server, seeded, width, phone
):
    from tests.support.browser import (
        assert_fits_the_width,
        assert_no_serious_accessibility_problems,
        log_in,
        screenshot,
    )

    boss = UserFactory(username="njeri", is_staff=True, is_superuser=True)
    boss.set_password("dashboard-pass-2026")
    boss.save()
    driver = make_browser(width, phone=phone)
    log_in(driver, live_server, "njeri", "dashboard-pass-2026", "/admin/", admin=True)
    text = driver.find_element("css selector", ".sf-dash").text
    assert "Safari Sevens" in text and "Engineer 1/2" in text
    assert "38%" in text  # payment success, 3 of 8
    assert driver.find_elements("css selector", ".sf-chart a") != []
    assert_fits_the_width(driver, width)
    assert_no_serious_accessibility_problems(driver, "dashboard")
    driver.find_element("css selector", ".sf-dash details summary").click()
    assert_no_serious_accessibility_problems(driver, "dashboard with its table")
    screenshot(driver, "admin-dashboard")


def test_the_dashboard_says_what_waits_for_finance_and_links_to_it(db, admin_client):
    import uuid

    from attendance.models import Payout, PayRunMember
    from tests.support.pay import approved_run

    run, _members, _finance = approved_run(["0712000100", "0712000200"])
    slips = list(PayRunMember.objects.filter(pay_run=run).order_by("pk"))
    for slip, code in zip(slips, ["2040", "not_owed"], strict=True):
        Payout.objects.create(
            pay_run=run,
            payslip=slip,
            user=slip.user,
            phone_number="254712000100",
            amount=1500,
            originator_conversation_id=f"SF-{uuid.uuid4()}",
            status="failed",
            result_code=code,
        )
    PayRunFactory(
        period_start=run.period_start, period_end=run.period_end, created_by=_finance
    )  # drawn up, waiting for its checker
    page = admin_client.get("/admin/").content.decode()
    assert "1 payout not paid" in page  # the one that owes nothing is not counted
    listed = admin_client.get("/admin/attendance/payout/", {"unpaid": "1"}).context["cl"]
    assert [p.result_code for p in listed.queryset] == ["2040"]
    assert "1 pay run waiting for approval" in page
    drafts = admin_client.get("/admin/attendance/payrun/", {"status__exact": "draft"})
    assert drafts.context["cl"].queryset.count() == 1
