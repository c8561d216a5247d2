"""The audit trail in admin, filterable and never editable; no second-factor secrets shown."""

from auditlog.mixins import LogEntryAdminMixin
from auditlog.models import LogEntry
from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from attendance.services.core.audit import AuditEvent

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin
from .search import month_filter

# django-otp's own pages show a device's secret key and QR code to any superuser: whoever saw
# them could pass as that person. Devices are set up by their owner and reset by a superuser
# (the Users list's action), both audited.
for model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
admin.site.unregister(LogEntry)


class EventFilter(admin.SimpleListFilter):
    title = "what"
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return AuditEvent.choices

    def queryset(self, request, queryset):
        if self.value() in AuditEvent.values:
            return queryset.filter(additional_data__event=self.value())
        return queryset


class ActorFilter(admin.SimpleListFilter):
    title = "who"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        from django.contrib.auth import get_user_model

        staff = get_user_model().objects.filter(is_staff=True).order_by("username")
        return [(user.pk, user.get_username()) for user in staff[:100]]

    def queryset(self, request, queryset):
        if (self.value() or "").isdigit():
            return queryset.filter(actor_id=int(self.value()))
        return queryset


@admin.register(LogEntry)
class AuditTrailAdmin(ReadOnlyAdminMixin, LogEntryAdminMixin, admin.ModelAdmin):
    list_display = ("created", "event", "user_url", "resource_url", "what_changed", "remote_addr")
    list_filter = (EventFilter, ActorFilter, month_filter("timestamp"))
    list_select_related = ("content_type", "actor")
    search_fields = ("object_repr", "actor__username")
    ordering = ("-timestamp", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("created",)
    actions = None
    SUMMARY = ("created", "event", "user_url", "actor_email", "remote_addr", "resource_url")
    readonly_fields = (*SUMMARY, "msg", "details")
    fieldsets = (
        (None, {"fields": SUMMARY}),
        ("What changed", {"fields": ("msg", "details")}),
    )

    @admin.display(description="What")
    def event(self, obj):
        value = (obj.additional_data or {}).get("event", "")
        return AuditEvent(value).label if value in AuditEvent.values else value or "-"

    @admin.display(description="Change")
    def what_changed(self, obj):
        return _changes(obj)

    @admin.display(description="Details")
    def details(self, obj):
        data = {k: v for k, v in (obj.additional_data or {}).items() if k != "event"}
        if not data:
            return "-"
        rows = format_html_join(
            "",
            "<dt>{}</dt><dd>{}</dd>",
            ((k.replace("_", " "), str(v)[:500]) for k, v in data.items()),
        )
        return format_html("<dl>{}</dl>", rows)


def _changes(entry: LogEntry) -> str:
    """One line: "field: before → after; ..." or an m2m "groups + Finance"."""
    parts = []
    for field, change in (entry.changes_dict or {}).items():
        if isinstance(change, dict) and change.get("type") == "m2m":
            sign = "+" if change.get("operation") == "add" else "-"
            parts.append(f"{field} {sign} {', '.join(change.get('objects', []))}")
        elif isinstance(change, list | tuple) and len(change) == 2:
            parts.append(f"{field}: {change[0]} → {change[1]}")
    text = "; ".join(parts)
    return text if len(text) <= 120 else text[:117] + "..."
