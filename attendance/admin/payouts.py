"""M-Pesa payouts in admin: each payout's state live (with its reason and receipt), the
results Daraja posted, "Check status now" and, for a payout proven unpaid, a new attempt."""

from django.contrib import admin, messages

from attendance.models import BulkJob, Payout, PayoutResult, PayRun
from attendance.services.payouts import PayoutError, payout_check, payout_retry

from .display import (
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    member_column,
    status_badge_column,
)
from .jobs import start_job
from .search import IndexedSearchMixin, month_filter


class PayRunFilter(admin.SimpleListFilter):
    title = "pay run"
    parameter_name = "pay_run"

    def lookups(self, request, model_admin):
        runs = list(PayRun.objects.filter(payouts__isnull=False).distinct().order_by("-pk")[:12])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(r.pk) != chosen for r in runs):
            runs += list(PayRun.objects.filter(pk=chosen))
        return [(str(r.pk), str(r)) for r in runs]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(pay_run_id=int(value)) if value and value.isdigit() else queryset


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdminMixin, IndexedSearchMixin, admin.ModelAdmin):
    list_display = (
        "member",
        "amount_kes",
        "status_badge",
        "receipt_number",
        "result_description",
        "needs_review",
        "created_at",
    )
    list_filter = ("status", "needs_review", PayRunFilter, month_filter("created_at"))
    list_select_related = ("user",)
    search_fields = ("user__username",)
    search_phone = "phone_number"
    search_receipt = "receipt_number"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("created_at", "amount", "status")
    actions = ["check_now", "pay_again"]
    readonly_fields = [f.name for f in Payout._meta.fields]

    member = member_column()
    status_badge = status_badge_column(prefix="payout-")

    @admin.display(description="Amount", ordering="amount")
    def amount_kes(self, obj):
        return f"KES {obj.amount:,}"

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or request.user.has_perm(
            "attendance.submit_payout"
        )

    def has_submit_permission(self, request):
        return request.user.has_perm("attendance.submit_payout")

    @admin.action(description="Check status now (ask M-Pesa)", permissions=["submit"])
    def check_now(self, request, queryset):
        outcomes: dict[str, int] = {}
        for payout in queryset.order_by("pk")[:200]:
            outcome = payout_check(payout=payout)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary = ", ".join(f"{count} {what}" for what, count in sorted(outcomes.items()))
        messages.info(request, f"{summary}. Answers arrive in a few seconds: reload to see them.")

    @admin.action(
        description="Pay again (only payouts M-Pesa says were not paid)", permissions=["submit"]
    )
    def pay_again(self, request, queryset):

        made = []
        for payout in queryset.filter(status=Payout.Status.FAILED).order_by("pk"):
            try:
                made.append(payout_retry(payout=payout, by=request.user))
            except PayoutError as error:
                messages.warning(request, f"{payout}: {error}")
        if not made:
            messages.info(request, "Nothing to pay again: only failed payouts get a new attempt.")
            return None
        return start_job(
            request,
            kind=BulkJob.Kind.SUBMIT_PAYOUTS,
            targets=[(p.pk, f"{p.user.get_full_name() or p.user.username}") for p in made],
            what=f"{len(made)} new payout attempt(s)",
        )


@admin.register(PayoutResult)
class PayoutResultAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "kind",
        "status",
        "originator_conversation_id",
        "payout",
        "detail",
    )
    list_filter = ("kind", "status")
    list_select_related = ("payout",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("received_at",)
    readonly_fields = [f.name for f in PayoutResult._meta.fields]
