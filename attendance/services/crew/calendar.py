"""A member's calendar feed: a secret address their calendar app polls for their confirmed work.

The token is the only key (calendar apps send no cookies), so it is long, random, unique, and
replaced or removed at the member's word from the Account page; the old address is then a 404.
"""

import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from attendance.ics import member_feed_ics
from attendance.models import Event, EventCrew, Profile
from attendance.services.core.urls import absolute_url

# How far back the feed keeps past work (a calendar keeps what it had; this is what it shows
# on a new subscription).
FEED_PAST_DAYS = 60


def calendar_feed_start(*, user: User) -> Profile:
    """Give the member a feed address (a new one if they had one: the old one stops)."""
    profile = user.profile
    profile.calendar_token = secrets.token_urlsafe(32)
    profile.updated_at = timezone.now()
    profile.save(update_fields=["calendar_token", "updated_at"])
    return profile


def calendar_feed_stop(*, user: User) -> Profile:
    """No feed any more: the address is a 404 from now on."""
    profile = user.profile
    profile.calendar_token = None
    profile.updated_at = timezone.now()
    profile.save(update_fields=["calendar_token", "updated_at"])
    return profile


def calendar_feed_url(profile: Profile, *, webcal: bool = False) -> str:
    if not profile.calendar_token:
        return ""
    url = absolute_url("attendance:calendar_feed", profile.calendar_token)
    if webcal:
        # webcal:// makes phones offer "Subscribe" instead of importing a copy once.
        return "webcal://" + url.split("://", 1)[-1]
    return url


def calendar_feed(*, token: str, now: datetime | None = None) -> str | None:
    """The feed for this token, or None when no member has it (revoked or never given)."""
    profile = Profile.objects.filter(calendar_token=token).select_related("user").first()
    if profile is None or not token:
        return None
    now = now or timezone.now()
    assignments = (
        EventCrew.objects.filter(
            user=profile.user,
            status__in=[EventCrew.Status.CONFIRMED, EventCrew.Status.COMPLETED],
            event__ends_at__gte=now - timedelta(days=FEED_PAST_DAYS),
        )
        .exclude(event__status=Event.Status.CANCELLED)
        .select_related("event", "role")
        .order_by("event__starts_at", "pk")
    )
    return member_feed_ics(
        assignments,
        name=f"Sound Fusion: {profile.display_name}",
        now=now,
        url=absolute_url("attendance:crew_assignments"),
    )
