"""Africa's Talking's callbacks (delivery reports, incoming replies) and the short links that
SMS invitations carry."""

import hmac
import logging

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from attendance.models import SmsCallback
from attendance.services.crew_links import crew_answer_url, crew_short_link_resolve
from attendance.services.sms_inbox import sms_callback_receive

from .api import _read_body, client_address

logger = logging.getLogger(__name__)
KINDS = {"delivery": SmsCallback.Kind.REPORT, "incoming": SmsCallback.Kind.INCOMING}


@csrf_exempt
def sms_callback(request, kind, token):
    """AT's delivery reports and incoming messages. A wrong token is a 404 with nothing
    stored; any other body is stored raw and committed before it is processed, and answered
    200 at once (AT's retries are undocumented: never give it a reason to hammer us)."""
    if kind not in KINDS or not hmac.compare_digest(
        token.encode(), settings.SMS_CALLBACK_TOKEN.encode()
    ):
        logger.warning("SMS callback with a wrong URL from %s", client_address(request))
        raise Http404
    if request.method != "POST":
        return HttpResponse("POST only.", status=405, content_type="text/plain")
    limit = settings.SMS_CALLBACK_MAX_BYTES
    body = _read_body(request, limit + 1)
    try:
        _, status = sms_callback_receive(
            kind=KINDS[kind],
            body=body,
            remote_addr=client_address(request),
            oversized=len(body) > limit,
        )
    except Exception:
        logger.exception("Could not store an SMS callback")
        return HttpResponse("Not stored", status=400, content_type="text/plain")
    return HttpResponse(
        "OK" if status == 200 else "Rejected", status=status, content_type="text/plain"
    )


def short_link(request, code):
    """`/<code>/` from an SMS: the invitation's answer page, while it can be answered.
    A wrong, expired or used-up code is a 404 that says where to go instead."""
    assignment = crew_short_link_resolve(code=code)
    if assignment is None:
        return render(
            request,
            "attendance/crew_answer.html",
            {"error": "This link is not valid any more. Open the crew portal to answer."},
            status=404,
        )
    # Both answers on one page, each a POST to its own signed answer URL: a link preview
    # that fetches this page answers nothing.
    return render(
        request,
        "attendance/crew_answer.html",
        {
            "assignment": assignment,
            "event": assignment.event,
            "action": "choose",
            "confirm_url": crew_answer_url(assignment=assignment, action="confirm"),
            "decline_url": crew_answer_url(assignment=assignment, action="decline"),
        },
    )
