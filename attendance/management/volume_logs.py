"""A year of the logs beside the business data: texts, task results and sign-in records.

Split from volume.py, which seeds what the business does (crew, events, payments, emails); these
are what the machinery records, for the admin's lists of texts, task results and sign-ins to be
measured at a year (`seed_demo --texts --task-results --sign-ins`). Bulk inserts for the same
reason as there, and safe to run again: each tops up to the asked-for count.
"""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from attendance.management.volume import BATCH, dates_as_given, spread

SEEDED_TEXT = "SoundFusion: Generated event"
_TEXT = "SoundFusion: {event} call time {hour}:00 at Nairobi. Reply YES to confirm, NO to decline."
_TEXT_SW = "SoundFusion: {event} saa {hour}:00 Nairobi. Jibu NDIYO kuthibitisha — asante 🙏"
# What Africa's Talking reports after it took a text (AT's own words), in rough proportion.
_DELIVERY = [("Success", 85), ("Failed", 4), ("Rejected", 1), ("Expired", 1), ("Buffered", 2)]


def bulk_texts(count: int, members: list, rng: random.Random) -> int:
    """A year of texts: most taken by AT and delivered, some failed, some never reported."""
    from attendance.models import SmsMessage

    already = SmsMessage.objects.filter(message__startswith=SEEDED_TEXT).count()
    types = [t for t, _ in SmsMessage._meta.get_field("notification_type").choices]
    outcomes, weights = zip(*_DELIVERY, strict=True)
    for start in range(already, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            member = members[n % len(members)]
            at = spread(n, count, rng)
            swahili = n % 9 == 0  # an emoji or a long dash: UCS-2, 70 characters a part
            text = (_TEXT_SW if swahili else _TEXT).format(
                event=f"Generated event {n % 3000:05d}", hour=8 + n % 10
            )
            taken = n % 53 != 0
            delivery = rng.choices(outcomes, weights)[0] if taken and n % 31 else ""
            rows.append(
                SmsMessage(
                    phone_number=member.profile.phone_number or "254700000000",
                    user=member,
                    notification_type=types[n % len(types)],
                    message=text,
                    encoding="UCS-2" if swahili else "GSM-7",
                    parts=2 if swahili else 1,
                    status="sent" if taken else "failed",
                    provider_message_id=f"ATXid_seed{n:09d}" if taken else None,
                    provider_status="Success" if taken else "InvalidPhoneNumber",
                    cost=Decimal("1.6000") * (2 if swahili else 1) if taken else None,
                    cost_currency="KES" if taken else "",
                    delivery_status=delivery,
                    failure_reason="DeliveryFailure" if delivery == "Failed" else "",
                    delivered_at=at + timedelta(seconds=9) if delivery == "Success" else None,
                    reported_at=at + timedelta(seconds=9) if delivery else None,
                    failed_attempts=0 if taken else 1,
                    last_error="" if taken else "InvalidPhoneNumber",
                    sent_at=at if taken else None,
                    created_at=at,
                )
            )
        with dates_as_given(SmsMessage, "created_at"):
            SmsMessage.objects.bulk_create(rows)
    return count - already


WEEK = timedelta(days=7)


def bulk_task_results(count: int, rng: random.Random) -> int:
    """A week of stored task results (CELERY_RESULT_EXPIRES keeps seven days of them)."""
    from django_celery_results.models import TaskResult

    from attendance.services.ops.schedules import PERIODIC_TASKS

    already = TaskResult.objects.filter(task_id__startswith="seed-").count()
    # Only the beat's jobs keep results (the others ignore theirs): each as often as it runs.
    periodic = {task: name for name, (task, _) in PERIODIC_TASKS.items()}
    names = list(periodic)
    weights = [1 / seconds for _, seconds in PERIODIC_TASKS.values()]
    start_at = timezone.now() - WEEK
    for start in range(already, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            name = rng.choices(names, weights)[0]
            at = start_at + WEEK * (n / max(count, 1))
            failed = n % 211 == 0
            rows.append(
                TaskResult(
                    task_id=f"seed-{n:08d}-{rng.getrandbits(64):016x}",
                    task_name=name,
                    periodic_task_name=periodic[name],
                    task_args="()",
                    task_kwargs="{}",
                    status="FAILURE" if failed else "SUCCESS",
                    worker=f"celery@node-{'ab'[n % 2]}",
                    content_type="application/json",
                    content_encoding="utf-8",
                    result='{"exc_type": "TimeoutError"}' if failed else '{"queued": 0}',
                    traceback="Traceback (most recent call last): ..." if failed else None,
                    date_created=at,
                    date_started=at,
                    date_done=at + timedelta(milliseconds=rng.randint(20, 900)),
                )
            )
        with dates_as_given(TaskResult, "date_created", "date_done"):
            TaskResult.objects.bulk_create(rows)
    return count - already


_AGENTS = [
    "Mozilla/5.0 (Linux; Android 13; TECNO KI7) AppleWebKit/537.36 Chrome/120 Mobile Safari",
    "Mozilla/5.0 (Linux; Android 12; SM-A135F) AppleWebKit/537.36 Chrome/119 Mobile Safari",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36",
]


def bulk_sign_ins(count: int, members: list, rng: random.Random) -> int:
    """A year of sign-ins (django-axes' access log) and some failed ones still counted."""
    from axes.models import AccessAttempt, AccessLog

    already = AccessLog.objects.filter(session_hash__startswith="seed").count()
    for start in range(already, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            member = members[n % len(members)]
            at = spread(n, count, rng)
            rows.append(
                AccessLog(
                    user_agent=_AGENTS[n % len(_AGENTS)],
                    ip_address=f"105.{n % 200}.{(n // 200) % 250}.{n % 250 + 1}",
                    username=member.username,
                    http_accept="text/html,application/xhtml+xml",
                    path_info="/accounts/login/" if n % 7 else "/admin/login/",
                    attempt_time=at,
                    logout_time=at + timedelta(minutes=rng.randint(2, 90)) if n % 3 else None,
                    session_hash=f"seed{n:060d}",
                )
            )
        with dates_as_given(AccessLog, "attempt_time"):
            AccessLog.objects.bulk_create(rows)
    attempts = [
        AccessAttempt(
            user_agent=_AGENTS[n % len(_AGENTS)],
            ip_address=f"41.90.{n % 250}.{n % 200 + 1}",
            username=members[n % len(members)].username,
            http_accept="text/html",
            path_info="/accounts/login/",
            get_data="",
            post_data="username=" + members[n % len(members)].username,
            failures_since_start=1 + n % 4,
            attempt_time=timezone.now() - timedelta(minutes=n),
        )
        for n in range(min(count // 100, 2000))
    ]
    with dates_as_given(AccessAttempt, "attempt_time"):
        AccessAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
    return count - already
