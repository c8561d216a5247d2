"""Checking in with no signal at the venue (issue 33): the venue's code kept on the phone with
the time, sent when the signal is back, accepted only as proof of that time; twice is once."""

import json
import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from attendance.models import Attendance, RefusedCheckIn
from attendance.services.attendance import AttendanceError, attendance_check_in_sent_later
from attendance.venue_codes import venue_code
from tests.support.browser import (
    log_in,
    open_page,
    wait_for_text,
    wait_until_the_worker_controls,
)
from tests.support.clock import NAIROBI
from tests.support.devtools import Offline
from tests.support.factories import AttendanceFactory, EventFactory, UserFactory
from tests.support.portal_world import PASSWORD

CALL = datetime(2026, 12, 12, 16, 0, tzinfo=NAIROBI)


@pytest.fixture
def expected(db):
    """A member on tonight's list: call 16:00, show 17:00 to 23:00."""
    event = EventFactory(
        starts_at=CALL + timedelta(hours=1), ends_at=CALL + timedelta(hours=7), call_time=CALL
    )
    return AttendanceFactory(event=event, user=UserFactory())


def _send(attendance, made, sent, code_at=None):
    code = venue_code(attendance.event_id, (code_at or made).timestamp())
    with time_machine.travel(sent, tick=False):
        return attendance_check_in_sent_later(attendance=attendance, code=code, claimed_at=made)


def test_a_check_in_kept_with_no_signal_counts_at_the_time_it_was_made(expected):
    made = CALL - timedelta(minutes=5)  # on time, with no signal
    sent = CALL + timedelta(minutes=50)  # the signal came back late
    attendance, now = _send(expected, made, sent)
    assert now
    assert attendance.check_in_at == made and attendance.check_in_sent_at == sent
    assert attendance.status == Attendance.Status.PRESENT  # judged by when it was made
    assert attendance.check_in_method == Attendance.Method.QR and attendance.check_in_proven
    assert attendance.check_in_proof == "Venue QR, made with no signal, sent 16:50"
    assert not RefusedCheckIn.objects.exists()


def test_sent_twice_it_checks_in_once(expected):
    made = CALL - timedelta(minutes=5)
    _send(expected, made, CALL)
    attendance, now = _send(expected, made, CALL + timedelta(minutes=1))
    assert not now and attendance.check_in_at == made
    assert not RefusedCheckIn.objects.exists()


@pytest.mark.parametrize(
    "made, code_at, sent, words",
    [
        # A code from 16:00 claimed as made at 15:40, to look earlier: not valid then.
        (CALL - timedelta(minutes=20), CALL, CALL + timedelta(minutes=30), "expired"),
        # An old code (a photo of the screen) with a fresh time.
        (CALL + timedelta(minutes=30), CALL, CALL + timedelta(minutes=31), "expired"),
        # Made "later than now" by more than a fast phone clock explains.
        (CALL + timedelta(minutes=10), None, CALL, "later than now"),
        # Kept longer than OFFLINE_CHECK_IN_MAX_HOURS (12).
        (CALL - timedelta(minutes=5), None, CALL + timedelta(hours=13), "too long"),
    ],
)
def test_a_doctored_or_replayed_check_in_is_refused_and_kept_for_the_manager(
    expected, made, code_at, sent, words
):
    with pytest.raises(AttendanceError) as refused:
        _send(expected, made, sent, code_at)
    expected.refresh_from_db()
    assert expected.check_in_at is None
    row = RefusedCheckIn.objects.get()
    assert row.user_id == expected.user_id and row.claimed_at == made
    assert row.reason == refused.value.message
    assert words in row.reason


def test_a_phone_clock_a_minute_fast_is_taken_as_now(expected):
    sent = CALL - timedelta(minutes=10)
    attendance, now = _send(expected, sent + timedelta(seconds=60), sent, code_at=sent)
    assert now and attendance.check_in_at == sent


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_copies_sent_at_once_check_in_once():
    event = EventFactory(
        starts_at=CALL + timedelta(hours=1), ends_at=CALL + timedelta(hours=7), call_time=CALL
    )
    attendance = AttendanceFactory(event=event, user=UserFactory())
    made = CALL - timedelta(minutes=2)
    code = venue_code(event.pk, made.timestamp())
    results, start = [], threading.Barrier(2)

    def send():
        try:
            start.wait()
            with time_machine.travel(CALL, tick=False):
                results.append(
                    attendance_check_in_sent_later(
                        attendance=Attendance.objects.get(pk=attendance.pk),
                        code=code,
                        claimed_at=made,
                    )[1]
                )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    attendance.refresh_from_db()
    assert attendance.check_in_at == made


def _post(client, event_id, body):
    return client.post(
        reverse("attendance:check_in_sent_later", args=[event_id]),
        json.dumps(body),
        content_type="application/json",
    )


