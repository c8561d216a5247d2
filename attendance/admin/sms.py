from django.contrib import admin, messages
from django.utils.html import format_html

from attendance.models import BulkJob, MessageType, SmsCallback, SmsMessage
from attendance.phones import format_phone
from attendance.services.messaging.sms import sms_cost_by_month

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin, member_column, message_badge
from .inbox import InboxAdminMixin
from .jobs import start_job
from .search import IndexedSearchMixin, month_filter


class DeliveryFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [
            ("delivered", "Delivered"),
            ("undelivered", "Undelivered (reported failed)"),
            ("waiting", "Accepted, no final report yet"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "delivered":
                return queryset.filter(delivery_status__iexact="success")
            case "undelivered":
                return queryset.filter(delivery_status__in=["Failed", "Rejected", "Expired"])
            case "waiting":
                return queryset.filter(status=SmsMessage.Status.SENT).exclude(
                    delivery_status__in=["Success", "Failed", "Rejected", "Expired"]
                )
        return queryset


SECRET_TEXTS = {MessageType.PASSWORD_RESET, MessageType.PHONE_CODE}


@admin.register(SmsMessage)
class SmsMessageAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: what was sent is history. Failed texts can be sent again."""

    list_display = (
        "phone",
        "member",
        "notification_type",
        "badge",
        "parts",
        "cost_shown",
        "created_at",
    )
    list_filter = (
        "notification_type",
        "status",
        DeliveryFilter,
        "encoding",
        month_filter("created_at"),
    )
    list_select_related = ("user",)
    search_fields = ("phone_number",)
    search_phone = "phone_number"
    search_help_text = "A phone number (07..., +254...), or the name of the member."
    sortable_by = ("notification_type", "badge", "parts", "cost_shown", "created_at")
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend_failed"]
    change_list_template = "admin/attendance/smsmessage/change_list.html"
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "phone_number",
                    "user",
                    "notification_type",
                    "text",
                    "encoding",
                    "parts",
                    "event",
                    "crew_assignment",
                    "payment",
                    "fallback_email",
                )
            },
        ),
        (
            "Sending",
            {
                "fields": (
                    "status",
                    "provider_message_id",
                    "provider_status",
                    "cost",
                    "cost_currency",
                    "sent_at",
                    "failed_attempts",
                    "last_error",
                    "next_attempt_at",
                    "created_at",
                )
            },
        ),
        (
            "Delivery reports",
            {"fields": ("delivery_status", "failure_reason", "reported_at", "delivered_at")},
        ),
    )
    readonly_fields = tuple(f for _, options in fieldsets for f in options["fields"])

    member = member_column()

    @admin.display(description="To", ordering="phone_number")
    def phone(self, obj):
        return format_phone(obj.phone_number)

    @admin.display(description="Status", ordering="status")
    def badge(self, obj):
        return message_badge(obj)

    @admin.display(description="Cost", ordering="cost")
    def cost_shown(self, obj):
        if obj.cost is None:
            return "-"
        return f"{obj.cost_currency} {obj.cost:,.2f}".strip()

    @admin.display(description="Text")
    def text(self, obj):
        if obj.notification_type in SECRET_TEXTS:
            # A reset link or a number's code would let staff take over the account.
            return "(Hidden: this text carries a password reset link or a one-time code.)"
        return format_html('<div class="sf-sms-text">{}</div>', obj.message)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            # Totals of what is listed (the filters apply), per month, from AT's own costs.
            context["sms_totals"] = sms_cost_by_month(context["cl"].queryset.order_by())
        return response

    @admin.action(description="Resend failed SMS")
    def resend_failed(self, request, queryset):
        failed = list(
            queryset.filter(status=SmsMessage.Status.FAILED)
            .order_by("pk")
            .values_list("pk", "phone_number", "notification_type")
        )
        skipped = queryset.count() - len(failed)
        if skipped:
            messages.info(request, f"{skipped} selected SMS were not failed; left alone.")
        if not failed:
            return None
        return start_job(
            request,
            kind=BulkJob.Kind.RESEND_SMS,
            targets=[(pk, f"{format_phone(phone)}: {kind}") for pk, phone, kind in failed],
            what=f"{len(failed)} failed SMS sent again",
        )


@admin.register(SmsCallback)
class SmsCallbackAdmin(InboxAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Delivery reports and replies as Africa's Talking sent them. Unmatched replies are the
    ones a person should read."""

    list_display = ("received_at", "kind", "status_badge", "sender_shown", "text", "message")
    list_filter = ("status", "kind", month_filter("received_at"))
    sortable_by = ("received_at", "status_badge")
    search_fields = ("provider_id",)
    search_help_text = "A messageId or an incoming message's id."
    ordering = ("-received_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = ("message",)
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "kind",
        "provider_id",
        "sender",
        "text",
        "user",
        "crew_assignment",
        "message",
        "remote_addr",
        "raw_body",
    )
    fields = readonly_fields

    @admin.display(description="From / to", ordering="sender")
    def sender_shown(self, obj):
        return format_phone(obj.sender.lstrip("+")) if obj.sender else ""
