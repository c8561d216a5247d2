"""Finance's statutory returns: what each payslip deducted, and a month's returns to file.

The returns page picks a pay month, shows its totals beside the payslips' and what to remit by
when, and offers each file: the P10 employee sheet (CSV), the SHIF, NSSF, housing levy and
withholding schedules (XLSX) and each employee's P9 card for the year (PDF). Every download is
in the audit trail, as the other exports of personal data are.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse

from attendance.models import PayRun, StatutoryDeduction
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.pdf import PdfUnavailable, html_to_pdf
from attendance.services.jobs.returns import (
    SCHEDULES,
    month_of_returns,
    p9_card,
    p10_csv,
    schedule_xlsx,
)

from .display import ReadOnlyAdminMixin, member_column

Kind = StatutoryDeduction.Kind
ZERO = Decimal("0.00")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _month(text: str) -> date:
    try:
        year, number = (int(part) for part in text.split("-"))
        return date(year, number, 1)
    except ValueError as error:
        raise Http404("No such month.") from error


def _remit_by(month: date) -> date:
    """The 9th of the next month (PAYE, SHIF, NSSF; the housing levy's ninth working day is
    later, so this date is safe for all four)."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=9)


@admin.register(StatutoryDeduction)
class StatutoryDeductionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("member", "month", "kind", "amount", "payslip")
    list_filter = ("kind", "month")
    list_select_related = ("user", "member__pay_run")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    search_help_text = "A member's name or username."
    show_full_result_count = False
    member = member_column()

    @admin.display(description="Pay run")
    def payslip(self, obj):
        return str(obj.member.pay_run)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("returns/", view(self.returns_view), name="attendance_statutory_returns"),
            path(
                "returns/<str:month>/<str:name>/",
                view(self.return_file_view),
                name="attendance_statutory_return_file",
            ),
            path(
                "returns/p9/<int:year>/<int:user_id>/",
                view(self.p9_view),
                name="attendance_statutory_p9",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = dict(extra_context or {})
        extra["returns_url"] = reverse("admin:attendance_statutory_returns")
        return super().changelist_view(request, extra)

    def _allowed(self, request) -> None:
        if not self.has_view_permission(request):
            raise PermissionDenied

    def returns_view(self, request):
        self._allowed(request)
        months = list(
            PayRun.objects.filter(pay_month__isnull=False)
            .order_by("-pay_month")
            .values_list("pay_month", flat=True)
            .distinct()[:24]
        )
        chosen = _month(request.GET["month"]) if request.GET.get("month") else None
        if chosen is None and months:
            chosen = months[0]
        context = {
            **self.admin_site.each_context(request),
            "title": "Statutory returns",
            "opts": self.model._meta,
            "months": months,
            "month": chosen,
        }
        if chosen is not None:
            rows = month_of_returns(chosen)
            employees = [m for m in rows if m.is_employee]

            def total(kind: str) -> Decimal:
                return sum((m.amount(kind) for m in rows), ZERO)

            context.update(
                members=len(rows),
                employees=employees,
                contractors=len(rows) - len(employees),
                totals=[
                    ("PAYE", total(Kind.PAYE)),
                    ("SHIF", total(Kind.SHIF)),
                    ("NSSF (employee)", total(Kind.NSSF)),
                    ("NSSF (employer)", total(Kind.EMPLOYER_NSSF)),
                    ("Housing levy (employee)", total(Kind.AHL)),
                    ("Housing levy (employer)", total(Kind.EMPLOYER_AHL)),
                    ("Withholding tax", total(Kind.WHT)),
                ],
                gross=sum((m.gross for m in rows), ZERO),
                remit_by=_remit_by(chosen),
                files=[
                    ("p10", "PAYE: P10 employee sheet (CSV)"),
                    ("shif", "SHIF schedule (XLSX)"),
                    ("nssf", "NSSF schedule (XLSX)"),
                    ("ahl", "Housing levy schedule (XLSX)"),
                    ("wht", "Contractors' withholding tax (XLSX)"),
                ],
            )
        return TemplateResponse(
            request, "admin/attendance/statutorydeduction/returns.html", context
        )

    def return_file_view(self, request, month, name):
        self._allowed(request)
        chosen = _month(month)
        if name != "p10" and name not in SCHEDULES:
            raise Http404("No such return.")
        # The audit row names the month's latest pay run: a month without one has no return.
        run = PayRun.objects.filter(pay_month=chosen).order_by("-pk").first()
        if run is None:
            raise Http404("No pay run was approved in that month.")
        audit_record(
            AuditEvent.PERSONAL_DATA_EXPORTED,
            actor=request.user,
            target=run,
            details={"export": f"{name} return", "month": f"{chosen:%Y-%m}"},
        )
        filename = f"{name}-{chosen:%Y-%m}"
        if name == "p10":
            response = StreamingHttpResponse(p10_csv(chosen), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
            return response
        buffer = io.BytesIO()
        schedule_xlsx(name, chosen, buffer)
        response = HttpResponse(buffer.getvalue(), content_type=XLSX)
        response["Content-Disposition"] = f'attachment; filename="{filename}.xlsx"'
        return response

    def p9_view(self, request, year, user_id):
        self._allowed(request)
        user = get_object_or_404(User.objects.select_related("statutory"), pk=user_id)
        card = p9_card(user, year)
        if not card.months:
            raise Http404("No pay as an employee that year.")
        audit_record(
            AuditEvent.PERSONAL_DATA_EXPORTED,
            actor=request.user,
            target=user,
            details={"export": "P9", "year": year},
        )
        html = render_to_string("attendance/p9.html", {"card": card}, request)
        try:
            pdf = html_to_pdf(html, base_url=request.build_absolute_uri("/"))
        except PdfUnavailable as error:
            messages.error(request, str(error))
            return redirect(f"{reverse('admin:attendance_statutory_returns')}")
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="p9-{year}-{user.pk}.pdf"'
        return response
