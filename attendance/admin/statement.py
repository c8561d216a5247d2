"""The M-Pesa statement in admin: importing the org portal's export, the reconciliation page
(matched, in the statement only, in our books only, amount mismatches, totals), and resolving
a row from there. Needs *Can import statements and reconcile*; the admin asks for the second
factor first."""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from attendance.models import PaybillPayment, StatementImport, StatementRow
from attendance.services.payments.books import default_period, reconciliation
from attendance.services.payments.paybill import PaybillError
from attendance.services.payments.statement import (
    StatementError,
    statement_import,
    statement_record_paybill,
)

from .display import EstimatedCountPaginator, ReadOnlyAdminMixin
from .search import IndexedSearchMixin

PERMISSION = "attendance.reconcile_statementimport"


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Statement file",
        help_text="The CSV or XLSX the M-Pesa org portal exports (header lines included).",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise forms.ValidationError("The period ends before it starts.")
        if data.get("start") and data.get("end") and (data["end"] - data["start"]).days > 366:
            raise forms.ValidationError("Reconcile at most a year at a time.")
        return data


def _needs_permission(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied(
            "Importing statements and reconciling needs the permission 'Can import statements "
            "and reconcile'."
        )


def reconcile_url(start: date, end: date) -> str:
    query = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    return f"{reverse('admin:attendance_statementimport_reconcile')}?{query}"


@admin.register(StatementImport)
class StatementImportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "file_name",
        "uploaded_at",
        "uploaded_by",
        "rows_read",
        "rows_new",
        "first_at",
        "last_at",
    )
    list_select_related = ("uploaded_by",)
    readonly_fields = [f.name for f in StatementImport._meta.fields]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="attendance_statementimport_import"),
            path(
                "reconcile/", view(self.reconcile_view), name="attendance_statementimport_reconcile"
            ),
            path(
                "rows/<int:pk>/record/",
                view(require_POST(self.record_view)),
                name="attendance_statementrow_record",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {**(extra_context or {}), "can_reconcile": request.user.has_perm(PERMISSION)}
        return super().changelist_view(request, extra)

    def _page(self, request, template, **context):
        return TemplateResponse(
            request,
            f"admin/attendance/statementimport/{template}",
            {**self.admin_site.each_context(request), "opts": self.model._meta, **context},
        )

    def import_view(self, request):
        _needs_permission(request)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                done = statement_import(file=upload, name=upload.name, by=request.user)
            except StatementError as error:
                form.add_error("file", str(error))
            else:
                statement = done.statement
                if statement.rows_new == 0:
                    messages.info(
                        request,
                        f"{statement.rows_read} rows read, all imported before: nothing changed.",
                    )
                else:
                    messages.success(
                        request,
                        f"{statement.rows_read} rows read, {statement.rows_new} new.",
                    )
                start, end = default_period()
                return HttpResponseRedirect(reconcile_url(start, end))
        return self._page(request, "import.html", title="Import an M-Pesa statement", form=form)

    def reconcile_view(self, request):
        _needs_permission(request)
        start, end = default_period()
        form = PeriodForm(request.GET or {"start": start, "end": end})
        if form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        report = reconciliation(start, end)
        return self._page(
            request,
            "reconcile.html",
            title=f"Reconciliation {start:%-d %b %Y} to {end:%-d %b %Y}",
            form=form,
            report=report,
            here=reconcile_url(start, end),
        )

    def record_view(self, request, pk):
        _needs_permission(request)
        row = get_object_or_404(StatementRow.objects.select_related("statement"), pk=pk)
        back = request.POST.get("next") or reverse("admin:attendance_statementimport_reconcile")
        if not back.startswith("/admin/"):
            back = reverse("admin:attendance_statementimport_reconcile")
        try:
            payment = statement_record_paybill(row=row, by=request.user)
        except (StatementError, PaybillError) as error:
            messages.error(request, str(error))
            return HttpResponseRedirect(back)
        messages.success(
            request,
            f"{row.receipt} recorded as a Paybill payment: {payment.get_status_display()}"
            + (f" ({payment.user.get_username()})." if payment.user_id else "."),
        )
        if payment.status == PaybillPayment.Status.UNATTRIBUTED:
            # Nobody named: straight to the payment, to assign it or mark it not ours.
            return HttpResponseRedirect(
                reverse("admin:attendance_paybillpayment_change", args=[payment.pk])
            )
        return HttpResponseRedirect(back)


@admin.register(StatementRow)
class StatementRowAdmin(ReadOnlyAdminMixin, IndexedSearchMixin, admin.ModelAdmin):
    list_display = ("receipt", "completed_at", "details", "paid_in", "withdrawn", "kind", "matched")
    list_filter = ("kind", "matched")
    search_receipt = "receipt"
    search_member = None
    search_help_text = "An M-Pesa receipt."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    sortable_by = ("completed_at",)
    readonly_fields = [f.name for f in StatementRow._meta.fields]
