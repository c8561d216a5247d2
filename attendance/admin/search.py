"""Admin search and filters that stay fast with a year of data.

Django's admin search turns every term into `UPPER(col) LIKE '%term%'` ORed across all the
search fields, joins included: with 200,000 payments and a million emails that reads whole
tables, and even an exact receipt never uses its index. Here a term is first recognised for
what it is, then looked up the way its index answers:

- a phone number in any common spelling, an email address, an M-Pesa receipt or a checkout
  id: an exact lookup;
- anything else is a name: the members it names are found in the (small) user table, with
  trigram indexes on PostgreSQL (migration 0013; SQLite reads the table), and the big table
  is then filtered by those members' ids, which its indexes answer.

The month filter offers the last twelve months from the calendar, not from a DISTINCT over
every row as `date_hierarchy` does on each page view.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from attendance.account_codes import account_code_normalise
from attendance.models import Event
from attendance.phones import normalise_phone

RECEIPT = re.compile(r"^[A-Z0-9]{10}$")
CHECKOUT = re.compile(r"^ws_CO_[A-Za-z0-9_]+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SEARCH_HELP = "A phone number (any spelling), an email address, an M-Pesa receipt, or a name."


def as_phone(term: str) -> str | None:
    try:
        return normalise_phone(term)
    except ValidationError:
        return None


def members_named(term: str) -> QuerySet[User]:
    """Users whose first name, last name or username contains every word of `term`."""
    users = User.objects.all()
    for word in term.split()[:4]:
        users = users.filter(
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(username__icontains=word)
        )
    return users.values("pk")


class IndexedSearchMixin:
    """A ModelAdmin's search by what the term is. Subclasses name their fields:

    search_phone / search_email / search_receipt / search_checkout: a field for an exact
    lookup; search_member: the path of the member (user) foreign key ("user").
    """

    search_phone: str | None = None
    search_email: str | None = None
    search_receipt: str | None = None
    search_checkout: str | None = None
    search_member: str | None = "user"
    search_event: str | None = None  # an event foreign key: its name is searched too
    search_account_code: str | None = None  # a member's Paybill account code, as typed
    search_help_text = SEARCH_HELP

    def search_condition(self, term: str) -> Q:
        phone = as_phone(term) if self.search_phone else None
        if phone:
            return Q(**{self.search_phone: phone})
        if self.search_email and EMAIL.match(term):
            return Q(**{self.search_email: term}) | Q(**{self.search_email: term.lower()})
        if self.search_receipt and RECEIPT.match(term.upper()):
            return Q(**{self.search_receipt: term.upper()})
        if self.search_checkout and CHECKOUT.match(term):
            return Q(**{self.search_checkout: term})
        code = account_code_normalise(term) if self.search_account_code else None
        if code:
            return Q(**{self.search_account_code: code})
        condition = Q(pk__in=[])
        if self.search_member:
            if EMAIL.match(term):
                emails = User.objects.filter(email__iexact=term).values("pk")
                return Q(**{f"{self.search_member}_id__in": emails})
            condition |= Q(**{f"{self.search_member}_id__in": members_named(term)})
        if self.search_event:
            events = Event.objects.filter(name__icontains=term).values("pk")
            condition |= Q(**{f"{self.search_event}_id__in": events})
        return condition

    def get_search_results(self, request, queryset, search_term):
        term = " ".join(search_term.split())
        if not term:
            return queryset, False
        return queryset.filter(self.search_condition(term)), False


def month_filter(field: str, title: str = "month"):
    """A list filter by calendar month (the last twelve), bounded by an index-friendly range."""

    class MonthFilter(admin.SimpleListFilter):
        parameter_name = "month"

        def lookups(self, request, model_admin):
            today = timezone.localdate()
            year, month = today.year, today.month
            months = []
            for _ in range(12):
                months.append(
                    (f"{year:04d}-{month:02d}", datetime(year, month, 1).strftime("%B %Y"))
                )
                year, month = (year, month - 1) if month > 1 else (year - 1, 12)
            return months

        def queryset(self, request, queryset):
            value = self.value() or ""
            if not re.match(r"^\d{4}-\d{2}$", value):
                return queryset
            year, month = int(value[:4]), int(value[5:])
            if not 1 <= month <= 12:
                return queryset
            tz = timezone.get_current_timezone()
            start = datetime(year, month, 1, tzinfo=tz)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
            return queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})

    MonthFilter.title = title
    return MonthFilter


class LinkedFilter(admin.SimpleListFilter):
    """A filter reached by following a link (a dashboard figure) rather than picked from a list.

    The sidebar shows it only while it is active, with its one value, so staff see why the
    list is narrower and can clear it; an invalid value is ignored rather than an error page.
    """

    def lookups(self, request, model_admin):
        value = self.value()
        label = self.label(value) if value else None
        return [(value, label)] if label else []

    def label(self, value: str) -> str | None:
        raise NotImplementedError


def day_filter(field: str, title: str = "day"):
    """One calendar day (`?day=YYYY-MM-DD`, local time), bounded by an index-friendly range."""

    class DayFilter(LinkedFilter):
        parameter_name = "day"

        def label(self, value):
            day = _parse_day(value)
            return day.strftime("%a %d %b %Y") if day else None

        def queryset(self, request, queryset):
            day = _parse_day(self.value() or "")
            if day is None:
                return queryset
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())
            return queryset.filter(
                **{f"{field}__gte": start, f"{field}__lt": start + timedelta(days=1)}
            )

    DayFilter.title = title
    return DayFilter


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if re.match(r"^\d{4}-\d{2}-\d{2}$", value) else None
    except ValueError:
        return None
