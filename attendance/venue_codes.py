"""Venue QR codes: proof that a member checking in is at the venue.

A manager shows a QR code on a screen at the venue; it holds a link with a code that names the
event and a short window of time, signed with SECRET_KEY. The server's clock decides which
window is current, and the code changes every VENUE_CODE_SECONDS: a photo of the screen sent to
someone at home stops working within a minute or two. The window before the current one is
still accepted, so a member who scanned just before the code changed is not turned away.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings
from django.utils.translation import gettext as _

SECONDS = 45  # how often the code on the screen changes


class VenueCodeError(ValueError):
    """A code that does not prove presence now; the message says what to do."""


def _window(now: float) -> int:
    return int(now // SECONDS)


def _sign(event_id: int, window: int) -> str:
    key = hashlib.sha256(f"venue-code:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, f"{event_id}:{window}".encode(), hashlib.sha256).hexdigest()[:20]


def venue_code(event_id: int, now: float | None = None) -> str:
    """The code the venue's screen shows now for this event."""
    window = _window(time.time() if now is None else now)
    return f"{window}-{_sign(event_id, window)}"


def venue_code_seconds_left(now: float | None = None) -> int:
    """Seconds until the code changes (the screen reloads then)."""
    now = time.time() if now is None else now
    return max(1, int(SECONDS - now % SECONDS))


def venue_code_check(event_id: int, code: str, now: float | None = None) -> None:
    """Raise VenueCodeError unless `code` is this event's code of now or the window before."""
    window_text, _dash, signature = str(code).partition("-")
    if not window_text.isdigit() or not signature:
        raise VenueCodeError(
            _("This is not a venue code. Scan the code on the screen at the venue.")
        )
    window = int(window_text)
    if not hmac.compare_digest(signature, _sign(event_id, window)):
        raise VenueCodeError(
            _("This code is not this event's. Scan the code on the screen at your event's venue.")
        )
    current = _window(time.time() if now is None else now)
    if window > current or window < current - 1:
        raise VenueCodeError(
            _("This code has expired: it changes every minute. Scan the code on the screen again.")
        )
