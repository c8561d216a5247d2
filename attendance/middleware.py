"""Request middleware of our own."""

import logging
import re
import time
import uuid

from auditlog.middleware import AuditlogMiddleware
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.cache import patch_cache_control

from attendance import metrics
from attendance.models.people import django_language
from soundfusion_attendance.logs import request_id

request_logger = logging.getLogger("soundfusion.request")
SESSION_LANGUAGE = "sf_language"
# A request id a balancer or client sent is kept if it looks like one (it ends up in logs).
_GIVEN_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestLogMiddleware:
    """Per request: an id (X-Request-ID, kept from the balancer or made here) that every log
    line of the request carries, a count and time for the metrics, and with LOG_REQUESTS one
    log line. First in MIDDLEWARE, so the time is the whole answer's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = given if _GIVEN_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            response["X-Request-ID"] = rid
            metrics.observe_request(request.method or "", response.status_code, seconds)
            if settings.LOG_REQUESTS:
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "ms": round(seconds * 1000, 1),
                    },
                )
            return response
        finally:
            request_id.reset(token)


def client_address(request: HttpRequest) -> str | None:
    """The client's IP address: behind our proxy, the one it appended to X-Forwarded-For.

    Only the last entry is the proxy's own observation; earlier ones are whatever the client
    sent (auditlog's default takes the first, which anyone can forge).
    """
    remote = request.META.get("REMOTE_ADDR")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in settings.TRUSTED_PROXIES:
        return forwarded.split(",")[-1].strip() or remote
    return remote


class AuditContextMiddleware(AuditlogMiddleware):
    """auditlog's middleware, with an address that cannot be forged.

    Anonymous requests (Safaricom's callbacks, the crew's answer links) skip it: auditlog
    connects and disconnects a signal receiver per request, and only staff and members write
    audited rows.
    """

    @staticmethod
    def _get_remote_addr(request):
        return client_address(request)

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        return super().__call__(request)


class MemberLanguageMiddleware:
    """The language of a signed-in member's pages is the one on their Account page, on every
    device; admin is English whatever the browser says (staff share one vocabulary with the
    docs and each other). After AuthenticationMiddleware; LocaleMiddleware, before it, has
    chosen for visitors not signed in.

    The choice is kept in the session (set at login and when it changes), so a page costs no
    query for it; a session from before this reads the profile once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        language = None
        if request.path.startswith("/admin/"):
            language = settings.LANGUAGE_CODE
        elif SESSION_LANGUAGE in request.session:
            language = request.session[SESSION_LANGUAGE]
        else:
            user = getattr(request, "user", None)
            profile = getattr(user, "profile", None) if user and user.is_authenticated else None
            if profile is not None:
                language = request.session[SESSION_LANGUAGE] = django_language(profile.language)
        if language is not None:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


def remember_language(request: HttpRequest, language: str) -> None:
    """Keep a member's choice for their session's next pages (login, the Account page)."""
    request.session[SESSION_LANGUAGE] = django_language(language)


class PrivatePagesMiddleware:
    """A signed-in person's pages are never stored by the browser (`Cache-Control: private,
    no-store`): after they log out, Back or the next person on a shared phone finds nothing of
    theirs in its cache. Responses that set their own caching (the calendar feed, the app's
    files) keep it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if "Cache-Control" not in response and user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
