"""One admin pattern for every inbox (STK callbacks, payout results, SMS callbacks, and the
providers still to come): filter by status, read the raw body and the reason, process a row
again (after a fix) or set it aside. The rows themselves are never edited."""

from django.contrib import admin, messages

from attendance.models.inbox import InboxStatus
from attendance.services.core.inbox import inbox_for

from .display import status_badge_column

S = InboxStatus
# Rows a person may send through again: failed, quarantined, or waiting/unmatched (what
# they name may exist now).
AGAIN = (S.RECEIVED, S.ERROR, S.WAITING, S.QUARANTINED, S.UNMATCHED)
ACTION_LIMIT = 200  # rows per action, so a select-all on a year of history cannot time out


class InboxAdminMixin:
    """Mix into a ReadOnlyAdminMixin ModelAdmin of an InboxRow model. `reprocess_permission`
    names the permission that processing again needs (None: whoever may see the inbox)."""

    reprocess_permission: str | None = None
    inbox_readonly = ("status", "detail", "attempts", "received_at", "processed_at")
    actions = ["process_again", "set_aside"]
    status_badge = status_badge_column(prefix="callback-")

    def has_reprocess_permission(self, request) -> bool:
        return self.reprocess_permission is None or request.user.has_perm(self.reprocess_permission)

    @admin.action(
        description="Process again (failed, quarantined, waiting or unmatched rows)",
        permissions=["reprocess"],
    )
    def process_again(self, request, queryset):
        inbox = inbox_for(self.model)
        rows = list(queryset.filter(status__in=AGAIN).order_by("pk")[:ACTION_LIMIT])
        outcomes = [inbox.reprocess(row) for row in rows]
        if not outcomes:
            messages.info(request, "Nothing to process again: those rows are settled already.")
            return
        labels = dict(S.choices) | {"skipped": "being processed right now"}
        summary = ", ".join(
            f"{outcomes.count(s)} {labels.get(s, s).lower()}" for s in sorted(set(outcomes))
        )
        messages.info(request, f"Processed again: {summary}.")

    @admin.action(description="Set aside (never process these rows)", permissions=["reprocess"])
    def set_aside(self, request, queryset):
        inbox = inbox_for(self.model)
        done = sum(
            inbox.set_aside(row, reason=f"by {request.user.get_username()}")
            for row in queryset.order_by("pk")[:ACTION_LIMIT]
        )
        messages.info(request, f"{done} row(s) set aside; they stay stored.")
