"""WhatsApp in admin: the messages we sent (read-only history), the webhooks Meta posted (the
one inbox pattern), and what members wrote to us (replies nobody could read are for staff)."""

from django.contrib import admin, messages
from django.utils.html import format_html

from attendance.models import WhatsAppInbound, WhatsAppMessage, WhatsAppWebhook
from attendance.phones import format_phone
from attendance.services.messaging.whatsapp import whatsapp_requeue

from .display import (
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    member_column,
    message_badge,
)
from .inbox import InboxAdminMixin
from .search import IndexedSearchMixin, month_filter


@admin.register(WhatsAppMessage)
class WhatsAppMessageAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: what was sent is history. Failed messages that did not go another way can
    be sent again."""

    list_display = (
        "phone",
        "member",
        "notification_type",
        "kind",
        "badge",
        "went_by",
        "created_at",
    )
    list_filter = (
        "notification_type",
        "status",
        "delivery_status",
        "kind",
        month_filter("created_at"),
    )
    list_select_related = ("user",)
    search_fields = ("wa_number",)
    search_phone = "wa_number"
    search_help_text = "A phone number (07..., +254...), or the name of the member."
    sortable_by = ("notification_type", "badge", "created_at")
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend_failed"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "wa_number",
                    "user",
                    "notification_type",
                    "kind",
                    "template_name",
                    "language",
                    "text_shown",
                    "event",
                    "crew_assignment",
                    "payment",
                )
            },
        ),
        (
            "Sending",
            {
                "fields": (
                    "status",
                    "provider_message_id",
                    "sent_at",
                    "failed_attempts",
                    "last_error",
                    "next_attempt_at",
                    "created_at",
                )
            },
        ),
        (
            "Statuses from WhatsApp",
            {
                "fields": (
                    "delivery_status",
                    "error_code",
                    "error_title",
                    "delivered_at",
                    "read_at",
                    "reported_at",
                    "pricing",
                )
            },
        ),
        ("Next channel", {"fields": ("fell_back_at", "fallback_sms", "fallback_email")}),
    )
    readonly_fields = tuple(f for _, options in fieldsets for f in options["fields"])

    member = member_column()

    @admin.display(description="To", ordering="wa_number")
    def phone(self, obj):
        return format_phone(obj.wa_number)

    @admin.display(description="Status", ordering="delivery_status")
    def badge(self, obj):
        return message_badge(obj)

    @admin.display(description="Went by")
    def went_by(self, obj):
        if obj.fell_back_at is None:
            return "WhatsApp"
        return "SMS instead" if obj.fallback_sms_id else "Email instead"

    @admin.display(description="Text")
    def text_shown(self, obj):
        return format_html('<div class="sf-sms-text">{}</div>', obj.text)

    @admin.action(description="Resend failed WhatsApp messages")
    def resend_failed(self, request, queryset):
        queued = whatsapp_requeue(message_ids=queryset.values_list("pk", flat=True)[:500])
        messages.info(
            request,
            f"{queued} failed message(s) queued again. Messages that went by SMS or email "
            "instead, or to a number not on WhatsApp, are left alone.",
        )


@admin.register(WhatsAppWebhook)
class WhatsAppWebhookAdmin(InboxAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Statuses and messages as Meta posted them, signed. Rows are never edited."""

    list_display = ("received_at", "kind", "status_badge", "updates", "sender_shown", "text")
    list_filter = ("status", "kind", month_filter("received_at"))
    sortable_by = ("received_at", "status_badge")
    search_fields = ("provider_id",)
    search_help_text = "A WhatsApp message id (wamid...)."
    ordering = ("-received_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "kind",
        "updates",
        "provider_id",
        "sender",
        "text",
        "user",
        "message",
        "remote_addr",
        "raw_body",
    )
    fields = readonly_fields

    @admin.display(description="From / to", ordering="sender")
    def sender_shown(self, obj):
        return format_phone(obj.sender) if obj.sender else ""


@admin.register(WhatsAppInbound)
class WhatsAppInboundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What members wrote to our WhatsApp number. A reply nobody could read has the reason in
    its detail: a person answers it."""

    list_display = ("received_at", "sender_shown", "user", "kind", "text", "detail")
    list_filter = ("kind", month_filter("received_at"))
    list_select_related = ("user",)
    search_fields = ("wamid", "wa_number")
    ordering = ("-received_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = (
        "wamid",
        "wa_number",
        "user",
        "kind",
        "text",
        "payload",
        "context_id",
        "sent_at",
        "received_at",
        "crew_assignment",
        "webhook",
        "detail",
    )
    fields = readonly_fields

    @admin.display(description="From", ordering="wa_number")
    def sender_shown(self, obj):
        return format_phone(obj.wa_number)
