"""A year of a busy company, for benchmarks and volume demos (`seed_demo --payments 200000`).

Bulk inserts, not the services: 200,000 payments through the ledger service one at a time
took 38 minutes. What the services guarantee is kept by construction instead: every member's
seeded ledger entries sum to zero (an opening charge, then the payments that settle it), so
each balance still equals the sum of its entries; dates are spread over the past year, so the
admin's month filters and sorting have history to work on. Safe to run again: it tops up to
the asked-for counts.
"""

from __future__ import annotations

import contextlib
import random
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from attendance.account_codes import account_code_for
from attendance.models import (
    Attendance,
    CrewRole,
    EmailNotification,
    Event,
    EventCrew,
    LedgerEntry,
    MpesaPayment,
    Profile,
    TimesheetLine,
)
from attendance.services.pay.rules import Pay, Rates, pay_for

User = get_user_model()
YEAR = timedelta(days=365)
BATCH = 5000


@contextlib.contextmanager
def dates_as_given(model, *names):
    """Let bulk inserts keep the dates we set on auto_now_add fields (history, not now)."""
    fields = [model._meta.get_field(name) for name in names]
    saved = [f.auto_now_add for f in fields]
    for f in fields:
        f.auto_now_add = False
    try:
        yield
    finally:
        for f, value in zip(fields, saved, strict=True):
            f.auto_now_add = value


def spread(n: int, count: int, rng: random.Random) -> datetime:
    """The n-th of `count` moments evenly over the past year, with a little jitter."""
    start = timezone.now() - YEAR
    return start + YEAR * (n / max(count, 1)) + timedelta(seconds=rng.randint(0, 3600))


def bulk_crew(count: int, prefix: str = "crew") -> list:
    existing = set(
        User.objects.filter(username__startswith=prefix).values_list("username", flat=True)
    )
    new = [
        User(
            username=f"{prefix}{n:05d}",
            first_name=random.Random(n).choice(FIRST_NAMES),
            last_name=f"{random.Random(-n).choice(LAST_NAMES)}-{n:05d}",
            email=f"{prefix}{n:05d}@soundfusion.local",
        )
        for n in range(count)
        if f"{prefix}{n:05d}" not in existing
    ]
    User.objects.bulk_create(new, batch_size=BATCH)
    users = list(User.objects.filter(username__startswith=prefix).order_by("username")[:count])
    have_profile = set(Profile.objects.filter(user__in=users).values_list("user_id", flat=True))
    Profile.objects.bulk_create(
        [
            Profile(user=u, phone_number=f"2547{u.pk % 100000000:08d}")
            for u in users
            if u.pk not in have_profile
        ],
        batch_size=BATCH,
    )
    # bulk_create skips Profile.save(), which gives each member their account code.
    coded = list(Profile.objects.filter(user__in=users, account_code__isnull=True).only("pk"))
    for profile in coded:
        profile.account_code = account_code_for(profile.pk)
    Profile.objects.bulk_update(coded, ["account_code"], batch_size=BATCH)
    return users


