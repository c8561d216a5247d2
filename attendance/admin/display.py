"""Small display pieces shared by the admin modules."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from attendance.models import member_name


def status_badge(value: str, label: str):
    # Colours come from static/css/admin.css, keyed by the status value.
    return format_html('<span class="sf-badge sf-{}">{}</span>', value, label)


def status_badge_column(*, prefix: str = "", description: str = "Status"):
    """A changelist column showing the row's `status` as a coloured badge (sortable)."""

    @admin.display(description=description, ordering="status")
    def column(self, obj):
        return status_badge(f"{prefix}{obj.status}", obj.get_status_display())

    return column


def member_column(*, field: str = "user", ordering: str = "user__first_name"):
    """A changelist column naming the member (full name, or username)."""

    @admin.display(description="Member", ordering=ordering)
    def column(self, obj):
        return member_name(getattr(obj, field))

    return column


class ReadOnlyAdminMixin:
    """History and money records: viewable, never added, edited or deleted through admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AddOnlyInlineMixin:
    """Empty rows for adding; existing rows live in a read-mostly inline beside this one.

    An autocomplete widget on every existing row costs a query per row: a big event's page
    would grow with its crew.
    """

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_delete_permission(self, request, obj=None):
        return False


class CappedInlineMixin:
    """At most CAP rows in an inline: a 2,000-person event's page would render 2,000 forms
    (seconds per page). The full list, with filters and search, is the model's own admin."""

    CAP = 100

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        # By ids rather than a slice: formsets filter and count their queryset again.
        first = list(queryset.values_list("pk", flat=True)[: self.CAP])
        return queryset.filter(pk__in=first)


class EstimatedCountPaginator(Paginator):
    """Counting a million rows costs more than rendering the page; estimate when unfiltered.

    On PostgreSQL an unfiltered changelist uses the planner's row estimate (pg_class) once the
    table is large; filtered lists and small tables get the exact count.
    """

    EXACT_BELOW = 100_000

    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        connection = connections[getattr(queryset, "db", "default")]
        if query is not None and not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= self.EXACT_BELOW:
                return row[0]
        return super().count


def notification_history(queryset, limit: int = 20):
    """The last emails of a member or an event, as a small table with links to each."""
    # The foreign keys too: a reverse manager (member.notifications) sets its object on each
    # row through them, and a deferred one is fetched row by row.
    fields = ["pk", "created_at", "notification_type", "subject", "status", "recipient"]
    fields += ["user_id", "event_id", "crew_assignment_id"]
    rows = list(queryset.only(*fields)[:limit])
    if not rows:
        return "No emails yet."
    body = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
        (
            (
                localtime(n.created_at).strftime("%d %b %Y %H:%M"),
                n.get_notification_type_display(),
                reverse("admin:attendance_emailnotification_change", args=[n.pk]),
                n.subject,
                n.recipient,
                status_badge(n.status, n.get_status_display()),
            )
            for n in rows
        ),
    )
    return format_html(
        '<table class="sf-history"><thead><tr><th>When</th><th>Type</th><th>Subject</th>'
        "<th>To</th><th>Status</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )
