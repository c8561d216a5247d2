"""The figures on the admin's front page: this week's staffing, money, payments, crew, email.

Each figure is one aggregate query over an indexed range (the last 30 days of payments and
emails, this week's events, the last 90 days of invitations): about a dozen queries in all,
whatever the size of the history (tests/test_dashboard.py pins the count; bench_admin_scale
times it at a year of data).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Count, DecimalField, F, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from attendance.models import (
    Alert,
    EmailNotification,
    Event,
    EventCrew,
    EventRoleRequirement,
    MpesaCallback,
    MpesaPayment,
    Payout,
    PayRun,
    Profile,
)
from attendance.services.crew.staffing import RoleStaffing

Pay = MpesaPayment.Status
Crew = EventCrew.Status
PAYMENT_DAYS = 30
CREW_DAYS = 90
TOP_FAILURES = 5
WEEK_EVENTS = 30


@dataclass(frozen=True)
class EventFill:
    event: Event
    roles: list[RoleStaffing]

    @property
    def needed(self) -> int:
        return sum(role.needed for role in self.roles)

    @property
    def confirmed(self) -> int:
        return sum(min(role.confirmed, role.needed) for role in self.roles)

    @property
    def short(self) -> int:
        return self.needed - self.confirmed


@dataclass(frozen=True)
class PaymentDay:
    day: date
    completed: int
    failed: int
    cancelled: int

    @property
    def total(self) -> int:
        return self.completed + self.failed + self.cancelled


@dataclass(frozen=True)
class FailureReason:
    result_code: str
    description: str
    count: int


@dataclass
class Dashboard:
    since: datetime
    week_start: date
    # Which sections the viewer may see (the lists behind them).
    money: bool = True
    crew: bool = True
    email: bool = True
    days_back: int = PAYMENT_DAYS
    crew_days: int = CREW_DAYS
    week: list[EventFill] = field(default_factory=list)
    owed: Decimal = Decimal("0")
    members_owing: int = 0
    collected: Decimal = Decimal("0")
    days: list[PaymentDay] = field(default_factory=list)
    top_failures: list[FailureReason] = field(default_factory=list)
    invitations: int = 0
    confirmed: int = 0
    declined: int = 0
    median_answer_hours: float | None = None
    emails_sent: int = 0
    emails_failed: int = 0
    review_queue: int = 0
    quarantined_callbacks: int = 0
    pay_runs_waiting: int = 0  # drawn up, waiting for a checker's approval
    payouts_not_paid: int = 0  # failed and not tried again
    payouts_to_check: int = 0  # flagged for a person to look at
    now: datetime | None = None
    recent_alerts: list[Alert] = field(default_factory=list)

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def week_range(self) -> str:
        """The events list's own date filter for this week, as a query string."""
        tz = timezone.get_current_timezone()
        start = datetime.combine(self.week_start, datetime.min.time(), tzinfo=tz)
        return urlencode(
            {"starts_at__gte": str(start), "starts_at__lt": str(start + timedelta(days=7))}
        )

    @property
    def week_short(self) -> int:
        """Places still to fill at this week's events still to come (one that has started
        or ended can no longer be filled)."""
        return sum(fill.short for fill in self.week if self.now and fill.event.starts_at > self.now)

    @property
    def week_ahead_range(self) -> str:
        """The events list's filter for the rest of this week."""
        tz = timezone.get_current_timezone()
        end = datetime.combine(self.week_end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        start = timezone.localtime(self.now).replace(microsecond=0)
        return urlencode({"starts_at__gte": str(start), "starts_at__lt": str(end)})

    @property
    def payments_completed(self) -> int:
        return sum(day.completed for day in self.days)

    @property
    def payments_finished(self) -> int:
        return sum(day.total for day in self.days)

    @property
    def success_rate(self) -> float | None:
        return _rate(self.payments_completed, self.payments_finished)

    @property
    def confirmation_rate(self) -> float | None:
        return _rate(self.confirmed, self.invitations)

    @property
    def email_delivery_rate(self) -> float | None:
        return _rate(self.emails_sent, self.emails_sent + self.emails_failed)

    @property
    def busiest_day(self) -> int:
        return max((day.total for day in self.days), default=0)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def dashboard_figures(
    *, money: bool = True, crew: bool = True, email: bool = True, now: datetime | None = None
) -> Dashboard:
    """The figures a staff member may see (`money`, `crew`, `email`: which sections)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    # The window is the chart's 30 whole days in Nairobi (midnight 29 days ago onwards), not
    # "now minus 30 days": the totals and the bars then count the same payments at any hour.
    first_day = today - timedelta(days=PAYMENT_DAYS - 1)
    board = Dashboard(
        since=datetime.combine(first_day, time.min, tzinfo=timezone.get_current_timezone()),
        week_start=today - timedelta(days=today.weekday()),
        money=money,
        crew=crew,
        email=email,
        now=now,
    )
    if crew:
        board.week = week_staffing(board.week_start)
        _crew_answers(board, now)
    if money:
        _money(board, today)
    if email:
        _emails(board)
    board.recent_alerts = list(Alert.objects.filter(fired_at__gte=now - timedelta(days=1))[:5])
    return board


def week_staffing(monday: date) -> list[EventFill]:
    """This week's events (Monday to Sunday) with their fill per role, in three queries."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    events = list(
        Event.objects.filter(starts_at__gte=start, starts_at__lt=start + timedelta(days=7))
        .exclude(status=Event.Status.CANCELLED)
        .order_by("starts_at", "pk")[:WEEK_EVENTS]
    )
    ids = [event.pk for event in events]
    needed: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    for row in EventRoleRequirement.objects.filter(event_id__in=ids).values(
        "event_id", "role__name", "needed"
    ):
        needed[row["event_id"]][row["role__name"]] = row["needed"]
    counts: dict[int, dict[str, tuple[int, int]]] = {pk: {} for pk in ids}
    for tally in (
        EventCrew.objects.filter(event_id__in=ids)
        .values("event_id", "role__name")
        .annotate(
            confirmed=Count("pk", filter=Q(status__in=[Crew.CONFIRMED, Crew.COMPLETED])),
            invited=Count("pk", filter=Q(status=Crew.INVITED)),
        )
    ):
        counts[tally["event_id"]][tally["role__name"]] = (tally["confirmed"], tally["invited"])
    fills = []
    for event in events:
        roles = sorted(set(needed[event.pk]) | set(counts[event.pk]))
        fills.append(
            EventFill(
                event,
                [
                    RoleStaffing(
                        name, needed[event.pk].get(name, 0), *counts[event.pk].get(name, (0, 0))
                    )
                    for name in roles
                ],
            )
        )
    return fills


