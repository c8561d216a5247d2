from django.contrib import admin, messages
from django.utils.html import format_html

from attendance.models import BulkJob, EmailNotification

from .display import (
    EstimatedCountPaginator,
    IndexedSortMixin,
    ReadOnlyAdminMixin,
    status_badge_column,
)
from .jobs import start_job
from .search import IndexedSearchMixin, month_filter

# A password reset email carries a link that sets the account's password: shown to staff, it
# would let any of them take over another account (an admin's included).
LINK_HIDDEN_TYPES = {EmailNotification.Type.PASSWORD_RESET}
LINK_HIDDEN = "(Hidden: this email carries a password reset link.)"


@admin.register(EmailNotification)
class EmailNotificationAdmin(
    IndexedSortMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Read-only: what was sent is history. Failed rows can be queued again."""

    list_display = (
        "recipient",
        "subject",
        "notification_type",
        "status_badge",
        "sent_at",
        "failed_attempts",
        "created_at",
    )
    list_filter = ("notification_type", "status", month_filter("created_at"))
    search_fields = ("recipient",)
    search_email = "recipient"
    search_help_text = "An email address, or the name of the member it was sent to."
    sortable_by = ("recipient", "notification_type", "status_badge", "sent_at", "created_at")
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["resend_failed"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "recipient",
                    "user",
                    "notification_type",
                    "subject",
                    "event",
                    "crew_assignment",
                    "payment",
                )
            },
        ),
        (
            "Delivery",
            {
                "fields": (
                    "status",
                    "sent_at",
                    "failed_attempts",
                    "last_error",
                    "next_attempt_at",
                    "created_at",
                )
            },
        ),
        ("Content", {"fields": ("preview", "body", "attachment_names")}),
    )
    readonly_fields = tuple(f for _, options in fieldsets for f in options["fields"])

    status_badge = status_badge_column()

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            # The list shows none of the bodies (an invitation's HTML is tens of KB).
            queryset = queryset.defer("message", "html_message", "attachments")
        return queryset

    @admin.display(description="HTML preview")
    def preview(self, obj):
        if obj.notification_type in LINK_HIDDEN_TYPES:
            return LINK_HIDDEN
        if not obj.html_message:
            return "(plain text only)"
        # A sandboxed iframe: the email's HTML can neither run scripts nor touch the admin.
        # Tall enough for a whole invitation, Confirm and Decline buttons included.
        return format_html(
            '<iframe class="sf-email-preview" sandbox srcdoc="{}" title="Email preview"></iframe>',
            obj.html_message,
        )

    @admin.display(description="Plain-text body")
    def body(self, obj):
        if obj.notification_type in LINK_HIDDEN_TYPES:
            return LINK_HIDDEN
        return format_html('<div class="sf-email-text">{}</div>', obj.message)

    @admin.display(description="Attachments")
    def attachment_names(self, obj):
        return ", ".join(a["filename"] for a in obj.attachments) or "none"

    @admin.action(description="Resend failed notifications")
    def resend_failed(self, request, queryset):
        failed = list(
            queryset.filter(status=EmailNotification.Status.FAILED)
            .order_by("pk")
            .values_list("pk", "recipient", "subject")
        )
        skipped = queryset.count() - len(failed)
        if skipped:
            messages.info(
                request, f"{skipped} selected notification(s) were not failed; left alone."
            )
        if not failed:
            return None
        return start_job(
            request,
            kind=BulkJob.Kind.RESEND_EMAILS,
            targets=[(pk, f"{recipient}: {subject}") for pk, recipient, subject in failed],
            what=f"{len(failed)} failed email(s) sent again",
        )
