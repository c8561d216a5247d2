"""The short links that SMS invitations carry (AT's callbacks: webhooks.py)."""

import logging

from django.shortcuts import render

from attendance.models import SmsCallback
from attendance.services.crew.links import crew_answer_url, crew_short_link_resolve

logger = logging.getLogger(__name__)
KINDS = {"delivery": SmsCallback.Kind.REPORT, "incoming": SmsCallback.Kind.INCOMING}


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
