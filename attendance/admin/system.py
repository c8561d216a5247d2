"""Task results and sign-in records, as their libraries list them but fast at a year.

django-celery-results and django-axes search every text column with `icontains` (a whole
table read per search: 0.6 to 1 s at 100,000 task results or 200,000 sign-ins), draw a date
drill-down from a DISTINCT over every row, count every row on each page and sort by columns
no index holds. Here a search looks up what the term is, in an index (a task id or name; a
username or an IP address); the lists estimate their size and stop at 100 pages; and only
the columns an index orders can be sorted by. The page a sign-in came through is picked
from the two sign-in pages there are, not from a DISTINCT over every record on each view.
"""

from __future__ import annotations

import ipaddress

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django_celery_results.admin import TaskResultAdmin
from django_celery_results.models import TaskResult

from .display import EstimatedCountPaginator, IndexedSortMixin


class BigListMixin(IndexedSortMixin):
    date_hierarchy = None  # the date filter in the sidebar does the same from the calendar
    paginator = EstimatedCountPaginator
    show_full_result_count = False


class TaskResults(BigListMixin, TaskResultAdmin):
    sortable_by = ("task_name", "periodic_task_name", "date_done")
    search_help_text = (
        "A task id, a task's name (payments_reconcile_task, or in full) or its schedule's name."
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(
            Q(task_id=term)
            | Q(task_name=term)
            | Q(task_name=f"attendance.tasks.{term}")
            | Q(periodic_task_name=term)
        ), False


class SignInPageFilter(admin.SimpleListFilter):
    title = "page"
    parameter_name = "page_signed_in"

    def _pages(self) -> dict[str, str]:
        return {"portal": reverse("login"), "admin": reverse("admin:login")}

    def lookups(self, request, model_admin):
        return (("portal", "Crew portal"), ("admin", "Admin"))

    def queryset(self, request, queryset):
        pages = self._pages()
        if self.value() in pages:
            return queryset.filter(path_info=pages[self.value()])
        return queryset


def _with_page_filter(filters) -> list:
    return [SignInPageFilter if f == "path_info" else f for f in filters]


class SignInList(BigListMixin):
    sortable_by: tuple[str, ...] = ("attempt_time", "username", "ip_address")
    search_help_text = "A username, or an IP address."

    def get_search_results(self, request, queryset, search_term):
        """An IP address, or a username as typed or in lower case: each an indexed lookup."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(ip_address=str(ipaddress.ip_address(term))), False
        except ValueError:
            return queryset.filter(username__in={term, term.lower()}), False


class SignIns(SignInList, AccessLogAdmin):
    list_filter = _with_page_filter(AccessLogAdmin.list_filter)


class FailedSignIns(SignInList, AccessFailureLogAdmin):
    list_filter = _with_page_filter(AccessFailureLogAdmin.list_filter)


class SignInAttempts(SignInList, AccessAttemptAdmin):
    sortable_by = (*SignInList.sortable_by, "failures_since_start")
    list_filter = _with_page_filter(AccessAttemptAdmin.list_filter)


for model, model_admin in (
    (TaskResult, TaskResults),
    (AccessLog, SignIns),
    (AccessFailureLog, FailedSignIns),
    (AccessAttempt, SignInAttempts),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
