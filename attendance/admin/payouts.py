"""M-Pesa payouts in admin: each payout's state live (with its reason and receipt), the
results Daraja posted, "Check status now", for a payout proven unpaid a new attempt, and for
one whose outcome M-Pesa never told us, closing it by hand after checking the M-Pesa portal.
Stored results that failed processing can be processed again or set aside."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from attendance.models import BulkJob, Payout, PayoutResult, PayRun
from attendance.services.payouts import (
    PayoutError,
    payout_check,
    payout_close,
    payout_failure_text,
    payout_retry,
)
from attendance.wording import kes

from .display import (
    EstimatedCountPaginator,
    ReadOnlyAdminMixin,
    member_column,
    status_badge_column,
)
from .inbox import InboxAdminMixin
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


class PayoutCloseForm(forms.Form):
    outcome = forms.ChoiceField(
        label="What the M-Pesa portal shows",
        choices=[("paid", "It was paid"), ("not_paid", "It was not paid")],
        widget=forms.RadioSelect,
    )
    receipt = forms.CharField(label="M-Pesa receipt (when paid)", required=False, max_length=12)
    reason = forms.CharField(
        label="What you checked", widget=forms.Textarea(attrs={"rows": 3}), max_length=200
    )


class UnpaidFilter(admin.SimpleListFilter):
    """Payouts that did not pay and nobody has tried again: what the dashboard counts."""

    title = "to pay again"
    parameter_name = "unpaid"

    def lookups(self, request, model_admin):
        return [("1", "Not paid, not tried again")]

    def queryset(self, request, queryset):
        if self.value() != "1":
            return queryset
        return queryset.filter(status=Payout.Status.FAILED, retried_by__isnull=True).exclude(
            result_code="not_owed"
        )


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
    list_filter = (
        "status",
        "needs_review",
        UnpaidFilter,
        PayRunFilter,
        month_filter("created_at"),
    )
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
        if obj.capped_from:
            return f"{kes(obj.amount, whole=True)} (payslip {kes(obj.capped_from, whole=True)})"
        return kes(obj.amount, whole=True)

    def get_urls(self):
        return [
            path(
                "<int:pk>/close/",
                self.admin_site.admin_view(self.close_view),
                name="attendance_payout_close",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        payout = Payout.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if payout is not None:
            extra["can_close"] = payout.status in (
                Payout.Status.UNKNOWN,
                Payout.Status.SUBMITTED,
            ) and request.user.has_perm("attendance.close_payout")
            if payout.status == Payout.Status.FAILED:
                extra["not_paid_words"] = payout_failure_text(payout)
        return super().change_view(request, object_id, form_url, extra)

    def close_view(self, request, pk):
        """Close a payout whose outcome is unknown (the admin site already asked for the
        second factor; this action also needs its own permission)."""
        if not request.user.has_perm("attendance.close_payout"):
            raise PermissionDenied(
                "Closing a payout by hand needs the permission 'Can close payouts whose outcome "
                "is unknown'."
            )
        payout = get_object_or_404(Payout.objects.select_related("user", "pay_run"), pk=pk)
        back = reverse("admin:attendance_payout_change", args=[payout.pk])
        form = PayoutCloseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payout_close(
                    payout=payout,
                    by=request.user,
                    paid=form.cleaned_data["outcome"] == "paid",
                    receipt=form.cleaned_data["receipt"],
                    reason=form.cleaned_data["reason"],
                )
            except PayoutError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{payout} closed; the audit trail has your reason.")
                return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "admin/attendance/payout/close.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Close {payout}",
                "payout": payout,
                "form": form,
                "back": back,
                "opts": self.model._meta,
            },
        )

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
class PayoutResultAdmin(InboxAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The payout inbox: every result, timeout, status and balance answer as it arrived."""

    list_display = (
        "received_at",
        "kind",
        "status_badge",
        "originator_conversation_id",
        "payout",
        "detail",
    )
    list_filter = ("status", "kind")
    search_fields = ("=originator_conversation_id", "=conversation_id")
    search_help_text = "An OriginatorConversationID or ConversationID."
    list_select_related = ("payout",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("received_at", "status_badge")
    reprocess_permission = "attendance.submit_payout"
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "kind",
        "remote_addr",
        "conversation_id",
        "originator_conversation_id",
        "payout",
        "raw_body",
    )
