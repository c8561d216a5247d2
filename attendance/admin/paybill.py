"""Paybill payments in admin: every payment made from the SIM menu, the unattributed queue
Finance works (assign to a member, or mark not ours), and the notices Daraja posted."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from attendance.models import PaybillNotice, PaybillPayment, member_name
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
            return f"{payment.receipt}: KES {payment.amount} credited to {member.get_username()}."

        return self._decide(
            request, pk, AssignForm, "Assign to a member", "Credit this member", act
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