def _money(board: Dashboard, today: date) -> None:
    owing = Profile.objects.filter(balance__gt=0).aggregate(
        owed=Coalesce(Sum("balance"), Value(Decimal("0")), output_field=DecimalField()),
        members=Count("pk"),
    )
    board.owed, board.members_owing = owing["owed"], owing["members"]
    recent = MpesaPayment.objects.filter(initiated_at__gte=board.since)
    by_day = {
        row["day"]: row
        for row in recent.annotate(
            day=TruncDate("initiated_at", tzinfo=timezone.get_current_timezone())
        )
        .values("day")
        .annotate(
            completed=Count("pk", filter=Q(status=Pay.COMPLETED)),
            failed=Count("pk", filter=Q(status=Pay.FAILED)),
            cancelled=Count("pk", filter=Q(status=Pay.CANCELLED)),
            # What M-Pesa says arrived (the requested amount when a query settled it).
            collected=Sum(Coalesce("paid_amount", "amount"), filter=Q(status=Pay.COMPLETED)),
        )
    }
    first = today - timedelta(days=PAYMENT_DAYS - 1)
    board.days = []
    for n in range(PAYMENT_DAYS):
        day = first + timedelta(days=n)
        row = by_day.get(day, {})
        board.days.append(
            PaymentDay(day, row.get("completed", 0), row.get("failed", 0), row.get("cancelled", 0))
        )
        board.collected += row.get("collected") or Decimal("0")
    board.top_failures = [
        FailureReason(row["result_code"] or "-", row["description"] or "", row["count"])
        for row in recent.filter(status__in=[Pay.FAILED, Pay.CANCELLED])
        .values("result_code")
        .annotate(count=Count("pk"), description=Max("result_description"))
        .order_by("-count", "result_code")[:TOP_FAILURES]
    ]
    board.review_queue = MpesaPayment.objects.filter(
        needs_review=True, ledger_entry__isnull=True
    ).count()
    board.quarantined_callbacks = MpesaCallback.objects.filter(
        status=MpesaCallback.Status.QUARANTINED
    ).count()
    board.pay_runs_waiting = PayRun.objects.filter(status=PayRun.Status.DRAFT).count()
    payouts = Payout.objects.aggregate(
        # Not paid and not tried again ("not_owed": nothing was owed, nothing to do).
        not_paid=Count(
            "pk",
            filter=Q(status=Payout.Status.FAILED, retried_by__isnull=True)
            & ~Q(result_code="not_owed"),
        ),
        to_check=Count("pk", filter=Q(needs_review=True)),
    )
    board.payouts_not_paid, board.payouts_to_check = payouts["not_paid"], payouts["to_check"]


def _crew_answers(board: Dashboard, now: datetime) -> None:
    invited = EventCrew.objects.filter(invitation_sent_at__gte=now - timedelta(days=CREW_DAYS))
    counts = invited.aggregate(
        invitations=Count("pk"),
        confirmed=Count("pk", filter=Q(confirmed_at__isnull=False)),
        declined=Count("pk", filter=Q(status=Crew.DECLINED)),
    )
    board.invitations = counts["invitations"]
    board.confirmed = counts["confirmed"]
    board.declined = counts["declined"]
    answered = invited.filter(responded_at__isnull=False, responded_at__gte=F("invitation_sent_at"))
    board.median_answer_hours = _median_hours(answered)


def _median_hours(answered: QuerySet[EventCrew]) -> float | None:
    if connection.vendor == "postgresql":
        sql, params = answered.values("pk").query.sql_with_params()
        table = EventCrew._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM "  # noqa: S608
                f"responded_at - invitation_sent_at)) FROM {table} WHERE id IN ({sql})",
                params,
            )
            seconds = cursor.fetchone()[0]
        return None if seconds is None else float(seconds) / 3600
    # SQLite (the demo): a few hundred answers, worked out here.
    waits = [
        (responded - sent).total_seconds()
        for sent, responded in answered.values_list("invitation_sent_at", "responded_at")
        if sent and responded  # always both: the queryset filters on them
    ]
    return statistics.median(waits) / 3600 if waits else None


def _emails(board: Dashboard) -> None:
    counts = EmailNotification.objects.filter(created_at__gte=board.since).aggregate(
        sent=Count("pk", filter=Q(status=EmailNotification.Status.SENT)),
        failed=Count("pk", filter=Q(status=EmailNotification.Status.FAILED)),
    )
    board.emails_sent, board.emails_failed = counts["sent"], counts["failed"]
