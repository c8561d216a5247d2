"""Crew pay in Chromium: a member disputes a line on a phone and reads their payslip; Finance
approves a pay run in admin. axe-core, 44 px tap targets and no sideways scroll on each page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import LedgerEntry, PayRun, TimesheetLine
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.runs import pay_run_approve, pay_run_create
from attendance.services.pay.timesheets import timesheet_approve
from tests.support.browser import (
    DESKTOP_WIDTH,
    PHONE_WIDTH,
    assert_fits_the_width,
    assert_no_serious_accessibility_problems,
    click_and_wait_for,
    log_in,
    open_page,
    screenshot,
    small_tap_targets,
)
from tests.support.factories import EventFactory, UserFactory
from tests.support.pay import role_with, worked

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "portal-pass-2026"
D = Decimal


def _person(username, **kwargs):
    user = UserFactory(username=username, first_name=username.capitalize(), **kwargs)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def pay_world(db):
    member = _person("wanjiku")
    manager = _person("daniel", is_staff=True, is_superuser=True)
    finance = _person("mercy", is_staff=True, is_superuser=True)
    checker = _person("grace", is_staff=True, is_superuser=True)
    role = role_with("FOH engineer", day_rate=D("4000"), hourly_rate=D("500"), minimum_hours=D(6))
    events = []
    for days, name in ((9, "Safari Sevens hospitality"), (2, "Sunday service live sound")):
        starts = timezone.now() - timedelta(days=days)
        event = EventFactory(
            name=name,
            starts_at=starts,
            ends_at=starts + timedelta(hours=8),
            call_time=starts - timedelta(hours=1),
        )
        worked(event, member, role, "9.5")
        crew_complete_event(event=event, by=manager)
        events.append(event)
    timesheet_approve(lines=TimesheetLine.objects.filter(event=events[0]), by=manager)
    day = timezone.localtime(events[0].starts_at).date()
    paid = pay_run_create(period_start=day, period_end=day, by=finance)
    pay_run_approve(pay_run=paid, by=checker)
    return {"member": member, "events": events, "paid": paid, "finance": finance, "role": role}


def test_a_member_disputes_a_line_and_reads_their_payslip_on_a_phone(
    make_browser, live_server, pay_world
):
    driver = make_browser(PHONE_WIDTH, phone=True)
    log_in(driver, live_server, "wanjiku", PASSWORD, "/pay/")
    assert "Sunday service live sound" in driver.page_source
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert_no_serious_accessibility_problems(driver, "my pay")
    assert small_tap_targets(driver) == []
    assert_fits_the_width(driver, PHONE_WIDTH)
    screenshot(driver, "portal-pay")
    line = TimesheetLine.objects.get(event=pay_world["events"][1])
    card = driver.find_element("id", f"line-{line.pk}")  # its form is open (above)
    card.find_element("name", "reason").send_keys("I stayed for the load-out until 22:00")
    click_and_wait_for(
        driver,
        card.find_element("css selector", "button[type=submit]"),
        ".messages",
        "Sent to the event manager",
    )
    line.refresh_from_db()
    assert line.status == "disputed"
    assert "I stayed for the load-out until 22:00" in driver.page_source
    # The payslip of the approved run.
    open_page(driver, f"{live_server.url}/pay/runs/{pay_world['paid'].pk}/")
    assert "To be paid to you" in driver.page_source
    assert "KES 4,750.00" in driver.page_source  # 9.5 h x 500
    screenshot(driver, "portal-payslip")
    assert_no_serious_accessibility_problems(driver, "payslip")
    assert small_tap_targets(driver) == []
    assert_fits_the_width(driver, PHONE_WIDTH)


def test_finance_approves_a_pay_run_in_admin(make_browser, live_server, pay_world):
    TimesheetLine.objects.filter(status="open").update(status="approved")
    day = timezone.localtime(pay_world["events"][1].starts_at).date()
    run = pay_run_create(period_start=day, period_end=day, by=pay_world["finance"])
    driver = make_browser(DESKTOP_WIDTH, phone=False)
    log_in(
        driver,
        live_server,
        "grace",
        PASSWORD,
        f"/admin/attendance/payrun/{run.pk}/change/",
        admin=True,
    )
    assert_no_serious_accessibility_problems(driver, "pay run")
    screenshot(driver, "admin-payrun")
    # The approval runs as a background job (here in the web process, after the request):
    # the browser lands on its progress page.
    click_and_wait_for(
        driver, driver.find_element("id", "approve-payrun"), ".messagelist", "Started"
    )
    assert_no_serious_accessibility_problems(driver, "pay run approval progress")
    run.refresh_from_db()
    assert run.status == PayRun.Status.APPROVED
    assert LedgerEntry.objects.filter(kind="earning").count() == 2
    open_page(driver, f"{live_server.url}/admin/attendance/timesheetline/", "#result_list")
    assert_no_serious_accessibility_problems(driver, "timesheet lines")
    screenshot(driver, "admin-timesheetlines")