def test_the_endpoint_checks_the_member_the_event_and_the_body(expected):
    client = Client()
    client.force_login(expected.user)
    made = CALL - timedelta(minutes=3)
    body = {"code": venue_code(expected.event_id, made.timestamp())}
    body["made_at"] = int(made.timestamp() * 1000)
    with time_machine.travel(CALL, tick=False):
        someone_elses = AttendanceFactory(user=UserFactory())
        assert _post(client, someone_elses.event_id, body).status_code == 404
        assert _post(client, expected.event_id, {"code": "x"}).status_code == 400
        # Kept on a shared phone by another member: it waits for them.
        other = _post(client, expected.event_id, {**body, "member": expected.user_id + 999})
        assert other.status_code == 409
        answer = _post(client, expected.event_id, {**body, "member": expected.user_id})
        assert answer.status_code == 200 and answer.json()["checked_in_now"] is True
        assert "at 15:57 with the venue's code" in answer.json()["message"]
        again = _post(client, expected.event_id, body)
        assert again.status_code == 200 and again.json()["checked_in_now"] is False
        late = dict(body, made_at=int((CALL + timedelta(minutes=30)).timestamp() * 1000))
        refused = _post(client, expected.event_id, late)
    assert refused.status_code == 400 and refused.json()["error"]["message"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(expected.user)
    assert _post(strict, expected.event_id, body).status_code == 403


def _kept(driver) -> list[dict]:
    return driver.execute_async_script(
        "const done = arguments[0]; SFCheckIns.all().then(done, () => done(null));"
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_check_in_made_with_the_network_cut_arrives_when_it_returns(browser, live_server, world):
    attendance = Attendance.objects.get(event=world["event"], user=world["member"])
    log_in(browser, live_server, "wanjiku", PASSWORD, "/")
    wait_until_the_worker_controls(browser)
    scanned = f"{live_server.url}/events/{attendance.event_id}/at-venue/"
    with Offline(browser):
        open_page(browser, scanned + venue_code(attendance.event_id) + "/")
        assert browser.find_element("tag name", "h1").text == "No connection"
        browser.find_element("id", "offline-check-in-button").click()
        wait_for_text(browser, "#app-status", "Saved: your check-in will be sent")
        kept = _kept(browser)
        assert len(kept) == 1 and kept[0]["code"] and kept[0]["member"] == str(attendance.user_id)
        attendance.refresh_from_db()
        assert attendance.check_in_at is None  # nothing reached us
    # Signal again: the open page (its "online" event) or the worker (Background Sync) sends
    # it, and the page says so.
    wait_for_text(browser, "#app-status", "with the venue's code")
    attendance.refresh_from_db()
    assert attendance.check_in_method == "qr" and attendance.check_in_sent_at is not None
    assert attendance.check_in_at <= attendance.check_in_sent_at
    assert _kept(browser) == []
    open_page(browser, f"{live_server.url}/")
    assert browser.find_element("id", "app-status").text == ""  # sent once, not again


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_doctored_time_is_refused_flagged_and_said(browser, live_server, world):
    attendance = Attendance.objects.get(event=world["event"], user=world["member"])
    log_in(browser, live_server, "wanjiku", PASSWORD, f"/events/{attendance.event_id}/")
    wait_until_the_worker_controls(browser)
    venue = f"{live_server.url}/events/{attendance.event_id}/at-venue/"
    open_page(browser, venue + venue_code(attendance.event_id) + "/")
    with Offline(browser):  # the venue's page is open when the signal goes: the tap is kept
        browser.find_element("id", "venue-check-in-button").click()
        wait_for_text(browser, "#app-status", "Saved: your check-in will be sent")
        # Someone edits the kept time to an hour ahead.
        browser.execute_async_script(
            """const done = arguments[0];
            SFCheckIns.all().then(items => {
              items[0].made_at += 3600 * 1000;
              return SFCheckIns.add(items[0]);
            }).then(() => done());"""
        )
    wait_for_text(browser, "#app-status", "was not accepted")  # sent as the signal came back
    attendance.refresh_from_db()
    assert attendance.check_in_at is None
    assert RefusedCheckIn.objects.get().user_id == attendance.user_id
    assert _kept(browser) == []


def test_the_event_manager_finds_refused_check_ins_in_admin(expected, staff_client):
    with pytest.raises(AttendanceError):
        _send(expected, CALL + timedelta(minutes=10), CALL)
    page = staff_client.get("/admin/attendance/refusedcheckin/").content.decode()
    assert expected.event.name in page and "later than now" in page
    row = RefusedCheckIn.objects.get()
    assert staff_client.get(f"/admin/attendance/refusedcheckin/{row.pk}/change/").status_code == 200
    assert staff_client.get("/admin/attendance/refusedcheckin/add/").status_code == 403
