"""Paybill payments in admin: every payment made from the SIM menu, the unattributed queue
Finance works (assign to a member, or mark not ours), and the notices Daraja posted."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from attendance.models import (
    PaybillNotice,
    PaybillPayment,
    Reversal,
    ReversalResult,
    member_name,
)
from attendance.services.payments.paybill import (
    PaybillError,
    paybill_assign,
    paybill_find_member,
    paybill_not_ours,
)
from attendance.services.payments.paybill_registration import (
    PaybillSetupError,
    paybill_register_urls,
)
from attendance.services.payments.reversals import ReversalError, reversal_request
from attendance.wording import kes

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin, status_badge_column
from .inbox import InboxAdminMixin
from .search import IndexedSearchMixin, month_filter

P = PaybillPayment.Status


class AssignForm(forms.Form):
    member = forms.CharField(
        label="Member",
        max_length=80,
        help_text="Their account code (SF…), M-Pesa number or username.",
    )


class ReverseForm(forms.Form):
    reason = forms.CharField(
        label="Why it goes back to the payer",
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: paid to our Paybill by mistake; paid twice for the same charge.",
    )


class NotOursForm(forms.Form):
    reason = forms.CharField(
        label="Why it is not ours",
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: paid to our Paybill by mistake; the payer called on 5 Dec.",
    )


@admin.register(PaybillPayment)
class PaybillPaymentAdmin(ReadOnlyAdminMixin, IndexedSearchMixin, admin.ModelAdmin):
    list_display = (
        "receipt",
        "amount_kes",
        "status_badge",
        "member",
        "bill_ref",
        "payer_name",
        "paid_at",
        "detail",
    )
    list_filter = ("status", "source", "attributed_by", month_filter("received_at"))
    list_select_related = ("user",)
    search_receipt = "receipt"
    search_account_code = "user__profile__account_code"
    search_help_text = "A receipt, a member's account code or a member's name."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("received_at", "paid_at", "amount", "status")
    readonly_fields = [f.name for f in PaybillPayment._meta.fields]

    status_badge = status_badge_column(prefix="paybill-")

    @admin.display(description="Amount", ordering="amount")
    def amount_kes(self, obj):
        return kes(obj.amount)

    @admin.display(description="Member", ordering="user__first_name")
    def member(self, obj):
        return member_name(obj.user) if obj.user_id else "Nobody yet"

    def get_urls(self):
        return [
            path(
                "<int:pk>/assign/",
                self.admin_site.admin_view(self.assign_view),
                name="attendance_paybillpayment_assign",
            ),
            path(
                "<int:pk>/not-ours/",
                self.admin_site.admin_view(self.not_ours_view),
                name="attendance_paybillpayment_not_ours",
            ),
            path(
                "<int:pk>/reverse/",
                self.admin_site.admin_view(self.reverse_view),
                name="attendance_paybillpayment_reverse",
            ),
            path(
                "register/",
                self.admin_site.admin_view(self.register_view),
                name="attendance_paybillpayment_register",
            ),
            *super().get_urls(),
        ]

    def has_assign_permission(self, request):
        return request.user.has_perm("attendance.assign_paybillpayment")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        payment = (
            PaybillPayment.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        )
        extra["can_decide"] = (
            payment is not None
            and payment.status == P.UNATTRIBUTED
            and self.has_assign_permission(request)
        )
        extra["can_reverse"] = (
            payment is not None
            and payment.status in (P.NOT_OURS, P.CREDITED)
            and request.user.has_perm("attendance.request_reversal")
            and not payment.reversals.filter(status__in=Reversal.ALIVE).exists()
        )
        return super().change_view(request, object_id, form_url, extra)

    def _decide(self, request, pk, form_class, title, button, act):
        """The assign and not-ours pages: the admin site has asked for the second factor;
        this needs its own permission too."""
        if not self.has_assign_permission(request):
            raise PermissionDenied(
                "Deciding whose a Paybill payment is needs the permission 'Can assign Paybill "
                "payments to members'."
            )
        payment = get_object_or_404(PaybillPayment, pk=pk)
        back = reverse("admin:attendance_paybillpayment_change", args=[payment.pk])
        if payment.status != P.UNATTRIBUTED:
            # Back from a decision already made, or a second tab: nothing left to decide.
            messages.info(
                request,
                f"{payment.receipt} is {payment.get_status_display().lower()}: nothing to decide.",
            )
            return HttpResponseRedirect(back)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                message = act(payment, form.cleaned_data)
            except PaybillError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, message)
                return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "admin/attendance/paybillpayment/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{title}: {payment.receipt}",
                "button": button,
                "payment": payment,
                "form": form,
                "back": back,
                "opts": self.model._meta,
            },
        )

    def assign_view(self, request, pk):
        def act(payment, data):
            member = paybill_find_member(data["member"])
            paybill_assign(payment=payment, member=member, by=request.user)
            return f"{payment.receipt}: {kes(payment.amount)} credited to {member.get_username()}."

        return self._decide(
            request, pk, AssignForm, "Assign to a member", "Credit this member", act
        )

    def reverse_view(self, request, pk):
        """Ask M-Pesa to give the payment back (its own permission; the admin asked for the
        second factor)."""
        if not request.user.has_perm("attendance.request_reversal"):
            raise PermissionDenied("Reversing payments needs 'Can reverse Paybill payments'.")
        payment = get_object_or_404(PaybillPayment, pk=pk)
        back = reverse("admin:attendance_paybillpayment_change", args=[payment.pk])
        form = ReverseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                reversal = reversal_request(
                    payment=payment, by=request.user, reason=form.cleaned_data["reason"]
                )
            except ReversalError as error:
                form.add_error(None, str(error))
            else:
                level = (
                    messages.ERROR if reversal.status == Reversal.Status.FAILED else messages.INFO
                )
                messages.add_message(
                    request,
                    level,
                    f"Reversal of {payment.receipt} asked. {reversal.get_status_display()}"
                    + (f": {reversal.result_description}" if reversal.result_description else "")
                    + (
                        ". M-Pesa's result arrives in a few seconds: reload to see it."
                        if reversal.status == Reversal.Status.SENT
                        else "."
                    ),
                )
                return HttpResponseRedirect(back)
        return TemplateResponse(
            request,
            "admin/attendance/paybillpayment/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Reverse to the payer: {payment.receipt}",
                "button": f"Reverse {kes(payment.amount)}",
                "payment": payment,
                "form": form,
                "back": back,
                "opts": self.model._meta,
                "warning": "M-Pesa returns the full amount to the payer from the Utility "
                "account and texts them."
                + (
                    " The member it was credited to loses the credit."
                    if payment.status == P.CREDITED
                    else ""
                ),
            },
        )

    def not_ours_view(self, request, pk):
        def act(payment, data):
            paybill_not_ours(payment=payment, by=request.user, reason=data["reason"])
            return f"{payment.receipt} marked not ours; nobody was credited."

        return self._decide(request, pk, NotOursForm, "Not ours", "Mark not ours", act)

    def register_view(self, request):
        """Register the confirmation and validation URLs with Daraja (POST only)."""
        if not request.user.is_superuser:
            raise PermissionDenied("Registering the Paybill URLs is for administrators.")
        if request.method == "POST":
            try:
                messages.info(request, paybill_register_urls())
            except PaybillSetupError as error:
                messages.error(request, str(error))
        return HttpResponseRedirect(reverse("admin:attendance_paybillpayment_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "can_register": request.user.is_superuser}
        return super().changelist_view(request, extra)


@admin.register(PaybillNotice)
class PaybillNoticeAdmin(InboxAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The Paybill inbox: validations, confirmations and Pull rows as they arrived."""

    list_display = (
        "received_at",
        "kind",
        "status_badge",
        "receipt",
        "bill_ref",
        "payment",
        "detail",
    )
    list_filter = ("status", "kind")
    search_fields = ("=receipt",)
    search_help_text = "An M-Pesa receipt (TransID)."
    list_select_related = ("payment",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("received_at", "status_badge")
    reprocess_permission = "attendance.assign_paybillpayment"
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "kind",
        "remote_addr",
        "receipt",
        "bill_ref",
        "payment",
        "raw_body",
    )


@admin.register(Reversal)
class ReversalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "receipt",
        "amount",
        "status",
        "reversal_receipt",
        "result_description",
        "requested_by",
        "created_at",
    )
    list_filter = ("status",)
    search_fields = ("=receipt", "=reversal_receipt")
    search_help_text = "The payment's receipt or the reversal's."
    list_select_related = ("requested_by",)
    readonly_fields = [f.name for f in Reversal._meta.fields]


@admin.register(ReversalResult)
class ReversalResultAdmin(InboxAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The reversal inbox: every result and queue timeout as it arrived."""

    list_display = (
        "received_at",
        "kind",
        "status_badge",
        "originator_conversation_id",
        "reversal",
        "detail",
    )
    list_filter = ("status", "kind")
    search_fields = ("=originator_conversation_id", "=conversation_id")
    list_select_related = ("reversal",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    reprocess_permission = "attendance.request_reversal"
    readonly_fields = (
        *InboxAdminMixin.inbox_readonly,
        "kind",
        "remote_addr",
        "originator_conversation_id",
        "conversation_id",
        "reversal",
        "raw_body",
    )
