"""The crew's pay on the portal: their timesheet lines, disputes and payslips."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from attendance.models import Payout, PayRunMember, TimesheetLine
from attendance.services.core.pdf import PdfUnavailable
from attendance.services.pay.payslip_documents import payslip_pdf as payslip_pdf_bytes
from attendance.services.pay.runs import payslip_for, payslip_pdf_name
from attendance.services.pay.timesheets import (
    PayError,
    timesheet_can_dispute,
    timesheet_dispute,
    timesheet_dispute_closes,
)


@dataclass(frozen=True)
class PayLine:
    """A timesheet line on My pay, with whether it can still be disputed."""

    line: TimesheetLine
    can_dispute: bool
    dispute_closes: datetime


@login_required
def my_pay(request):
    now = timezone.now()
    lines = (
        TimesheetLine.objects.filter(user=request.user)
        .select_related("event")
        .order_by("-event__starts_at", "-pk")
    )
    page = Paginator(lines, 20).get_page(request.GET.get("page"))
    rows = [
        PayLine(
            line=line,
            can_dispute=timesheet_can_dispute(line, now),
            dispute_closes=timesheet_dispute_closes(line),
        )
        for line in page
    ]
    payslips = (
        # A payslip exists once the member's earnings are on their ledger.
        PayRunMember.objects.filter(user=request.user)
        .select_related("pay_run")
        .order_by("-pk")[:12]
    )
    payouts = Payout.objects.filter(user=request.user).order_by("-created_at", "-pk")[:12]
    return render(
        request,
        "attendance/pay.html",
        {
            "page": page,
            "rows": rows,
            "payslips": payslips,
            "payouts": payouts,
            "window_days": settings.PAY_DISPUTE_WINDOW_DAYS,
        },
    )


@login_required
@require_POST
def dispute(request, line_id):
    # Only the member's own line: anyone else's is a 404, so ids leak nothing.
    line = get_object_or_404(TimesheetLine, pk=line_id, user=request.user)
    try:
        timesheet_dispute(line=line, user=request.user, reason=request.POST.get("reason", ""))
    except PayError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, _("Sent to the event manager. You will see their answer here."))
    return redirect("attendance:my_pay")


@login_required
def payslip(request, run_id):
    return render(
        request, "attendance/payslip.html", {"slip": payslip_for(_own_slip(request, run_id))}
    )


@login_required
def payslip_pdf(request, run_id):
    """The payslip as a PDF (an A4 page), for the member's records or a landlord's request."""
    member = _own_slip(request, run_id)
    try:
        pdf = payslip_pdf_bytes(member)
    except PdfUnavailable as error:
        messages.error(request, str(error))
        return redirect("attendance:payslip", run_id)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{payslip_pdf_name(member)}"'
    return response


def _own_slip(request: HttpRequest, run_id: int) -> PayRunMember:
    """The member's own payslip in that run: anyone else's is a 404."""
    return get_object_or_404(
        PayRunMember.objects.select_related("pay_run", "user"),
        pay_run_id=run_id,
        user=request.user,
    )
