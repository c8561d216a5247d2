from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from attendance.models import BulkJob, MessageType, SmsCallback, SmsMessage
from attendance.phones import format_phone
from attendance.services.messaging.sms import sms_cost_by_month

from .display import (
    EstimatedCountPaginator,
    IndexedSortMixin,
    ReadOnlyAdminMixin,
    member_column,
    message_badge,
)
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
                # AT's word, as it writes it: an exact match the index and the planner read.
                return queryset.filter(delivery_status="Success")
            case "undelivered":
                return queryset.filter(delivery_status__in=["Failed", "Rejected", "Expired"])
            case "waiting":
                return queryset.filter(status=SmsMessage.Status.SENT).exclude(
                    delivery_status__in=["Success", "Failed", "Rejected", "Expired"]
                )
        return queryset


class EncodingFilter(admin.SimpleListFilter):
    """The two encodings a text can have, named; not a DISTINCT over every text (125 ms at
    500,000) on each view of the list, as a plain field filter would run."""

    title = "encoding"
    parameter_name = "encoding"

    def lookups(self, request, model_admin):
        return [
            ("GSM-7", "GSM-7 (plain: 160 characters a part)"),
            ("UCS-2", "UCS-2 (emoji or special letters: 70 a part)"),
        ]

    def queryset(self, request, queryset):
        return queryset.filter(encoding=self.value()) if self.value() else queryset


SECRET_TEXTS = {MessageType.PASSWORD_RESET, MessageType.PHONE_CODE}


@admin.register(SmsMessage)
class SmsMessageAdmin(IndexedSortMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
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
        EncodingFilter,
        month_filter("created_at"),
    )
    list_select_related = ("user",)
    search_fields = ("phone_number",)
    search_phone = "phone_number"
    search_help_text = "A phone number (07..., +254...), or the name of the member."
    # Not by parts: a text's cost follows its parts, and sorting by cost says the same.
    sortable_by = ("notification_type", "badge", "cost_shown", "created_at")
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

    def get_urls(self):
        return [
            path(
                "costs/",
                self.admin_site.admin_view(self.costs_view),
                name="attendance_smsmessage_costs",
            ),
            *super().get_urls(),
        ]

    def costs_view(self, request):
        """What the listed texts cost per month (the list's filters apply), from AT's own
        costs. A page of its own: adding up a year of texts (400 ms at 500,000) is a report
        asked for, not a price every view of the list should pay."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        list_query = request.GET.urlencode()
        filters = request.GET.copy()
        for name in ("o", "p"):  # the order and page of the list do not change its totals
            filters.pop(name, None)
        request.GET = filters  # what the list would filter by
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:  # the list itself says what was wrong
            return redirect(reverse("admin:attendance_smsmessage_changelist") + "?e=1")
        return TemplateResponse(
            request,
            "admin/attendance/smsmessage/costs.html",
            {
                **self.admin_site.each_context(request),
                "title": "What texts cost per month",
                "opts": self.opts,
                "totals": sms_cost_by_month(changelist.queryset.order_by()),
                "filtered": bool(filters),
                "list_query": list_query,
            },
        )

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
