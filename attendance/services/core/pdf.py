"""PDFs from our own HTML templates (WeasyPrint): the call sheet now, payslips next.

WeasyPrint needs Debian's Pango (libpango-1.0-0, libpangoft2-1.0-0; .ci/run installs them).
Where it is missing the caller is told in words, and the page itself still prints (Ctrl+P
saves a PDF from the browser). Only our static files are fetched while rendering: a template
can never make the server fetch another URL.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.staticfiles import finders

from attendance.services.core.errors import ServiceError


class PdfUnavailable(ServiceError):
    """The PDF cannot be made on this server; the message says what to do instead."""


def _static_only(url: str) -> Any:
    from weasyprint.urls import URLFetcherResponse  # type: ignore[import-untyped]

    path = urlparse(url).path
    prefix = settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"
    if not path.startswith(prefix):
        raise ValueError(f"Not fetched while making a PDF: {url}")
    found = finders.find(path[len(prefix) :])
    if not found:
        raise ValueError(f"No such static file: {path}")
    with open(found if isinstance(found, str) else found[0], "rb") as handle:
        data = handle.read()
    mime_type = mimetypes.guess_type(path)[0] or "text/css"
    return URLFetcherResponse(url, body=data, headers={"Content-Type": mime_type})


def html_to_pdf(html: str, *, base_url: str) -> bytes:
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except (ImportError, OSError) as error:  # OSError: Pango's libraries are not installed
        raise PdfUnavailable(
            "PDFs cannot be made on this server (WeasyPrint needs Pango: apt-get install "
            "libpango-1.0-0 libpangoft2-1.0-0). Print this page instead: the browser's Print "
            "can save it as a PDF."
        ) from error
    return HTML(string=html, base_url=base_url, url_fetcher=_static_only).write_pdf()
