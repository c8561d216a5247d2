"""The clock in tests: the product lives in Nairobi time and CI runs at any hour in UTC.

A test whose meaning depends on the hour freezes the clock at each of these Nairobi times
(after midnight, midday, the evening, just before midnight), so a regression shows whatever
the hour CI runs.
"""

from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import time_machine

NAIROBI = ZoneInfo("Africa/Nairobi")
HOURS = ["00:30", "12:00", "19:30", "23:50"]


@contextmanager
def nairobi_at(hh_mm: str, *, day: tuple[int, int, int] = (2026, 12, 7)):
    """The clock at `hh_mm` Nairobi time on `day`, ticking (database timestamps move on)."""
    hour, minute = (int(part) for part in hh_mm.split(":"))
    with time_machine.travel(datetime(*day, hour, minute, tzinfo=NAIROBI), tick=True):
        yield
