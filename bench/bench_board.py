"""The staffing board, open roles and the calendar feed at a year of a busy company.

Builds (once, then reuses) `<db>_board`: the demo plus 2,000 members and 3,000 past events of
eight crew each (24,000 assignments: the track records the board ranks by), a quarter of the
members doing each role, a tenth with dates marked unavailable, and a 2,000-person festival
needing 300 stagehands. Then prints p50 / p95 and the query count, with production settings:

- the festival's board for its stagehands (every member considered and ranked; target
  p95 < 300 ms), the same with a name searched, and a small event's board;
- a member's Open roles and calendar feed (portal; target < 100 ms).

`BENCH_SCALE=0.1` builds a tenth.
"""

import os
import secrets
import sys
from datetime import timedelta

os.environ.update(
    {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "ERROR",
        "CELERY_TASK_DEFAULT_QUEUE": "bench-board",
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_PASS_KEY": "sim-pass-key",
    }
)
from common import Timer, log_in_staff, setup_django, time_pages

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
MEMBERS = max(int(2_000 * SCALE), 50)
EVENTS = max(int(3_000 * SCALE), 20)


def build():
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from attendance.models import (
        CrewRole,
        Event,
        EventCrew,
        EventRoleRequirement,
        Profile,
        Unavailability,
    )

    if Event.objects.filter(name="Bench festival").exists():
        print(f"data set: reused ({EventCrew.objects.count():,} assignments)")
        return Event.objects.get(name="Bench festival")
    with Timer() as t:
        call_command("seed_demo", crew=MEMBERS, events=EVENTS, quiet=True)
        roles = list(CrewRole.objects.order_by("pk"))
        profiles = list(Profile.objects.filter(user__username__startswith="crew"))
        links = [
            Profile.roles.through(profile_id=p.pk, crewrole_id=roles[n % len(roles)].pk)
            for n, p in enumerate(profiles)
        ]
        Profile.roles.through.objects.bulk_create(links, ignore_conflicts=True)
        starts = timezone.now() + timedelta(days=20)
        today = timezone.localdate(starts)
        Unavailability.objects.bulk_create(
            Unavailability(
                user_id=p.user_id,
                starts_on=today - timedelta(days=n % 5),
                ends_on=today + timedelta(days=n % 3),
                reason="Bench",
            )
            for n, p in enumerate(profiles[::10])
        )
        festival = Event.objects.create(
            name="Bench festival",
            venue="Uhuru Gardens",
            starts_at=starts,
            ends_at=starts + timedelta(hours=12),
            call_time=starts - timedelta(hours=3),
        )
        stagehand = CrewRole.objects.get(name="Stagehand")
        EventRoleRequirement.objects.create(event=festival, role=stagehand, needed=300)
        EventCrew.objects.bulk_create(
            EventCrew(
                event=festival,
                user_id=p.user_id,
                role=stagehand,
                status=EventCrew.Status.CONFIRMED,
                confirmed_at=timezone.now(),
            )
            for p in profiles[:200]
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"data set: built in {t.seconds:.0f} s ({EventCrew.objects.count():,} assignments)")
    return festival


def main():
    setup_django("_board")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from attendance.models import CrewRole, Event
    from attendance.services.crew.calendar import calendar_feed_start

    festival = build()
    stagehand = CrewRole.objects.get(name="Stagehand")
    small = Event.objects.filter(name="Safaricom Jazz Festival").first() or festival
    User = get_user_model()
    staff = Client()
    log_in_staff(staff, User.objects.get(username="admin"))
    members = User.objects.filter(is_active=True).count()
    print(f"{members:,} members considered for each role")
    ok = time_pages(
        staff,
        [
            (
                "board: festival stagehands (all ranked)",
                f"/admin/attendance/event/{festival.pk}/board/?role={stagehand.pk}",
                300,
            ),
            (
                "board: a name searched",
                f"/admin/attendance/event/{festival.pk}/board/?role={stagehand.pk}&q=wanj",
                300,
            ),
            ("board: a small event", f"/admin/attendance/event/{small.pk}/board/", 300),
        ],
    )
    member = User.objects.get(username="wanjiku")
    token = calendar_feed_start(user=member).calendar_token
    portal = Client()
    portal.force_login(member)
    ok &= time_pages(
        portal,
        [
            ("portal: open roles", "/crew/open-roles/", 100),
            ("portal: availability", "/crew/availability/", 100),
            ("calendar feed", f"/calendar/{token}.ics", 100),
        ],
    )
    print("all targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
