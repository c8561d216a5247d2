"""Which days pay more: Sundays, Kenya's public holidays, and days Finance adds as gazetted.

The Public Holidays Act's days (and the Monday after one that falls on a Sunday) come from the
`holidays` library in its Kenyan English names; only the public category counts (Idd-ul-Azha
and Diwali are not general holidays unless gazetted, when Finance adds them). Islamic dates are
the library's estimates until announced: a gazetted date that differs is added by hand too.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import holidays as holiday_calendar

from attendance.models import PublicHoliday

from .rules import Day


@lru_cache(maxsize=32)
def _act_holidays(year: int, language: str = "en_KE") -> dict[date, str]:
    return dict(holiday_calendar.country_holidays("KE", language=language, years=year).items())


def day_of(day: date, gazetted: dict[date, str] | None = None) -> Day:
    """The kind of day `day` is for pay. `gazetted` (from `gazetted_between`) saves a query
    per day when many days are asked about."""
    if gazetted is None:
        gazetted = gazetted_between(day, day)
    if day in gazetted:  # Finance's own name, in the one language they gave it
        return Day(sunday=day.weekday() == 6, holiday=gazetted[day])
    name = _act_holidays(day.year).get(day, "")
    name_sw = _act_holidays(day.year, "sw").get(day, "") if name else ""
    return Day(sunday=day.weekday() == 6, holiday=name, holiday_sw=name_sw)


def gazetted_between(first: date, last: date) -> dict[date, str]:
    """Finance's gazetted extra days from `first` to `last`, by date."""
    return dict(PublicHoliday.objects.filter(date__range=(first, last)).values_list("date", "name"))


def holidays_in(year: int) -> list[tuple[date, str]]:
    """Every public holiday of `year` as pay counts them (the Act's and the gazetted ones)."""
    days = _act_holidays(year) | gazetted_between(date(year, 1, 1), date(year, 12, 31))
    return sorted(days.items())
