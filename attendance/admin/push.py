"""The app's notifications in admin: what was pushed (read-only history, failed ones can be
sent again) and each member's devices (removable: the member's phone then stops getting them)."""

from django.contrib import admin, messages

from attendance.models import PushMessage, PushSubscription
from attendance.services.messaging.push import push_requeue

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin, member_column
from .search import month_filter


@admin.register(PushMessage)
class PushMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "member", "notification_type", "status", "devices", "went_by")
    list_filter = ("notification_type", "status", month_filter("created_at"))
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    search_help_text = "A member's username."
    sortable_by = ("created_at", "notification_type", "status")
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend_failed"]
    fields = (
        "user",
        "notification_type",
        "payload",
        "status",
        "devices",
        "sent_at",
        "failed_attempts",
        "last_error",
        "next_attempt_at",
        "created_at",
        "event",
        "crew_assignment",
        "fell_back_at",
        "fallback_sms",
        "fallback_email",
    )
    readonly_fields = fields
    member = member_column()

    @admin.display(description="Went by")
    def went_by(self, obj):
        if obj.fell_back_at is None:
            return "Notification"
        return "SMS instead" if obj.fallback_sms_id else "Email instead"

    @admin.action(description="Resend failed notifications")
    def resend_failed(self, request, queryset):
        queued = push_requeue(message_ids=queryset.values_list("pk", flat=True)[:500])
        messages.info(
            request,
            f"{queued} failed notification(s) queued again. Those that went by SMS or email "
            "instead are left alone.",
        )


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """A member's devices with notifications on. Nothing to edit; deleting one stops that
    device's notifications (the member can turn them on again)."""

    list_display = ("member", "user_agent", "created_at", "last_success_at", "last_status")
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "user",
        "endpoint",
        "user_agent",
        "created_at",
        "last_success_at",
        "last_failure_at",
        "last_status",
    )
    fields = readonly_fields
    member = member_column()

    def has_add_permission(self, request):
        return False
