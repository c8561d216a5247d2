"""Exports behind PgBouncer's transaction pooling (issue 30): with
DISABLE_SERVER_SIDE_CURSORS the payroll still streams, a chunk of rows per query, in order."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from attendance.models import EventCrew, PayRun, PayRunLine, TimesheetLine
from attendance.services.jobs.exports import payroll_rows
from tests.support.factories import EventFactory, UserFactory
from tests.support.pay import role_with

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]
MEMBERS, EVENTS = 1_500, 3  # 4,500 lines: two full chunks of 2,000 and a part


@pytest.fixture
def no_server_side_cursors():
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    yield
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False


def _big_run():
    starts = timezone.now() - timedelta(days=5)
    events = [
        EventFactory(
            starts_at=starts + timedelta(days=n), ends_at=starts + timedelta(days=n, hours=8)
        )
        for n in range(EVENTS)
    ]
    role = role_with("Stagehand", day_rate=Decimal("1500"))
    members = UserFactory.create_batch(MEMBERS)
    crew = EventCrew.objects.bulk_create(
        EventCrew(event=e, user=m, role=role, status="completed", confirmed_at=e.starts_at)
        for e in events
        for m in members
    )
    lines = TimesheetLine.objects.bulk_create(
        TimesheetLine(
            assignment=a,
            event_id=a.event_id,
            user_id=a.user_id,
            role_name="Stagehand",
            attendance_status="present",
            rule="Day rate",
            base_pay=Decimal("1500"),
            amount=Decimal("1500"),
            status="paid",
        )
        for a in crew
    )
    run = PayRun.objects.create(period_start=starts.date(), period_end=starts.date())
    PayRunLine.objects.bulk_create(
        PayRunLine(pay_run=run, line=line, user_id=line.user_id, amount=Decimal("1500"))
        for line in lines
    )
    return run, members, events


def test_the_payroll_streams_in_chunks_without_server_side_cursors(no_server_side_cursors):
    run, members, events = _big_run()
    with CaptureQueriesContext(connection) as queries:
        rows = list(payroll_rows(run))
    assert len(rows) == MEMBERS * EVENTS
    # In the payroll's order: by name, then each member's events in date order.
    expected = [
        (f"{m.first_name} {m.last_name}".strip() or m.username, e.name)
        for m in sorted(members, key=lambda m: (m.first_name, m.last_name, m.pk))
        for e in events
    ]
    assert [(row[0], row[3]) for row in rows] == expected
    chunked = [q["sql"] for q in queries if 'FROM "attendance_payrunline"' in q["sql"]]
    # The ids in order (numbers only), then one query per 2,000 rows: never all rows at once.
    assert len(chunked) == 1 + 3
    assert all(" IN (" in sql for sql in chunked[1:])
