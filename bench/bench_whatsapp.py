"""WhatsApp: sending through the outbox, and the signed webhook, each against a bare baseline.

1. Sending (`BENCH_WHATSAPP`, 1,000 invitations) against the Cloud API simulator over HTTP.
   Baseline, in the same run: a bare loop of our client's `send_template` to the same simulator
   (no database), one message after the other. The app, as in production: `crew_invite` for each
   member on WhatsApp writes the template message and the email held beside it; then the outbox
   drains those rows as a worker runs the batch tasks (claim a batch in one UPDATE, send each,
   store Meta's id). Prints both rates and their ratio (target >= 50%), and duplicates (target 0).
2. The webhook on gunicorn + PostgreSQL, closed loop, 50 connections, against a bare Django JSON
   view (`/api/health/`) on the same server, alternating rounds. Each POST is a status for a
   stored message, signed with the app secret: the view checks the signature, stores the body
   raw (one committed INSERT) and queues its processing on Redis before answering 200.
   Target: at least 50% of the bare view's throughput, no errors. Gunicorn runs as the
   shipped config does on this machine (2 x cores + 1 sync workers; `BENCH_GUNICORN` overrides).
"""

import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

os.environ.update(
    {
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "False",
        "LOG_LEVEL": "ERROR",
        "CELERY_TASK_ALWAYS_EAGER": "True",
        "SINGLE_BOX": "True",  # the sending part runs its tasks in this process
        "MPESA_CONSUMER_KEY": "sim-consumer-key",
        "MPESA_CONSUMER_SECRET": "sim-consumer-secret",
        "MPESA_PASS_KEY": "sim-pass-key",
        "WHATSAPP_ENABLED": "True",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_ACCESS_TOKEN": "sim-whatsapp-token",
        "WHATSAPP_APP_SECRET": "sim-whatsapp-app-secret",
        "WHATSAPP_VERIFY_TOKEN": "bench-verify",
    }
)
from common import Gunicorn, Timer, empty_tables, setup_django

os.environ.setdefault("BENCH_GUNICORN", f"--workers {2 * (os.cpu_count() or 1) + 1}")

COUNT = int(os.environ.get("BENCH_WHATSAPP", "1000"))
CONNECTIONS, SECONDS, ROUNDS = 50, 5, 5


def crew(count):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from attendance.models import (
        CrewRole,
        EmailNotification,
        Event,
        EventCrew,
        Profile,
        WhatsAppMessage,
        WhatsAppWebhook,
    )

    User = get_user_model()
    empty_tables(
        WhatsAppWebhook, WhatsAppMessage, EmailNotification, EventCrew, Event, CrewRole, Profile
    )
    User.objects.filter(username__startswith="wa-crew").delete()
    users = User.objects.bulk_create(
        User(
            username=f"wa-crew{n}",
            first_name="Achieng",
            last_name=f"Odhiambo {n}",
            email=f"w{n}@x.ke",
        )
        for n in range(count)
    )
    Profile.objects.bulk_create(
        Profile(
            user=u,
            phone_number=f"2547{n:06d}70"[:12],
            message_channel="whatsapp",
            whatsapp_opted_in_at=timezone.now(),
        )
        for n, u in enumerate(users)
    )
    start = timezone.now() + timedelta(days=5)
    event = Event.objects.create(
        name="Koroga Festival",
        client="Capital FM",
        venue="Two Rivers Mall Grounds",
        starts_at=start,
        ends_at=start + timedelta(hours=8),
        call_time=start - timedelta(hours=3),
        status=Event.Status.CONFIRMED,
    )
    role = CrewRole.objects.create(name="Stagehand")
    EventCrew.objects.bulk_create(EventCrew(event=event, user=u, role=role) for u in users)
    return list(EventCrew.objects.filter(event=event).order_by("pk").values_list("pk", flat=True))


