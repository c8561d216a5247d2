"""The second step of a staff login: set up an authenticator app, or give one of its codes.

Reached from the admin site (its login sends staff here until their session is verified),
whichever page they logged in on. Crew never see these pages.
"""

import math
from datetime import datetime
from urllib.parse import urlencode

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from attendance.services.people.two_factor import (
    BACKUP_CODES,
    two_factor_backup_codes_left,
    two_factor_check,
    two_factor_confirm_app,
    two_factor_enrolled,
    two_factor_new_backup_codes,
    two_factor_pending_device,
)

FEW_CODES_LEFT = 3
NEW_CODES_SESSION_KEY = "sf_new_backup_codes"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _with_next(name: str, next_url: str) -> str:
    return f"{reverse(name)}?{urlencode({'next': next_url})}"


def _staff_only(request):
    if not request.user.is_staff:
        return redirect("attendance:home")  # crew accounts have no second step
    return None


@login_required
@require_http_methods(["GET", "POST"])
def verify(request):
    """Give a code from the app, or a backup code."""
    if (response := _staff_only(request)) is not None:
        return response
    next_url = _next_url(request)
    if request.user.is_verified():
        return redirect(next_url)
    if not two_factor_enrolled(request.user):
        return redirect(_with_next("admin:two_factor_enrol", next_url))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = two_factor_check(request.user, form.cleaned_data["code"])
        if result.ok:
            request.session.cycle_key()  # a new session id for the verified session
            otp_login(request, result.device)
            if isinstance(result.device, StaticDevice):
                _say_codes_left(request)
            return redirect(next_url)
        if result.locked_until is not None:
            form.add_error(None, _wait_message(result.locked_until))
            status = 429
        else:
            form.add_error(
                "code",
                "That code is not right. Codes change every 30 seconds: type the one your app "
                "shows now, or a backup code.",
            )
    return render(
        request, "two_factor/verify.html", {"form": form, "next": next_url}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request):
    """Set up the authenticator app: scan the code, type the first six digits it shows."""
    if (response := _staff_only(request)) is not None:
        return response
    next_url = _next_url(request)
    if two_factor_enrolled(request.user):
        return redirect(_with_next("admin:two_factor", next_url))
    device = two_factor_pending_device(request.user)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = two_factor_confirm_app(request.user, device, form.cleaned_data["code"])
        if result.ok:
            request.session.cycle_key()
            otp_login(request, result.device)
            request.session[NEW_CODES_SESSION_KEY] = result.codes
            messages.success(request, "Two-factor login is set up.")
            return redirect(_with_next("admin:two_factor_backup_codes", next_url))
        if result.locked_until is not None:
            form.add_error(None, _wait_message(result.locked_until))
        else:
            form.add_error(
                "code",
                "That code is not right. Check that the phone's clock is set automatically, "
                "then type the code the app shows now.",
            )
    key = device.config_url.split("secret=")[1].split("&")[0]
    qr = segno.make(device.config_url, error="m")
    context = {
        "form": form,
        "next": next_url,
        "qr_svg": mark_safe(  # noqa: S308  (segno's own SVG of our own URL)
            qr.svg_inline(scale=5, border=2, title="QR code to scan with the authenticator app")
        ),
        "key_groups": [key[n : n + 4] for n in range(0, len(key), 4)],
    }
    return render(request, "two_factor/enrol.html", context)


@require_http_methods(["GET", "POST"])
def backup_codes(request):
    """Backup codes: shown once when made; made anew on request (the old ones stop working)."""
    if request.method == "POST":
        request.session[NEW_CODES_SESSION_KEY] = two_factor_new_backup_codes(request.user)
        messages.success(request, "New backup codes made; the old ones no longer work.")
        return redirect(_with_next("admin:two_factor_backup_codes", _next_url(request)))
    codes = request.session.pop(NEW_CODES_SESSION_KEY, None)
    context = {
        "codes": codes,
        "left": two_factor_backup_codes_left(request.user),
        "total": BACKUP_CODES,
        "next": _next_url(request),
        "title": "Backup codes",
    }
    return render(request, "two_factor/backup_codes.html", context)


def _say_codes_left(request: HttpRequest) -> None:
    assert request.user.is_authenticated  # after a login with a backup code
    left = two_factor_backup_codes_left(request.user)
    text = f"You used a backup code: {left} left."
    if left <= FEW_CODES_LEFT:
        url = reverse("admin:two_factor_backup_codes")
        messages.warning(request, f"{text} Make new ones now at {url}.")
    else:
        messages.info(request, text)


def _wait_message(locked_until: datetime) -> str:
    wait = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    return f"Too many wrong codes. Wait {_duration(wait)}, then try again."


def _duration(seconds: int) -> str:
    if seconds < 90:
        return "a second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    return f"{math.ceil(minutes / 60)} hours"
