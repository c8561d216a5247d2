from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from attendance.models import BulkJob, MpesaCallback, MpesaPayment, member_name
from attendance.services.payments import (
    PaymentError,
    payment_credit_after_review,
    payment_resend,
)
from attendance.services.payments.amounts import PROMPT_MAXIMUM, PROMPT_MINIMUM
from attendance.wording import kes

from .display import (
    EstimatedCountPaginator,
    IndexedSortMixin,
    ReadOnlyAdminMixin,
    local_time,
    member_column,
    status_badge,
)
from .inbox import InboxAdminMixin
from .jobs import start_job
from .search import IndexedSearchMixin, LinkedFilter, day_filter, month_filter


def can_request_payments(request) -> bool:
    return request.user.has_perm("attendance.request_mpesapayment")


def can_review_payments(request) -> bool:
    return request.user.has_perm("attendance.review_mpesapayment")


PAYMENT_FIELDS = (
    "user",
    "requested_by",
    "phone_number",
    "amount",
    "payment_purpose",
    "account_reference",
    "transaction_desc",
)
MPESA_FIELDS = (
    "status",
    "checkout_request_id",
    "merchant_request_id",
    "receipt_number",
    "transaction_date",
    "paid_amount",
    "paid_phone_number",
    "result_code",
    "result_description",
    "settled_via",
    "ledger_entry",
    "needs_review",
    "review_reason",
)
TIME_FIELDS = (
    "initiated_at",
    "completed_at",
    "settled_at",
    "last_queried_at",
    "query_count",
    "updated_at",
)


class ResultFilter(LinkedFilter):
    """Payments that ended with one Daraja result code (the dashboard's top failure reasons)."""

    title = "result"
    parameter_name = "result"

    def label(self, value):
        return "no result code" if value == "-" else f"code {value}"[:40]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(result_code="" if value == "-" else value)


