"""2,000 crew invitations by SMS against the Africa's Talking simulator over HTTP.

Baseline, in the same run: a bare loop of the official SDK's `send` to the same simulator
(no database, no templates), one message after the other.

The app, in two phases as in production:
1. writing: `crew_invite` for each member (lock the assignment, give it its codes, render the
   SMS and the email held as its fallback, write both rows, commit), as the admin's bulk
   invitation job does; the delivery tasks it queues are held back and counted;
2. sending: the outbox drains those rows in one process as one worker runs the batch tasks
   (claim a batch of NOTIFICATION_BATCH_SIZE in one UPDATE, then send each through the SDK
   and store AT's answer).
Prints messages per second of the bare loop and of the outbox's sending, their ratio
(target >= 50%), the writing rate on its own, and duplicates: texts the simulator received
per invitation above one (target 0).

Then a year of texts (`BENCH_SMS_ROWS`, 300,000 spread over 12 months, a tenth undelivered):
the admin's SMS list, its filters, a phone search and a text's page, p95 against 300 ms.

`BENCH_SMS=500` runs a smaller batch; `BENCH_SMS_ROWS=0` skips the year of texts.
"""

import os
import secrets
import sys
from collections import Counter
from datetime import timedelta

os.environ.update(
    {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "ERROR",
        "CELERY_TASK_ALWAYS_EAGER": "True",
        "SINGLE_BOX": "True",  # tasks run in this process, on purpose
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_PASS_KEY": "sim-pass-key",
        "SMS_ENABLED": "True",
        "AT_API_KEY": "sim-at-api-key",
    }
)
from common import Timer, empty_tables, log_in_staff, setup_django, time_pages

COUNT = int(os.environ.get("BENCH_SMS", "2000"))
ROWS = int(os.environ.get("BENCH_SMS_ROWS", "300000"))


def crew(count):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from attendance.models import CrewRole, EmailNotification, Event, EventCrew, Profile, SmsMessage

    User = get_user_model()
    empty_tables(SmsMessage, EmailNotification, EventCrew, Event, CrewRole, Profile, User)
    users = User.objects.bulk_create(
        User(username=f"crew{n}", first_name="Wanjiku", last_name=f"Kamau {n}", email=f"c{n}@x.ke")
        for n in range(count)
    )
    Profile.objects.bulk_create(
        Profile(user=u, phone_number=f"2547{n:06d}01"[:12]) for n, u in enumerate(users)
    )
    start = timezone.now() + timedelta(days=5)
    event = Event.objects.create(
        name="Safaricom Jazz Festival 2026",
        client="Safaricom",
        venue="Ngong Racecourse, Nairobi",
        starts_at=start,
        ends_at=start + timedelta(hours=8),
        call_time=start - timedelta(hours=3),
        status=Event.Status.CONFIRMED,
    )
    role = CrewRole.objects.create(name="Stagehand")
    EventCrew.objects.bulk_create(EventCrew(event=event, user=u, role=role) for u in users)
    return list(EventCrew.objects.filter(event=event).order_by("pk").values_list("pk", flat=True))


