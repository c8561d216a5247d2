"""Alerts sent to staff and the periodic jobs' last runs: records, read-only."""

import json

from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html

from attendance.models import Alert, BeatRun
from attendance.services.ops.health import beat_run_late_by, beat_run_schedule

from .display import ReadOnlyAdminMixin


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("fired_at", "kind", "summary", "recipients")
    list_filter = ("kind",)
    ordering = ("-fired_at", "-id")
    fields = ("kind", "fired_at", "summary", "recipients", "details_pretty")
    readonly_fields = fields

    @admin.display(description="Details")
    def details_pretty(self, obj):
        return format_html(
            '<pre class="sf-email-text">{}</pre>', json.dumps(obj.details, indent=2, default=str)
        )


@admin.register(BeatRun)
class BeatRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("task", "state", "last_succeeded_at", "last_failed_at", "last_started_at")
    fields = ("task", "last_started_at", "last_succeeded_at", "last_failed_at", "last_error")
    readonly_fields = fields

    @admin.display(description="State")
    def state(self, obj):
        every = beat_run_schedule().get(obj.task)
        if every is None:
            return format_html('<span class="sf-badge">not scheduled</span>')
        late_by = beat_run_late_by(obj, every, timezone.now(), settings.READY_BEAT_GRACE_SECONDS)
        if late_by <= 0:
            return format_html('<span class="sf-badge sf-sent">on time</span>')
        return format_html(
            '<span class="sf-badge sf-failed">late</span> by {} min', round(late_by / 60)
        )
