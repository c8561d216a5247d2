"""One way to show dates and times everywhere Django formats them (admin lists, read-only
fields, templates' |date without a format): Nairobi's 24-hour clock, "5 Dec 2026, 19:02",
never "7:02 p.m." beside "19:02" on the same screen. Input formats stay Django's en_GB ones."""

DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1  # Monday
