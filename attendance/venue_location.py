"""Where the venue is, and whether a phone's location puts its member there.

The browser gives a position only when the member taps Check in (it asks them then). We keep
the distance from the venue and how the check-in was proven, never the position itself.
A weak fix, a refused permission or a phone far away does not stop anyone checking in: the
check-in is recorded and flagged for the manager, because a person who is really there must
never be turned away by their GPS.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

EARTH_RADIUS_M = 6_371_000
# A fix less precise than this says little about which building someone is in.
WEAK_FIX_M = 500

_PAIR = re.compile(r"(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)")
# Map links: …/@-1.2921,36.8219,15z  ·  ?q=-1.29,36.82  ·  ?query=…  ·  ?ll=…  ·  !3d-1.29!4d36.82
_MAP_PATTERNS = (
    re.compile(r"!3d(-?\d+(?:\.\d+)?)!4d(-?\d+(?:\.\d+)?)"),
    re.compile(r"@(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)"),
    re.compile(
        r"[?&](?:q|query|ll|center|destination)=(-?\d+(?:\.\d+)?)(?:,|%2C)(-?\d+(?:\.\d+)?)"
    ),
)


def parse_coordinates(text: str) -> tuple[Decimal, Decimal] | None:
    """ "-1.2921, 36.8219" (as copied from a map) to (latitude, longitude); None if unreadable."""
    match = _PAIR.search(text or "")
    return _checked(*match.groups()) if match else None


def coordinates_from_map_link(url: str) -> tuple[Decimal, Decimal] | None:
    """The venue's position from a Google or OpenStreetMap link that carries it, if it does."""
    for pattern in _MAP_PATTERNS:
        match = pattern.search(url or "")
        if match:
            return _checked(*match.groups())
    return None


def _checked(latitude: str, longitude: str) -> tuple[Decimal, Decimal] | None:
    try:
        lat, lng = Decimal(latitude), Decimal(longitude)
    except InvalidOperation:
        return None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return lat.quantize(Decimal("0.000001")), lng.quantize(Decimal("0.000001"))


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine): plenty for "is this person at the venue"."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True)
class Position:
    """What the browser reported, or why it reported nothing (`error`)."""

    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    error: str = ""

    @classmethod
    def from_form(cls, data: Mapping[str, Any]) -> Position | None:
        """The hidden fields the portal's check-in form fills; None when it sent none (no
        JavaScript, or the event has no venue position)."""
        error = str(data.get("location_error", ""))[:20]
        try:
            lat = float(data["latitude"])
            lng = float(data["longitude"])
            accuracy = float(data.get("accuracy") or WEAK_FIX_M + 1)
        except (KeyError, TypeError, ValueError):
            return cls(error=error) if error else None
        if not (-90 <= lat <= 90 and -180 <= lng <= 180) or math.isnan(accuracy):
            return cls(error="invalid")
        return cls(latitude=lat, longitude=lng, accuracy_m=max(0.0, accuracy))


@dataclass(frozen=True)
class Judgement:
    """How a check-in was proven: at the venue or not, and if not, why (the flag)."""

    at_venue: bool
    flag: str  # "", or an Attendance.Flag value
    distance_m: int | None = None


def judge_position(
    position: Position | None, *, venue: tuple[Decimal, Decimal] | None, radius_m: int
) -> Judgement:
    """Inside the radius (allowing for the fix's own error) proves presence; anything else is
    recorded with a flag that says what happened."""
    if venue is None or position is None:
        return Judgement(False, "plain")
    if position.latitude is None or position.longitude is None:
        return Judgement(False, "no_fix")
    distance = distance_m(position.latitude, position.longitude, float(venue[0]), float(venue[1]))
    accuracy = position.accuracy_m if position.accuracy_m is not None else WEAK_FIX_M + 1
    if accuracy > WEAK_FIX_M and distance > radius_m:
        return Judgement(False, "weak_fix", round(distance))
    if distance - min(accuracy, radius_m) <= radius_m:
        return Judgement(True, "", round(distance))
    return Judgement(False, "outside", round(distance))
