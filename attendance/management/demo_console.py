"""What the demo's console shows: one line per email (with where to read it in admin) and no
line per static file, so the texts, payments and errors a newcomer looks for stand out."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class OneLineEmailBackend(BaseEmailBackend):
    """Django's console backend prints each email's whole MIME source (80 lines each); this
    prints who it went to, its subject and its page in admin, where it reads as sent."""

    def send_messages(self, email_messages):
        for message in email_messages:
            row = message.extra_headers.get("X-Notification-ID")
            where = (
                f"  {settings.SITE_URL}/admin/attendance/emailnotification/{row}/change/"
                if row
                else ""
            )
            sys.stdout.write(f"Email to {', '.join(message.to)}: {message.subject}{where}\n")
            sys.stdout.flush()
        return len(email_messages)


def not_a_static_file(record: logging.LogRecord) -> bool:
    """runserver's access log, less the requests for CSS, JS and images."""
    return "/static/" not in record.getMessage()
