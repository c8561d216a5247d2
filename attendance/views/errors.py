"""Error pages: JSON for the API (its clients parse JSON), and pages that say what to do."""

from django.http import HttpRequest
from django.shortcuts import render
from django.views import defaults

from .api import error_response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request, reason=""):
    if _is_api(request):
        return error_response(
            "csrf_failed",
            "The security token is missing or stale: reload the page and try again.",
            403,
        )
    return render(request, "403_csrf.html", {"reason": reason}, status=403)


def not_found(request, exception=None):
    if _is_api(request):
        return error_response("not_found", "Not found.", 404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return error_response(
            "server_error", "Something went wrong on our side. Please try again in a minute.", 500
        )
    return defaults.server_error(request)


def permission_denied(request, exception=None):
    """403: say why, when the code that refused said it (e.g. which role a page needs)."""
    reason = str(exception or "")
    if _is_api(request):
        return error_response("forbidden", reason or "You may not do this.", 403)
    return render(request, "403.html", {"reason": reason}, status=403)