def sending():
    import requests
    from django.conf import settings

    from attendance.models import EventCrew, WhatsAppMessage
    from attendance.services.crew.assignments import crew_invite
    from attendance.services.messaging import whatsapp
    from attendance.whatsapp.client import WhatsAppClient
    from attendance.whatsapp.simulator import WhatsAppSimulator

    simulator = WhatsAppSimulator(status_delay=3600).start()  # statuses: not measured here
    settings.WHATSAPP_BASE_URL = simulator.url
    whatsapp._clients.clear()
    bare = WhatsAppClient(
        base_url=simulator.url,
        version=settings.WHATSAPP_GRAPH_VERSION,
        phone_number_id=simulator.state.phone_number_id,
        access_token=simulator.state.access_token,
    )
    params = [
        ("first_name", "Achieng"),
        ("role", "Stagehand"),
        ("event", "Koroga Festival"),
        ("venue", "Two Rivers Mall Grounds"),
        ("call_time", "Sat 12 Dec, 14:00"),
        ("answer_url", "https://crew.soundfusion.co.ke/K7M2QX9PRT/"),
    ]
    with Timer() as baseline:  # what the outbox sends: the invitation with its two buttons
        for n in range(COUNT):
            bare.send_template(
                to=f"2547{n:06d}70"[:12],
                name="sf_crew_invitation_v1",
                language="en",
                params=params,
                payloads=(f"crew:{n}:yes", f"crew:{n}:no"),
                reference=f"wa:{n}",
            )
    requests.post(f"{simulator.url}/simulator/reset", timeout=5)

    ids = crew(COUNT)
    queued: list[int] = []
    whatsapp._queue = queued.extend  # writing only; the sending phase sends what it queued
    with Timer() as writing:
        for pk in ids:
            crew_invite(assignment=EventCrew(pk=pk))
    size = settings.NOTIFICATION_BATCH_SIZE
    outcomes: Counter = Counter()
    with Timer() as ours:
        for start in range(0, len(queued), size):
            batch = queued[start : start + size]
            outcomes.update(
                whatsapp.outbox_deliver_batch(
                    whatsapp.WHATSAPP_OUTBOX, batch, whatsapp.whatsapp_deliver_task
                )
            )
    sent = WhatsAppMessage.objects.filter(status="sent").count()
    received = requests.get(f"{simulator.url}/simulator/messages", timeout=30).json()
    per_member = Counter(m["to"] for m in received)
    duplicates = sum(n - 1 for n in per_member.values() if n > 1)
    simulator.stop()
    bare_rate, our_rate = COUNT / baseline.seconds, COUNT / ours.seconds
    print(f"WhatsApp invitations: {COUNT} crew, one festival, simulator over HTTP on loopback")
    print(f"  bare client loop: {baseline.seconds:6.1f} s  {bare_rate:6.1f} messages/s")
    print(
        f"  outbox sending:   {ours.seconds:6.1f} s  {our_rate:6.1f} messages/s  "
        f"({our_rate / bare_rate:.0%} of the bare loop; target >= 50%)"
    )
    print(
        f"  writing the invitations (template + held email): {writing.seconds:.1f} s, "
        f"{COUNT / writing.seconds:.1f} invitations/s"
    )
    print(
        f"  sent {sent}/{COUNT} {dict(outcomes)}, received {len(received)}, duplicates {duplicates}"
    )
    return sent == COUNT and not duplicates and our_rate >= 0.5 * bare_rate