def bulk_events(count: int, members: list, rng: random.Random) -> None:
    """Past events, each with eight members who worked it (attendance and crew)."""
    tz = timezone.get_current_timezone()
    base = timezone.localdate() - timedelta(days=365)
    already = Event.objects.filter(name__startswith="Generated event").count()
    roles = list(CrewRole.objects.all()) or [CrewRole.objects.create(name="Stagehand")]
    role_pay = {role.pk: (role.name, _eight_hours_of(role)) for role in roles}
    for start in range(already, count, 500):
        with transaction.atomic():
            events = []
            for n in range(start, min(start + 500, count)):
                starts = datetime.combine(
                    base + timedelta(days=n * 365 // max(count, 1)),
                    time(rng.randint(8, 18)),
                    tzinfo=tz,
                )
                events.append(
                    Event(
                        name=f"Generated event {n:05d}",
                        client="Bench client",
                        venue="Nairobi",
                        starts_at=starts,
                        ends_at=starts + timedelta(hours=6),
                        call_time=starts - timedelta(hours=2),
                        status=Event.Status.COMPLETED,
                    )
                )
            events = Event.objects.bulk_create(events)
            attendance, crew_rows = [], []
            for event in events:
                for i, user in enumerate(rng.sample(members, min(len(members), 8))):
                    attendance.append(
                        Attendance(
                            event=event,
                            user=user,
                            status=Attendance.Status.PRESENT,
                            check_in_at=event.call_time,
                            check_out_at=event.ends_at,
                            check_in_method=Attendance.Method.ADMIN,
                            hours_worked=Decimal("8.00"),
                        )
                    )
                    crew_rows.append(
                        EventCrew(
                            event=event,
                            user=user,
                            role=roles[i % len(roles)],
                            status=EventCrew.Status.COMPLETED,
                            invitation_sent=True,
                            invitation_sent_at=event.starts_at - timedelta(days=7),
                            confirmed_at=event.starts_at - timedelta(days=6),
                            responded_at=event.starts_at - timedelta(days=6),
                            completed_at=event.ends_at,
                        )
                    )
            Attendance.objects.bulk_create(attendance, batch_size=BATCH)
            crew_rows = EventCrew.objects.bulk_create(crew_rows, batch_size=BATCH)
            TimesheetLine.objects.bulk_create(
                [_worked_line(row, role_pay) for row in crew_rows], batch_size=BATCH
            )


def _eight_hours_of(role) -> Pay:
    if role.day_rate is not None or role.hourly_rate is not None:
        rates = Rates(
            day_rate=role.day_rate,
            hourly_rate=role.hourly_rate,
            minimum_hours=role.minimum_hours,
            overtime_after_hours=role.overtime_after_hours,
            overtime_multiplier=role.overtime_multiplier,
        )
    else:
        rates = Rates(day_rate=Decimal("1500"))
    return pay_for(rates=rates, hours=Decimal("8"), attendance_status="present")


def _worked_line(row, role_pay: dict) -> TimesheetLine:
    """A year of pay lines, approved and waiting for a pay run (their crew worked 8 hours)."""
    name, pay = role_pay[row.role_id]
    return TimesheetLine(
        assignment_id=row.pk,
        event_id=row.event_id,
        user_id=row.user_id,
        role_name=name,
        attendance_status="present",
        hours=Decimal("8.00"),
        rule=pay.rule,
        rule_words=pay.words,
        base_pay=pay.base_pay,
        overtime_hours=pay.overtime_hours,
        overtime_pay=pay.overtime_pay,
        allowances=pay.allowances,
        amount=pay.total,
        status=TimesheetLine.Status.APPROVED,
    )


def bulk_payments(count: int, members: list, rng: random.Random) -> int:
    """A year of payments: 80 % completed (credited), the rest failed or cancelled."""
    already = MpesaPayment.objects.filter(checkout_request_id__startswith="ws_CO_SEED").count()
    payment_type = ContentType.objects.get_for_model(MpesaPayment)
    for start in range(already, count, BATCH):
        stop = min(start + BATCH, count)
        with transaction.atomic():
            rows = []
            for n in range(start, stop):
                member = rng.choice(members)
                status = rng.choices(["completed", "failed", "cancelled"], [8, 1, 1])[0]
                at = spread(n, count, rng)
                rows.append(
                    MpesaPayment(
                        user=member,
                        requested_by=member,
                        phone_number=member.profile.phone_number or "254700000000",
                        amount=Decimal(rng.choice([100, 250, 500, 1200, 2500])),
                        payment_purpose="Balance payment",
                        account_reference="SF Balance",
                        transaction_desc="Balance",
                        checkout_request_id=f"ws_CO_SEED{n:09d}",
                        merchant_request_id=f"29115-{n}-1",
                        status=status,
                        result_code="0" if status == "completed" else "1032",
                        result_description="The service request is processed successfully."
                        if status == "completed"
                        else "Request cancelled by user",
                        receipt_number=f"SD{n:08d}" if status == "completed" else "",
                        paid_amount=None,
                        settled_via="callback",
                        initiated_at=at,
                        completed_at=at + timedelta(seconds=20) if status == "completed" else None,
                        settled_at=at + timedelta(seconds=20),
                        transaction_date=at + timedelta(seconds=18)
                        if status == "completed"
                        else None,
                    )
                )
            with dates_as_given(MpesaPayment, "initiated_at"):
                payments = MpesaPayment.objects.bulk_create(rows)
            _credit_in_bulk([p for p in payments if p.status == "completed"], payment_type)
    return count - already


def _credit_in_bulk(payments: list, payment_type) -> None:
    """Each completed payment's ledger credit, after an opening charge of the same total per
    member a moment before: every member's seeded entries sum to zero, so the balance (which
    equals the sum of all entries) is unchanged."""
    by_member: dict[int, list] = defaultdict(list)
    for payment in payments:
        by_member[payment.user_id].append(payment)
    entries = []
    for user_id, theirs in by_member.items():
        total = sum((p.amount for p in theirs), Decimal(0))
        first = min(p.initiated_at for p in theirs)
        entries.append(
            LedgerEntry(
                user_id=user_id,
                kind=LedgerEntry.Kind.CHARGE,
                amount=total,
                balance_after=total,
                description="Equipment hire (seeded history)",
                created_at=first - timedelta(hours=1),
            )
        )
        running = total
        for payment in sorted(theirs, key=lambda p: p.initiated_at):
            running -= payment.amount
            entries.append(
                LedgerEntry(
                    user_id=user_id,
                    kind=LedgerEntry.Kind.PAYMENT,
                    amount=-payment.amount,
                    balance_after=running,
                    description=f"M-Pesa payment {payment.receipt_number}",
                    created_at=payment.completed_at,
                    source_type=payment_type,
                    source_id=payment.pk,
                )
            )
    with dates_as_given(LedgerEntry, "created_at"):
        LedgerEntry.objects.bulk_create(entries, batch_size=BATCH)
    ids = [p.pk for p in payments]
    with connection.cursor() as cursor:
        # One statement links each payment to its credit (bulk_update would send 160,000);
        # by member too, so that the one-credit-per-source index answers each lookup.
        cursor.execute(
            f"UPDATE {MpesaPayment._meta.db_table} SET ledger_entry_id = ("  # noqa: S608
            f"SELECT e.id FROM {LedgerEntry._meta.db_table} e WHERE "
            f"e.user_id = {MpesaPayment._meta.db_table}.user_id AND e.source_type_id = %s "
            f"AND e.source_id = {MpesaPayment._meta.db_table}.id AND e.kind = 'payment') "
            f"WHERE id IN ({','.join(['%s'] * len(ids))})",
            [payment_type.pk, *ids],
        )


_BODY = (
    "Hello {name},\n\nA change to {event}: the call time is now {hour}:00 and the venue "
    "stays {venue}. Please confirm in the crew portal that you have seen this.\n\n"
    "Black crew shirts. Load in through the service gate; ask security for the list.\n"
)


def bulk_notifications(count: int, members: list, rng: random.Random) -> int:
    """A year of sent emails with bodies of a real size (an HTML part of a few KB)."""
    already = EmailNotification.objects.filter(subject__startswith="[seed]").count()
    types = [t for t, _ in EmailNotification.Type.choices if t != "password_reset"]
    for start in range(already, count, BATCH):
        rows = []
        for n in range(start, min(start + BATCH, count)):
            member = members[n % len(members)]
            at = spread(n, count, rng)
            text = _BODY.format(
                name=member.first_name or member.username,
                event=f"Generated event {n % 3000:05d}",
                hour=8 + n % 10,
                venue="Nairobi",
            )
            status = "failed" if n % 97 == 0 else "sent"
            rows.append(
                EmailNotification(
                    recipient=member.email or f"{member.username}@soundfusion.local",
                    user=member,
                    notification_type=types[n % len(types)],
                    subject=f"[seed] Update {n}: {member.first_name} call time",
                    message=text,
                    html_message=f"<html><body><p>{text}</p>{'<p>&nbsp;</p>' * 80}</body></html>",
                    status=status,
                    failed_attempts=5 if status == "failed" else 0,
                    last_error="SMTP 550: mailbox unavailable" if status == "failed" else "",
                    sent_at=at if status == "sent" else None,
                    created_at=at,
                )
            )
        with dates_as_given(EmailNotification, "created_at"):
            EmailNotification.objects.bulk_create(rows)
    return count - already


FIRST_NAMES = [
    "Wanjiku",
    "Brian",
    "Achieng",
    "Kevin",
    "Peter",
    "Njeri",
    "James",
    "Faith",
    "Collins",
    "Mercy",
    "Otieno",
    "Akinyi",
    "Kamau",
    "Chebet",
    "Mutua",
    "Wambui",
    "Kiprop",
    "Omondi",
]
LAST_NAMES = [
    "Kamau",
    "Otieno",
    "Odhiambo",
    "Kiprop",
    "Mwangi",
    "Wambui",
    "Mutua",
    "Chebet",
    "Omondi",
    "Akinyi",
    "Njoroge",
    "Kariuki",
    "Ochieng",
    "Wekesa",
    "Korir",
    "Maina",
    "Nyambura",
]
