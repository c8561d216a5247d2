"""Small display pieces shared by the admin modules."""

import json

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import EmptyPage, Paginator
from django.db import connections
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from attendance.models import member_name
from attendance.phones import mask_phone


def status_badge(value: str, label: str):
    # Colours come from static/css/admin.css, keyed by the status value.
    return format_html('<span class="sf-badge sf-{}">{}</span>', value, label)


def proof_badge(attendance):
    """How a check-in was proven, as a badge: amber where it was not (the manager's cue)."""
    if not attendance.check_in_method:
        return "-"
    # Short in the list (the columns after it must stay on screen); the whole story on hover
    # and on the record's page.
    short = {"qr": "QR", "gps": "Location", "admin": "Staff"}.get(
        attendance.check_in_method, "Button"
    )
    proven = attendance.check_in_proven
    if not proven:
        short += ", not proven"
    return format_html(
        '<span class="sf-badge sf-{}" title="{}">{}</span>',
        "proven" if proven else "unproven",
        attendance.check_in_proof,
        short,
    )


def status_badge_column(*, prefix: str = "", description: str = "Status"):
    """A changelist column showing the row's `status` as a coloured badge (sortable)."""

    @admin.display(description=description, ordering="status")
    def column(self, obj):
        return status_badge(f"{prefix}{obj.status}", obj.get_status_display())

    return column


def crew_status_column():
    """An assignment's status badge, with "Not invited yet" for one never sent (sortable)."""

    @admin.display(description="Status", ordering="status")
    def column(self, obj):
        return status_badge(obj.status_key, obj.status_label)

    return column


def member_column(*, field: str = "user", ordering: str = "user__first_name"):
    """A changelist column naming the member (full name, or username); "-" for none (a text
    to an alert number, say, is to nobody's account)."""

    @admin.display(description="Member", ordering=ordering, empty_value="-")
    def column(self, obj):
        user = getattr(obj, field)
        return member_name(user) if user is not None else None

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


class CappedFormSet(BaseInlineFormSet):
    """The first CAP rows of the parent's (the inline's formset filters by the parent first)."""

    cap = 20

    def get_queryset(self):
        if not hasattr(self, "_capped"):
            rows = super().get_queryset()
            first = list(rows.values_list("pk", flat=True)[: self.cap])
            # By ids rather than a slice: a formset filters and counts its queryset again.
            self._capped = rows.filter(pk__in=first)
        return self._capped


class CappedInlineMixin:
    """At most CAP rows in an inline, and read-only past that: a 2,000-person event's page
    would render 2,000 forms (seconds a page; forty already cost a quarter of a second). The
    full list, with filters, search and editing, is the model's own admin."""

    CAP = 20
    formset = CappedFormSet

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.cap = self.CAP
        return formset

    def is_capped(self, request, obj) -> bool:
        """More rows than CAP for this parent? (One small query per page, remembered.)"""
        if obj is None or obj.pk is None:
            return False
        cache = request.__dict__.setdefault("_sf_capped", {})
        key = (type(self).__name__, obj.pk)
        if key not in cache:
            rows = self.model._default_manager.filter(**{self.fk_name or "event": obj})
            cache[key] = rows.values("pk")[: self.CAP + 1].count() > self.CAP
        return cache[key]

    def get_readonly_fields(self, request, obj=None):
        if self.is_capped(request, obj):
            return tuple(self.fields)
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self.is_capped(request, obj) and super().has_delete_permission(request, obj)


class IndexedSortChangeList(ChangeList):
    """A sorted column's ties follow the list's own order, and a descending sort is the
    ascending one read backwards.

    Django breaks ties with `-pk` whichever way a column is sorted, so "sorted by recipient"
    is `recipient, id DESC`, which no index holds: PostgreSQL sorted a million emails for
    every such page (441 to 641 ms). Here it is `recipient, created_at DESC, id DESC` (newest
    first within each recipient, as the list is unsorted), and the reverse sort is exactly
    that reversed, so one index on (column, -created_at) serves both directions.
    """

    def _get_deterministic_ordering(self, ordering):
        if not self.params.get(ORDER_VAR) or not ordering:
            return super()._get_deterministic_ordering(ordering)
        # What was clicked comes first; after it Django adds the queryset's own order_by.
        clicked = list(ordering[: self._sortable_clicked()])
        if not clicked:
            return super()._get_deterministic_ordering(ordering)
        first = clicked[0]
        descending = (
            first.startswith("-") if isinstance(first, str) else getattr(first, "descending", 0)
        )
        named = {part.lstrip("-") for part in clicked if isinstance(part, str)}
        ties = getattr(self.model_admin, "sort_ties", None)
        for part in ties or self.model_admin.ordering or self.lookup_opts.ordering or ():
            name = part.lstrip("-")
            if name in named or (name == "id" and "pk" in named):
                continue
            if descending:
                part = name if part.startswith("-") else f"-{name}"
            clicked.append(part)
            named.add(name)
        return super()._get_deterministic_ordering(clicked)

    def _sortable_clicked(self) -> int:
        """How many of the ?o= columns Django sorted by (it skips the unsortable ones)."""
        count = 0
        for part in self.params[ORDER_VAR].split("."):
            try:
                name = self.list_display[int(part.rpartition("-")[2])]
            except (IndexError, ValueError):
                continue
            count += self.get_ordering_field(name) is not None
        return count


class IndexedSortMixin:
    """For a ModelAdmin over a big table: see IndexedSortChangeList. `sort_ties` replaces the
    list's ordering as the tie-break where that ordering needs joins (every row joined and
    sorted before the first page shows)."""

    sort_ties: tuple[str, ...] | None = None

    def get_changelist(self, request, **kwargs):
        return IndexedSortChangeList