WRK_SCRIPT = r"""
local bodies, signatures, n, i = {}, {}, 0, 0
init = function(args)
  if args[1] then
    for line in io.lines(args[1]) do
      n = n + 1
      local tab = string.find(line, "\t")
      signatures[n] = string.sub(line, 1, tab - 1)
      bodies[n] = string.sub(line, tab + 1)
    end
  end
end
request = function()
  if n == 0 then return wrk.format("GET", wrk.path) end
  i = i + 1
  local k = (i % n) + 1
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json",
    ["X-Hub-Signature-256"] = signatures[k]}, bodies[k])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.3f %.3f\n", summary.requests,
    e.connect + e.read + e.write + e.timeout + e.status, summary.duration,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def wrk(port, path, lines, seconds):
    folder = Path(tempfile.mkdtemp())
    (folder / "load.lua").write_text(WRK_SCRIPT)
    args = []
    if lines:
        (folder / "bodies.txt").write_text("\n".join(lines))
        args = ["--", str(folder / "bodies.txt")]
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(folder / "load.lua"),
            f"http://127.0.0.1:{port}{path}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(part for part in out.splitlines() if part.startswith("RESULT"))
    requests_, errors, micros, p50, p99 = line.split()[1:]
    return {
        "rate": int(requests_) / (int(micros) / 1e6),
        "p50": float(p50),
        "p99": float(p99),
        "errors": int(errors),
        "requests": int(requests_),
    }


def webhook(db_url):
    import redis
    from django.conf import settings

    from attendance.models import WhatsAppMessage, WhatsAppWebhook
    from attendance.whatsapp.simulator import status_body
    from attendance.whatsapp.webhook import signature_for

    if not shutil.which("wrk"):
        print("webhook part skipped: install wrk (apt-get install wrk)")
        return False
    messages = list(WhatsAppMessage.objects.order_by("pk")[:2000])
    lines = []
    for n, message in enumerate(messages):
        body = status_body(
            settings.WHATSAPP_PHONE_NUMBER_ID,
            wamid=message.provider_message_id,
            status=("sent", "delivered", "read")[n % 3],
            to=message.wa_number,
            reference=f"wa:{message.pk}",
        )
        import json

        raw = json.dumps(body, separators=(",", ":"))
        lines.append(f"{signature_for(raw.encode(), settings.WHATSAPP_APP_SECRET)}\t{raw}")
    env = {
        "CELERY_TASK_DEFAULT_QUEUE": "bench-whatsapp",
        "CELERY_TASK_ALWAYS_EAGER": "False",
        "WHATSAPP_APP_SECRET": settings.WHATSAPP_APP_SECRET,
    }
    path = "/api/whatsapp/webhook/"
    with Gunicorn(db_url, **env) as server:
        wrk(server.port, "/api/health/", None, 1)
        wrk(server.port, path, lines, 1)
        time.sleep(0.5)
        before = WhatsAppWebhook.objects.count()
        rounds = [
            (
                wrk(server.port, "/api/health/", None, SECONDS),
                wrk(server.port, path, lines, SECONDS),
            )
            for _ in range(ROUNDS)
        ]
        time.sleep(0.5)
        stored = WhatsAppWebhook.objects.count() - before
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(
        "bench-whatsapp.messages", "bench-whatsapp"
    )
    ratios = []
    for n, (bare, hook) in enumerate(rounds, start=1):
        for name, r in (("bare JSON view:  ", bare), ("WhatsApp webhook:", hook)):
            print(
                f"round {n} {name} {r['rate']:7.0f} req/s, p50 {r['p50']:.1f} ms, "
                f"p99 {r['p99']:.1f} ms, errors {r['errors']}"
            )
        ratios.append(hook["rate"] / bare["rate"])
    answered = sum(hook["requests"] for _, hook in rounds)
    errors = sum(hook["errors"] for _, hook in rounds)
    ratio = statistics.median(ratios)
    print(f"webhooks stored: {stored} of {answered} answered; errors {errors}")
    print(f"median ratio webhook/bare: {ratio:.2f} (target >= 0.50)")
    return ratio >= 0.5 and not errors and stored >= answered


def main():
    db_url = setup_django(db_suffix="_bench")
    ok = sending()
    ok &= webhook(db_url)
    if not ok:
        sys.exit("target missed")


if __name__ == "__main__":
    main()
