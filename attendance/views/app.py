"""The portal as an installable app: its manifest, its service worker and its offline page.

The worker lives at the site root (`/sw.js`) so that its scope is the whole portal. It
precaches only what is the same for everyone (the portal's CSS, scripts, icons and the offline
page in each language) and never stores a member's pages: pages go to the network, and only
when the network fails does the offline page answer. Its text names a version drawn from those
files, so a release that changes any of them changes the worker and phones update.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.i18n import JavaScriptCatalog

from attendance.models import MessageChannel
from attendance.services.messaging.push import (
    PushSubscriptionError,
    push_subscribe,
    push_unsubscribe,
)
from attendance.services.people.profiles import profile_set_channel

from .api import api_endpoint, error_response

# What a phone keeps for when it has no signal: the same for every member.
PRECACHED_STATIC = (
    "css/app.css",
    "img/favicon.svg",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "js/locate.js",
    "js/submit_once.js",
    "js/checkin_queue.js",
    "js/pwa.js",
    "js/push.js",
)
THEME_COLOUR = "#14121a"  # the portal's top bar
BRAND_COLOUR = "#6b2bd9"


@require_GET
def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest (what "Install" and "Add to Home Screen" read)."""
    icons = [
        {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        {
            "src": static("icons/icon-512-maskable.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    body = {
        "id": "/?source=pwa",
        "name": _("Sound Fusion crew"),
        "short_name": "SF Crew",
        "description": _("Your events, check-in, pay and balance at Sound Fusion."),
        "lang": translation.get_language(),
        "start_url": reverse("attendance:home") + "?source=pwa",
        "scope": "/",
        "display": "standalone",
        "background_color": THEME_COLOUR,
        "theme_color": THEME_COLOUR,
        "icons": icons,
    }
    response = JsonResponse(body, content_type="application/manifest+json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


@lru_cache(maxsize=4)
def _precache(offline_urls: tuple[str, ...]) -> tuple[list[str], str]:
    """The worker's precache list and its version: a hash of every precached file's bytes
    and its URL (hashed names in production), the worker's own template and the offline
    page's words, so a release that changes any of them makes a new worker."""
    urls = [static(path) for path in PRECACHED_STATIC]
    digest = hashlib.sha256()
    for path, url in zip(PRECACHED_STATIC, urls, strict=True):
        digest.update(url.encode())
        found = finders.find(path)
        if found:
            with open(found, "rb") as file:
                digest.update(file.read())
    # The offline page's template and words: a new translation reaches the phones too.
    for source in (
        settings.BASE_DIR / "templates/attendance/sw.js",
        settings.BASE_DIR / "templates/attendance/offline.html",
        *sorted(settings.BASE_DIR.glob("locale/*/LC_MESSAGES/django.mo")),
    ):
        digest.update(source.read_bytes())
    return urls + list(offline_urls), digest.hexdigest()[:12]


def catalogue_urls() -> list[str]:
    """The scripts' words in each language (base.html asks for them by language)."""
    return [f"{reverse('javascript-catalog')}?l={code}" for code, _name in settings.LANGUAGES]


def offline_urls() -> dict[str, str]:
    """The offline page in each language, as the worker keeps it."""
    return {
        code.split("-")[0]: f"{reverse('attendance:offline')}?lang={code}"
        for code, _name in settings.LANGUAGES
    }


def worker_precache() -> tuple[list[str], str]:
    """What the worker keeps, and its version."""
    return _precache((*offline_urls().values(), *catalogue_urls()))


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    offline = offline_urls()
    urls, version = worker_precache()
    script = render(
        request,
        "attendance/sw.js",
        {
            "version": version,
            "precache": json.dumps(urls),
            "offline": json.dumps(offline),
            "default_language": json.dumps(settings.LANGUAGE_CODE.split("-")[0]),
            "queue_script": json.dumps(static("js/checkin_queue.js")),
            "icon": json.dumps(static("icons/icon-192.png")),
        },
        content_type="text/javascript; charset=utf-8",
    )
    # Browsers look for a new worker on every visit when it may not be cached.
    script["Cache-Control"] = "no-cache"
    return script


@require_GET
def offline(request: HttpRequest) -> HttpResponse:
    """What a phone shows when a page cannot load. Kept by the worker per language (`lang`),
    so it is the same for every member: it names nobody and holds nothing of theirs."""
    language = request.GET.get("lang", "")
    if language not in dict(settings.LANGUAGES):
        language = translation.get_language()
    with translation.override(language):
        # As for a visitor: no menu of the member's, and their pending messages left unread.
        context = {"user": AnonymousUser(), "messages": (), "offline_page": True}
        response = render(request, "attendance/offline.html", context)
    response["Cache-Control"] = "no-cache"
    return response


_catalogue = JavaScriptCatalog.as_view(domain="djangojs")


def javascript_catalog(request: HttpRequest) -> HttpResponseBase:
    """The portal scripts' words in the language the URL names (`?l=sw`), else the request's:
    the app keeps one copy per language, fetched by whoever was on the page then."""
    language = request.GET.get("l", "")
    if language in dict(settings.LANGUAGES):
        with translation.override(language):
            return _catalogue(request)
    return _catalogue(request)


class LogoutView(auth_views.LogoutView):
    """Logging out also empties what this browser kept of the site (its HTTP cache and the
    app's caches), so whoever uses the phone next sees none of this member's pages."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache"'
        return response


@api_endpoint("POST")
def push_subscription(request: HttpRequest) -> JsonResponse:
    """The Account page's "Turn on notifications" on this phone: the browser's subscription,
    kept for the member, whose messages then come as notifications (their channel choice is
    now the app's). `{"off": true, "endpoint": …}` forgets this phone."""
    user = request.user
    assert isinstance(user, User)  # api_endpoint answered 401 otherwise
    try:
        sent = json.loads(request.body)
        if not isinstance(sent, dict):
            raise ValueError(sent)
    except ValueError:
        return error_response("bad_request", _("This could not be read."), 400)
    if sent.get("off"):
        push_unsubscribe(user=user, endpoint=str(sent.get("endpoint", "")))
        return JsonResponse(
            {"success": True, "on": False, "message": _("Notifications are off on this phone.")}
        )
    try:
        push_subscribe(
            user=user,
            subscription=sent.get("subscription"),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except PushSubscriptionError:
        return error_response(
            "bad_subscription", _("This browser gave us something we cannot use."), 400
        )
    if sent.get("refresh"):
        # The page keeps the server's copy in step with the phone's (an endpoint can change):
        # not a new choice of channel.
        return JsonResponse({"success": True, "on": True, "message": ""})
    profile_set_channel(user=user, channel=MessageChannel.PUSH)
    return JsonResponse(
        {
            "success": True,
            "on": True,
            "message": _(
                "Notifications are on: invitations, reminders and show-day messages now come "
                "to this phone, and by text when it cannot be reached."
            ),
        }
    )