class EstimatedCountPaginator(Paginator):
    """Counting a million rows costs more than rendering the page; estimate when there are many.

    On PostgreSQL the count is the planner's estimate once it is large: the table's row count
    (pg_class) for an unfiltered list, the plan's estimate (EXPLAIN, a millisecond) for a
    filtered one. Counting 440,000 texts of one encoding took 100 ms of every view. Smaller
    results are counted exactly, so a filter that narrows to a few rows says how many. At most
    MAX_PAGES pages are offered (10,000 rows): page 5,000 of a million emails is an OFFSET that
    reads half a million index entries (600 ms). Older rows are a month filter or a search
    away, and a page past the last offered shows the last one.
    """

    EXACT_BELOW = 100_000
    MAX_PAGES = 100

    @cached_property
    def num_pages(self):
        return min(super().num_pages, self.MAX_PAGES)

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if int(number) > 1:
                return self.num_pages
            raise

    @cached_property
    def count(self):
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        connection = connections[getattr(queryset, "db", "default")]
        if query is not None and connection.vendor == "postgresql":
            estimate = self._estimate(queryset, connection)
            if estimate is not None and estimate >= self.EXACT_BELOW:
                return estimate
        return super().count

    @staticmethod
    def _estimate(queryset, connection) -> int | None:
        if not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            return row[0] if row else None
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


def notification_history(queryset, sms=None, limit: int = 20):
    """The last messages of a member, an event or an assignment, emails and texts together,
    newest first, as a small table with links to each."""
    # The foreign keys too: a reverse manager (member.notifications) sets its object on each
    # row through them, and a deferred one is fetched row by row.
    links = ["user_id", "event_id", "crew_assignment_id"]
    email_fields = ["pk", "created_at", "notification_type", "subject", "status", "recipient"]
    rows = [
        (n.created_at, "Email", n, n.subject, n.recipient, "emailnotification")
        for n in queryset.only(*email_fields, *links)[:limit]
    ]
    if sms is not None:
        sms_fields = ["pk", "created_at", "notification_type", "message", "status"]
        sms_fields += ["phone_number", "delivery_status"]
        rows += [
            (t.created_at, "SMS", t, t.message, mask_phone(t.phone_number), "smsmessage")
            for t in sms.only(*sms_fields, *links)[:limit]
        ]
    rows = sorted(rows, key=lambda row: row[0], reverse=True)[:limit]
    if not rows:
        return "No messages yet."
    body = format_html_join(
        "",
        '<tr><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td><td>{}</td>'
        "<td>{}</td></tr>",
        (
            (
                localtime(when).strftime("%d %b %Y %H:%M"),
                channel,
                row.get_notification_type_display(),
                reverse(f"admin:attendance_{model}_change", args=[row.pk]),
                what[:80],
                to,
                message_badge(row),
            )
            for when, channel, row, what, to, model in rows
        ),
    )
    return format_html(
        '<table class="sf-history"><thead><tr><th>When</th><th>By</th><th>Type</th>'
        "<th>Subject / text</th><th>To</th><th>Status</th></tr></thead><tbody>{}</tbody></table>",
        body,
    )


def message_badge(row):
    """An email's status, or a text's furthest news: delivered / undelivered / accepted."""
    delivery = getattr(row, "delivery_status", "")
    if row.status == "sent" and delivery:
        lowered = delivery.lower()
        if lowered in {"success", "delivered"}:
            return status_badge("delivered", "Delivered")
        if lowered == "read":  # WhatsApp's blue ticks
            return status_badge("delivered", "Read")
        if lowered in {"failed", "rejected", "expired"}:
            return status_badge("failed", f"Undelivered ({delivery})")
        return status_badge("sent", delivery)
    return status_badge(row.status, row.get_status_display())


# One way to show times in admin lists (Nairobi): a day as "Sat 12 Dec", a time as "22:22",
# with its day ("Sun 13 Dec 01:10") when it is not on the day it belongs to.
def local_day(value) -> str:
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return f"{local:%a} {local.day} {local:%b %Y}"


def local_time(value, *, day_of=None) -> str:
    if value is None:
        return "-"
    local = timezone.localtime(value)
    if day_of is not None and local.date() != timezone.localtime(day_of).date():
        return f"{local:%a} {local.day} {local:%b %H:%M}"
    return f"{local:%H:%M}"


class NamedFieldsMixin:
    """Every form control with an accessible name (axe: "label", "select-name").

    A tabular inline's columns are titled in its header, but its inputs have no <label>: each
    gets the column's name as its aria-label. A split date-time's two boxes are "Starts: date"
    and "Starts: time". Autocomplete boxes (select2) take their name from the select in
    static/js/admin_a11y.js.
    """

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is None:
            return field
        name = str(db_field.verbose_name).capitalize()
        widget = field.widget
        inner = getattr(widget, "widget", widget)  # a related-field wrapper's own widget
        subwidgets = getattr(inner, "widgets", None)
        if subwidgets and len(subwidgets) == 2 and "Date" in type(inner).__name__:
            subwidgets[0].attrs["aria-label"] = f"{name}: date"
            subwidgets[1].attrs["aria-label"] = f"{name}: time"
        elif isinstance(self, admin.options.InlineModelAdmin):
            inner.attrs.setdefault("aria-label", name)
        return field

    def get_formset(self, request, obj=None, **kwargs):
        base = super().get_formset(request, obj, **kwargs)  # inlines only call this

        class NamedFormSet(base):
            def add_fields(self, form, index):
                super().add_fields(form, index)
                if "DELETE" in form.fields:
                    form.fields["DELETE"].widget.attrs["aria-label"] = "Delete this row"

        return NamedFormSet