@admin.register(MpesaPayment)
class MpesaPaymentAdmin(IndexedSortMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Nothing here edits money: every field is read-only, changes go through services."""

    # What staff look for first (who, how much, how it ended, the receipt, resend) on the left:
    # at 1280 px with the sidebar and filters open, the last columns leave the screen.
    list_display = (
        "member",
        "amount_kes",
        "status_badge",
        "receipt_number",
        "resend_button",
        "phone_number",
        "initiated",
        "payment_purpose",
    )
    list_filter = (
        "status",
        "needs_review",
        month_filter("initiated_at"),
        day_filter("initiated_at"),
        ResultFilter,
    )
    search_fields = ("phone_number",)  # shows the box; IndexedSearchMixin does the search
    search_phone = "phone_number"
    search_receipt = "receipt_number"
    search_checkout = "checkout_request_id"
    # Columns with an index to sort by (the member's name would sort 200,000 joined rows).
    sortable_by = ("amount_kes", "status_badge", "receipt_number", "phone_number", "initiated")
    list_select_related = ("user",)
    ordering = ("-initiated_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["check_status_now", "credit_after_review", "export_csv"]
    fieldsets = (
        ("Payment", {"fields": PAYMENT_FIELDS}),
        ("M-Pesa response", {"fields": MPESA_FIELDS}),
        ("Timestamps", {"fields": TIME_FIELDS}),
    )
    readonly_fields = PAYMENT_FIELDS + MPESA_FIELDS + TIME_FIELDS

    # Admin actions name these ("mpesa_request", "mpesa_review"): money moves only for staff
    # given the permission (the Finance group), never for everyone who may view payments.
    def has_mpesa_request_permission(self, request):
        return can_request_payments(request)

    def has_mpesa_review_permission(self, request):
        return can_review_payments(request)

    def get_list_display(self, request):
        if can_request_payments(request):
            return self.list_display
        return tuple(f for f in self.list_display if f != "resend_button")

    change_list_template = "admin/attendance/mpesapayment/change_list.html"

    class Media:
        js = ("js/poll.js", "js/admin_payments.js")

    def get_urls(self):
        return [
            path(
                "<int:payment_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name="attendance_mpesapayment_resend",
            ),
            path(
                "status/",
                self.admin_site.admin_view(self.status_view),
                name="attendance_mpesapayment_status",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        narrowed = any(
            key in request.GET for key in ("month", "day", "result", "q", "needs_review__exact")
        )
        if changelist is not None and narrowed:
            # Totals of the filtered list (all pages), in one aggregate query: of a month or a
            # search, not of a year of payments (a sum over 200,000 rows on every page).
            response.context_data["totals"] = payment_totals(changelist.queryset)
        return response

    def status_view(self, request):
        """The changelist's open rows ask here how they stand now (JSON), so a payment that
        settles while staff watch updates in place."""
        if not self.has_view_permission(request):
            raise PermissionDenied("Viewing payments needs the Finance role.")
        ids = [int(n) for n in request.GET.get("ids", "").split(",") if n.isdigit()][:100]
        rows = MpesaPayment.objects.filter(pk__in=ids).only(
            "pk", "status", "needs_review", "receipt_number"
        )
        return JsonResponse(
            {
                str(p.pk): {
                    "open": p.status in MpesaPayment.OPEN,
                    "badge": str(self.status_badge(p)),
                    "receipt": p.receipt_number,
                }
                for p in rows
            }
        )

    member = member_column()

    @admin.display(description="Asked", ordering="initiated_at")
    def initiated(self, obj):
        return local_time(obj.initiated_at, day_of=timezone.now())

    @admin.display(description="Amount", ordering="amount")
    def amount_kes(self, obj):
        return kes(obj.amount)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        badge = status_badge(obj.status, obj.get_status_display())
        if obj.needs_review:
            badge = format_html('{} <span class="sf-warning">review</span>', badge)
        if obj.status in MpesaPayment.OPEN:
            # admin_payments.js follows these until they settle.
            return format_html('<span data-open-payment="{}">{}</span>', obj.pk, badge)
        return badge

    @admin.display(description="")
    def resend_button(self, obj):
        if obj.status not in (MpesaPayment.Status.FAILED, MpesaPayment.Status.CANCELLED):
            return ""
        # The link opens a confirmation page; only its POST prompts the phone.
        return format_html(
            '<a class="button" href="{}">Resend STK push</a>',
            reverse("admin:attendance_mpesapayment_resend", args=[obj.pk]),
        )

    def resend_view(self, request, payment_id):
        if not can_request_payments(request):
            raise PermissionDenied(
                "Resending a prompt needs the permission “Can send M-Pesa prompts to members” "
                "(the Finance role)."
            )
        payment = get_object_or_404(MpesaPayment.objects.select_related("user"), pk=payment_id)
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "title": "Resend STK push",
                "payment": payment,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/attendance/resend_payment.html", context)
        try:
            new = payment_resend(payment=payment, by=request.user)
        except PaymentError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"New prompt sent to {new.phone_number} for {kes(new.amount)}."
            )
        return HttpResponseRedirect(reverse("admin:attendance_mpesapayment_changelist"))

    @admin.action(description="Check status now (ask M-Pesa)")
    def check_status_now(self, request, queryset):
        waiting = list(
            queryset.filter(status__in=MpesaPayment.OPEN).select_related("user").order_by("pk")
        )
        if not waiting:
            messages.info(request, "None of the selected payments is waiting for an answer.")
            return None
        return start_job(
            request,
            kind=BulkJob.Kind.CHECK_PAYMENTS,
            targets=[
                (p.pk, f"{member_name(p.user)}, {kes(p.amount, whole=True)}") for p in waiting
            ],
            what=f"status checks of {len(waiting)} payment(s)",
        )

    @admin.action(description="Export selected payments as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        # For reconciling against the M-Pesa statement: "select all" exports the whole
        # filtered list (a month, completed only, ...). Written by a background job: 200,000
        # rows take longer than a request may.
        ids = list(queryset.order_by().values_list("pk", flat=True))
        return start_job(
            request,
            kind=BulkJob.Kind.EXPORT_PAYMENTS,
            params={"ids": ids},
            total=len(ids),
            what=f"a CSV of {len(ids):,} payment(s)",
        )

    @admin.action(
        description="Credit reviewed payments to the ledger", permissions=["mpesa_review"]
    )
    def credit_after_review(self, request, queryset):
        credited = 0
        for payment in queryset.filter(needs_review=True):
            try:
                payment_credit_after_review(payment=payment, by=request.user)
                credited += 1
            except PaymentError as error:
                messages.error(request, f"Payment {payment.pk}: {error.message}")
        messages.success(request, f"{credited} payment(s) credited.")


def payment_totals(queryset) -> dict:
    """Counts and amounts of a payment list by outcome, for the changelist's summary line."""
    Status = MpesaPayment.Status
    return queryset.order_by().aggregate(
        count=Count("pk"),
        completed=Count("pk", filter=Q(status=Status.COMPLETED)),
        completed_amount=Sum("amount", filter=Q(status=Status.COMPLETED)),
        open=Count("pk", filter=Q(status__in=MpesaPayment.OPEN)),
        failed=Count("pk", filter=Q(status__in=[Status.FAILED, Status.CANCELLED])),
        review=Count("pk", filter=Q(needs_review=True)),
    )


@admin.register(MpesaCallback)
class MpesaCallbackAdmin(InboxAdminMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The STK inbox: every callback as it arrived."""

    list_display = ("received_at", "checkout_request_id", "status_badge", "remote_addr", "payment")
    list_filter = ("status", month_filter("received_at"))
    search_fields = ("=checkout_request_id",)
    search_checkout = "checkout_request_id"
    search_member = None
    search_help_text = "A checkout id (ws_CO_...)."
    sortable_by = ("received_at", "status_badge")
    list_select_related = ("payment__user",)
    ordering = ("-received_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "remote_addr",
        "checkout_request_id",
        "payment",
        "raw_body",
    )


class RequestPaymentForm(forms.Form):
    amount = forms.IntegerField(
        required=False,
        min_value=PROMPT_MINIMUM,
        max_value=PROMPT_MAXIMUM,
        help_text="Whole shillings. Leave empty to ask each member for their balance "
        "(rounded up to a whole shilling).",
    )
    purpose = forms.CharField(max_length=100, initial="Balance payment")


@admin.action(description="Request M-Pesa payment", permissions=["mpesa_request"])
def request_mpesa_payment(modeladmin, request, queryset):
    """Profile action: send an M-Pesa prompt to each selected member (intermediate form)."""
    profiles = list(queryset.select_related("user"))
    if "apply" in request.POST:
        form = RequestPaymentForm(request.POST)
        if form.is_valid():
            # A background job: 500 pushes take minutes, far past a request's life. Each
            # member's amount is worked out when their turn comes (their balance then).
            return start_job(
                request,
                kind=BulkJob.Kind.PROMPT_PAYMENTS,
                targets=[(p.pk, member_name(p.user)) for p in profiles],
                params={
                    "amount": form.cleaned_data["amount"],
                    "purpose": form.cleaned_data["purpose"],
                },
                what=f"M-Pesa prompts to {len(profiles)} member(s)",
            )
    else:
        form = RequestPaymentForm(initial={"purpose": "Balance payment"})
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Request M-Pesa payment",
        "form": form,
        "profiles": profiles,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "selected": [p.pk for p in profiles],
    }
    return TemplateResponse(request, "admin/attendance/request_payment.html", context)
