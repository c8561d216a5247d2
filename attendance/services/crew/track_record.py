"""Each member's track record, for managers only (the staffing board and the member's admin
page; never shown to other crew): events worked, no-shows, lateness, late declines and how
short the notice was, and the managers' ratings. Reads, plus the one write: a rating.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from attendance.models import Attendance, Event, EventCrew
from attendance.services.core.rows import keep_in_step
from attendance.services.crew.assignments import CrewError

Status = EventCrew.Status
# A decline this close to the call time leaves the manager scrambling.
LATE_DECLINE = timedelta(hours=48)


@dataclass
class TrackRecord:
    worked: int = 0
    no_shows: int = 0
    late: int = 0
    late_declines: int = 0
    shortest_notice_hours: float | None = None  # of the late declines
    rating: float | None = None
    ratings: int = 0

    @property
    def score(self) -> float:
        """One number to rank by: work done counts for them, let-downs against them."""
        score: float = min(self.worked, 20) - 4 * self.no_shows - self.late - 2 * self.late_declines
        if self.rating is not None:
            score += 2 * (self.rating - 3)
        return score

    @property
    def summary(self) -> str:
        parts = [f"{self.worked} worked"]
        if self.no_shows:
            parts.append(f"{self.no_shows} no-show{'s' if self.no_shows > 1 else ''}")
        if self.late:
            parts.append(f"{self.late} late")
        if self.late_declines:
            notice = (
                f", shortest {self.shortest_notice_hours:.0f} h before call"
                if self.shortest_notice_hours is not None
                else ""
            )
            parts.append(f"{self.late_declines} late decline(s){notice}")
        if self.rating is not None:
            parts.append(f"rated {self.rating:.1f}/5 ({self.ratings})")
        return ", ".join(parts)


def track_records(user_ids: list[int], *, now: datetime | None = None) -> dict[int, TrackRecord]:
    """{user id: TrackRecord} for the members given, in three queries whatever their number."""
    now = now or timezone.now()
    records = {pk: TrackRecord() for pk in user_ids}
    if not user_ids:
        return records
    late_decline = Q(
        status=Status.DECLINED,
        responded_at__isnull=False,
        responded_at__gt=F("event__call_time") - LATE_DECLINE,
        responded_at__lt=F("event__call_time"),
    )
    for row in (
        EventCrew.objects.filter(user_id__in=user_ids)
        .values("user_id")
        .annotate(
            worked=Count("pk", filter=Q(status=Status.COMPLETED)),
            # Completion leaves those who never checked in confirmed: a no-show.
            no_shows=Count(
                "pk",
                filter=Q(
                    status=Status.CONFIRMED,
                    event__status=Event.Status.COMPLETED,
                    event__ends_at__lt=now,
                ),
            ),
            late_declines=Count("pk", filter=late_decline),
            avg_rating=Avg("rating"),
            rated=Count("rating"),
        )
    ):
        record = records[row["user_id"]]
        record.worked, record.no_shows = row["worked"], row["no_shows"]
        record.late_declines, record.ratings = row["late_declines"], row["rated"]
        record.rating = float(row["avg_rating"]) if row["avg_rating"] is not None else None
    for row in (
        Attendance.objects.filter(user_id__in=user_ids, status=Attendance.Status.LATE)
        .values("user_id")
        .annotate(n=Count("pk"))
    ):
        records[row["user_id"]].late = row["n"]
    # The notice of each late decline (few rows: only the late ones).
    for user_id, call, answered in EventCrew.objects.filter(
        late_decline, user_id__in=user_ids
    ).values_list("user_id", "event__call_time", "responded_at"):
        if answered is None:
            continue
        hours = (call - answered).total_seconds() / 3600
        record = records[user_id]
        if record.shortest_notice_hours is None or hours < record.shortest_notice_hours:
            record.shortest_notice_hours = hours
    return records


def track_record(user: User) -> TrackRecord:
    return track_records([user.pk])[user.pk]


def crew_rate(
    *, assignment: EventCrew, rating: int | None, note: str = "", by: User | None = None
) -> EventCrew:
    """A manager's 1-5 rating and note once the event is over (None clears it)."""
    if rating is not None and not 1 <= rating <= 5:
        raise CrewError("A rating is from 1 to 5.")
    with transaction.atomic():
        current = (
            EventCrew.objects.select_for_update(of=("self",))
            .select_related("event")
            .get(pk=assignment.pk)
        )
        if current.event.ends_at > timezone.now():
            raise CrewError("Rate crew once the event is over.")
        if current.status not in (Status.COMPLETED, Status.CONFIRMED):
            raise CrewError("Only crew who were on the event can be rated.")
        current.rating = rating
        current.rating_note = note.strip()[:300] if rating is not None else ""
        current.rated_by = by if rating is not None else None
        current.rated_at = timezone.now() if rating is not None else None
        current.save(update_fields=["rating", "rating_note", "rated_by", "rated_at", "updated_at"])
    keep_in_step(assignment, current)
    return current
