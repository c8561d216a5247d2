"""Payslips as PDF documents: for the portal's download, and attached to the payslip email
when it is sent (registered with the email outbox by name on import, in AppConfig.ready)."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from attendance.models import PayRunMember
from attendance.services.core.pdf import html_to_pdf
from attendance.services.messaging.email import document_register, in_language_of

from .runs import payslip_for

PAYSLIP = "payslip"


def payslip_pdf(member: PayRunMember) -> bytes:
    """One A4 page with what the HTML payslip shows, in the member's language, whoever asks
    for it (the email worker, the portal). PdfUnavailable without Pango."""
    with in_language_of(member.user):
        html = render_to_string("attendance/payslip_pdf.html", {"slip": payslip_for(member)})
    return html_to_pdf(html, base_url=settings.SITE_URL)


def _payslip_document(member_id: int) -> bytes:
    member = PayRunMember.objects.select_related("pay_run", "user__statutory").get(pk=member_id)
    return payslip_pdf(member)


document_register(PAYSLIP, _payslip_document)
