"""Pages that follow the server give up and say so (issue 27): the job page polled forever
when its progress URL failed; now it backs off, stops after a few failures and tells staff.
The page's timers run a hundred times faster here, so minutes of backing off take a second."""

import time

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from attendance.admin import jobs as jobs_admin
from tests.support.browser import log_in, screenshot
from tests.support.factories import BulkJobFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "poll-pass-2026"
FAST_TIMERS = """
  const slow = window.setTimeout;
  window.setTimeout = (fn, ms, ...args) => slow(fn, (ms || 0) / 100, ...args);
"""


def test_the_job_page_stops_asking_after_failures_and_says_so(
    desktop_browser, live_server, monkeypatch
):
    admin = UserFactory(username="grace", is_staff=True, is_superuser=True)
    admin.set_password(PASSWORD)
    admin.save()
    job = BulkJobFactory(created_by=admin)
    asked = []

    def broken(*, job, items_since):
        asked.append(job.pk)
        raise RuntimeError("the progress view is down")

    # The function the view calls (the URLconf holds the view itself once it is loaded).
    monkeypatch.setattr(jobs_admin, "bulk_job_progress", broken)
    driver = desktop_browser
    log_in(driver, live_server, "grace", PASSWORD, "/admin/", admin=True)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FAST_TIMERS})
    driver.get(f"{live_server.url}/admin/attendance/bulkjob/{job.pk}/change/")
    note = WebDriverWait(driver, 20).until(
        lambda d: d.find_elements("css selector", ".sf-poll-stopped")
    )[0]
    screenshot(driver, "job-page-gave-up")
    assert "cannot reach the server" in note.text and note.get_attribute("role") == "status"
    count = len(asked)
    assert count == 5  # then it stops: no request after it said so
    time.sleep(1)  # a hundred seconds of the page's time: proving nothing more is asked
    assert len(asked) == count