def main():
    setup_django(db_suffix="_bench")
    import requests
    from africastalking.SMS import SMSService
    from django.conf import settings

    from attendance.models import EventCrew, SmsMessage
    from attendance.services.crew.assignments import crew_invite
    from attendance.services.messaging import sms as sms
    from attendance.sms.simulator import AfricasTalkingSimulator

    simulator = AfricasTalkingSimulator(report_delay=3600).start()  # reports: not measured
    settings.AT_USERNAME = simulator.state.username
    settings.AT_API_KEY = simulator.state.api_key
    settings.AT_BASE_URL = simulator.url
    settings.SMS_DEFAULT_CHANNEL = "sms"
    sms._clients.clear()

    class Local(SMSService):
        def _init_service(self):
            super()._init_service()
            self._baseUrl = simulator.url + "/version1"

    bare = Local(simulator.state.username, simulator.state.api_key)
    text = "Sound Fusion: Stagehand at Safaricom Jazz Festival, call Sat 5 Dec 13:00. Answer"
    with Timer() as baseline:
        for n in range(COUNT):
            bare.send(
                f"{text} https://crew.soundfusion.co.ke/K7P2Q9XW{n:04d}/", [f"+2547{n:06d}01"[:13]]
            )
    requests.post(f"{simulator.url}/simulator/reset", timeout=5)

    ids = crew(COUNT)
    queued: list[int] = []
    sms._queue = queued.extend  # phase 1 only writes; phase 2 sends what it queued
    with Timer() as writing:
        for pk in ids:
            crew_invite(assignment=EventCrew(pk=pk))
    size = settings.NOTIFICATION_BATCH_SIZE
    outcomes: Counter = Counter()
    with Timer() as ours:
        # As a worker runs the batch tasks crew_invite queued: NOTIFICATION_BATCH_SIZE ids each.
        for start in range(0, len(queued), size):
            batch = queued[start : start + size]
            outcomes.update(sms.outbox_deliver_batch(sms.SMS_OUTBOX, batch, sms.sms_deliver_task))
    sent = SmsMessage.objects.filter(status="sent").count()
    texts = requests.get(f"{simulator.url}/simulator/messages", timeout=30).json()
    per_link = Counter(t["message"].split("/")[-2] for t in texts)
    duplicates = sum(n - 1 for n in per_link.values() if n > 1)
    bare_rate, our_rate = COUNT / baseline.seconds, COUNT / ours.seconds
    print(f"SMS invitations: {COUNT} crew, one festival, simulator over HTTP on loopback")
    print(f"  bare SDK loop:  {baseline.seconds:6.1f} s  {bare_rate:6.1f} messages/s")
    print(
        f"  outbox sending: {ours.seconds:6.1f} s  {our_rate:6.1f} messages/s  "
        f"({our_rate / bare_rate:.0%} of the bare loop; target >= 50%)"
    )
    print(
        f"  writing the invitations (SMS + held email, before sending): {writing.seconds:.1f} s, "
        f"{COUNT / writing.seconds:.1f} invitations/s"
    )
    print(
        f"  sent {sent}/{COUNT} {dict(outcomes)}, texts received {len(texts)}, "
        f"duplicates {duplicates}"
    )
    simulator.stop()
    ok = sent == COUNT and not duplicates and our_rate >= 0.5 * bare_rate
    if ROWS:
        ok &= year_of_texts()
    if not ok:
        sys.exit("target missed")


def year_of_texts():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from attendance.models import SmsMessage

    call_command("collectstatic", interactive=False, verbosity=0)
    users = list(get_user_model().objects.filter(username__startswith="crew")[:500])
    batch = []
    with Timer() as building:
        for n in range(ROWS):
            user = users[n % len(users)]
            batch.append(
                SmsMessage(
                    user=user,
                    phone_number=f"2547{n % 100000000:08d}",
                    notification_type=("crew_invitation", "crew_reminder", "payment_confirmation")[
                        n % 3
                    ],
                    message=f"Sound Fusion reminder {n}: call Sat 5 Dec 16:00 at KICC.",
                    status="sent" if n % 50 else "failed",
                    provider_message_id=f"ATXid_bench_{n}",
                    cost="0.8000",
                    cost_currency="KES",
                    delivery_status="Failed" if n % 10 == 0 else "Success",
                )
            )
            if len(batch) == 10000:
                SmsMessage.objects.bulk_create(batch)
                batch = []
        SmsMessage.objects.bulk_create(batch)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE attendance_smsmessage SET created_at = now() - (id % 365) * interval "
                "'1 day' - (id % 86400) * interval '1 second'"
            )
            cursor.execute("VACUUM ANALYZE attendance_smsmessage")
    print(f"a year of texts: {SmsMessage.objects.count():,} rows built in {building.seconds:.0f} s")
    admin = get_user_model().objects.create_superuser("bench-admin", "a@x.ke", "pw-bench-123")
    client = Client()
    log_in_staff(client, admin)
    month = (SmsMessage.objects.order_by("-created_at").first().created_at).strftime("%Y-%m")
    text = SmsMessage.objects.order_by("pk")[ROWS // 2]
    base = "/admin/attendance/smsmessage/"
    pages = [
        ("SMS list (with cost totals per month)", base, 300),
        ("undelivered", f"{base}?delivery=undelivered", 300),
        ("failed", f"{base}?status__exact=failed", 300),
        ("reminders", f"{base}?notification_type__exact=crew_reminder", 300),
        ("one month", f"{base}?month={month}", 300),
        ("phone search", f"{base}?q=0{text.phone_number[3:]}", 300),
        ("page 50", f"{base}?p=50", 300),
        ("a text", f"{base}{text.pk}/change/", 300),
        ("SMS callbacks", "/admin/attendance/smscallback/", 300),
    ]
    return time_pages(client, pages)


if __name__ == "__main__":
    main()
