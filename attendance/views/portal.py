"""The crew portal: what a member sees on their phone."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from attendance.forms import LanguageForm, MessageChannelForm, PhoneCodeForm, PhoneNumberForm
from attendance.middleware import remember_language
from attendance.models import (
    Attendance,
    Event,
    EventCrew,
    LedgerEntry,
    MpesaPayment,
    django_language,
)
from attendance.phones import format_phone
from attendance.services.attendance import (
    AttendanceError,
    attendance_can_check_in,
    attendance_can_check_out,
    attendance_check_in_at_venue,
    attendance_check_in_from_portal,
    attendance_check_in_sent_later,
    attendance_check_out,
    attendance_checkin_window,
)
from attendance.services.crew.calendar import (
    calendar_feed,
    calendar_feed_start,
    calendar_feed_stop,
    calendar_feed_url,
)
from attendance.services.messaging.channels import member_channel_choice
from attendance.services.messaging.push import push_device_count, push_public_key
from attendance.services.payments.amounts import prompt_amount_for, prompt_limits
from attendance.services.people.phones import (
    PhoneChangeError,
    phone_change_cancel,
    phone_change_confirm,
    phone_change_pending,
    phone_change_start,
)
from attendance.services.people.profiles import profile_set_channel, profile_set_language
from attendance.venue_codes import VenueCodeError, venue_code_check
from attendance.venue_location import Position

from .api import api_endpoint, error_response


def _own_attendance(request: HttpRequest, event_id: int) -> Attendance:
    # Scoped to the member: someone else's event is a 404, not a 403, so ids leak nothing.
    return get_object_or_404(
        Attendance.objects.select_related("event"), event_id=event_id, user=request.user
    )


@dataclass(frozen=True)
class CheckinCard:
    """An event on the member's card, with what it says about checking in."""

    attendance: Attendance
    needs_qr: bool  # the plain button is off and the venue has no position: scan the QR code
    can_check_in: bool
    can_check_out: bool
    opens: datetime
    state: str  # before the window, open, checked_in or closed


def _checkin_card(attendance: Attendance, now: datetime) -> CheckinCard:
    opens, closes = attendance_checkin_window(attendance)
    if attendance.check_in_at is not None:
        state = "checked_in"
    elif now < opens:
        state = "before"
    elif now <= closes:
        state = "open"
    else:
        state = "closed"
    event = attendance.event
    return CheckinCard(
        attendance=attendance,
        needs_qr=event.venue_position is None and not event.plain_check_in,
        can_check_in=attendance_can_check_in(attendance, now),
        can_check_out=attendance_can_check_out(attendance, now),
        opens=opens,
        state=state,
    )


def back(request: HttpRequest, default: str = "attendance:home") -> HttpResponseRedirect:
    """Redirect to the page the form came from (`next`), if it is on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


@login_required
def home(request):
    now = timezone.now()
    upcoming = [
        _checkin_card(attendance, now)
        for attendance in Attendance.objects.filter(
            user=request.user, event__ends_at__gte=now - timedelta(hours=12)
        )
        .exclude(event__status="cancelled")
        .select_related("event")
        .order_by("event__starts_at")[:20]
    ]
    recent = (
        Attendance.objects.filter(user=request.user, event__ends_at__lt=now)
        .select_related("event")
        .order_by("-event__starts_at")[:5]
    )
    ledger = LedgerEntry.objects.filter(user=request.user).order_by("-created_at", "-id")[:10]
    invitations = (
        EventCrew.objects.filter(
            user=request.user,
            status=EventCrew.Status.INVITED,
            invitation_sent=True,
            event__ends_at__gt=now,
        )
        .exclude(event__status=Event.Status.CANCELLED)
        .count()
    )
    profile = request.user.profile
    # After "Pay with M-Pesa" succeeds the page reloads with ?paid=<id>, so that the thank-you
    # stays on screen with the new balance. Only the member's own completed payment shows.
    paid = None
    if request.GET.get("paid", "").isdigit():
        paid = MpesaPayment.objects.filter(
            pk=int(request.GET["paid"]),
            user=request.user,
            status=MpesaPayment.Status.COMPLETED,
            ledger_entry__isnull=False,
        ).first()
    return render(
        request,
        "attendance/home.html",
        {
            "profile": profile,
            "suggested_amount": prompt_amount_for(profile.balance),
            "limits": prompt_limits(),
            "paid": paid,
            "upcoming": upcoming,
            "recent": recent,
            "ledger": ledger,
            "invitations": invitations,
        },
    )


@login_required
def event_detail(request, event_id):
    card = _checkin_card(_own_attendance(request, event_id), timezone.now())
    on_crew = EventCrew.objects.filter(
        event_id=event_id,
        user=request.user,
        status__in=[EventCrew.Status.CONFIRMED, EventCrew.Status.COMPLETED],
    ).exists()
    return render(
        request,
        "attendance/event_detail.html",
        {
            "card": card,
            "attendance": card.attendance,
            "event": card.attendance.event,
            "on_crew": on_crew,
            # "Running late?" on the day only: from a few hours before call to the end.
            "on_the_day": card.attendance.expected_call_time - timedelta(hours=6)
            <= timezone.now()
            < card.attendance.event.ends_at,
        },
    )


@login_required
@require_POST
def check_in(request, event_id):
    attendance = _own_attendance(request, event_id)
    try:
        attendance = attendance_check_in_from_portal(
            attendance=attendance, position=Position.from_form(request.POST)
        )
    except AttendanceError as error:
        messages.error(request, str(error))
    else:
        local = timezone.localtime(attendance.check_in_at)
        messages.success(
            request,
            _("Checked in at %(time)s (%(status)s).")
            % {"time": f"{local:%H:%M}", "status": attendance.get_status_display().lower()},
        )
    return back(request)


@login_required
def venue_check_in(request, event_id, code):
    """The link in the venue's QR code. Opening it (GET) changes nothing: it asks the member
    to confirm, so a link previewed by a chat app checks nobody in. The tap (POST) checks in
    with the code as proof of presence; a second tap finds them checked in."""
    attendance = _own_attendance(request, event_id)
    if request.method == "POST":
        try:
            attendance, now = attendance_check_in_at_venue(attendance=attendance, code=code)
        except AttendanceError as error:
            messages.error(request, str(error))
        else:
            local = timezone.localtime(attendance.check_in_at)
            messages.success(
                request,
                (
                    _("Checked in at %(time)s with the venue's code (%(status)s).")
                    if now
                    else _("Checked in at %(time)s with the venue's code (already).")
                )
                % {"time": f"{local:%H:%M}", "status": attendance.get_status_display().lower()},
            )
        return redirect("attendance:event_detail", event_id)
    problem = ""
    try:
        venue_code_check(event_id, code)
    except VenueCodeError as error:
        problem = str(error)
    return render(
        request,
        "attendance/venue_check_in.html",
        {"attendance": attendance, "event": attendance.event, "code": code, "problem": problem},
    )


@api_endpoint("POST")
def check_in_sent_later(request: HttpRequest, event_id: int) -> JsonResponse:
    """A check-in the phone kept while it had no signal (the venue's code and the time it was
    made, by the phone's clock set to ours), sent now. JSON in and out; CSRF-checked like
    every POST. Sent twice, it checks in once."""
    attendance = _own_attendance(request, event_id)
    try:
        sent = json.loads(request.body)
        code = str(sent["code"])
        claimed_at = datetime.fromtimestamp(int(sent["made_at"]) / 1000, tz=UTC)
        made_by = int(sent.get("member") or 0) or request.user.pk
    except (ValueError, KeyError, TypeError, OverflowError, OSError, AttributeError):
        return error_response("bad_request", _("This check-in could not be read."), 400)
    if made_by != request.user.pk:
        # Kept on a phone shared with someone else, who is logged in now: it waits for its
        # member (the phone keeps it), and never checks in whoever holds the phone.
        return error_response("not_yours", _("This check-in was made by someone else."), 409)
    attendance, now = attendance_check_in_sent_later(
        attendance=attendance, code=code, claimed_at=claimed_at
    )
    local = timezone.localtime(attendance.check_in_at)
    return JsonResponse(
        {
            "success": True,
            "checked_in_now": now,
            "event": attendance.event.name,
            "message": _("Checked in at %(event)s at %(time)s with the venue's code.")
            % {"event": attendance.event.name, "time": f"{local:%H:%M}"},
        }
    )


@login_required
@require_POST
def check_out(request, event_id):
    attendance = _own_attendance(request, event_id)
    now = timezone.now()
    ends = attendance.event.ends_at
    if now < ends - EARLY_CHECK_OUT and request.POST.get("early") != "yes":
        # Hours early is more often a mis-tap than a member leaving: ask, and say what it
        # means for their hours, before it is recorded.
        return render(
            request,
            "attendance/check_out_early.html",
            {
                "attendance": attendance,
                "event": attendance.event,
                "left": ends - now,
                "next": request.POST.get("next", ""),
            },
        )
    try:
        attendance = attendance_check_out(
            attendance=attendance, position=Position.from_form(request.POST)
        )
    except AttendanceError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, _("Checked out. %(hours)s hours worked.") % {"hours": attendance.hours_worked}
        )
    return back(request)


# Checking out within this long of the event's end needs no second tap.
EARLY_CHECK_OUT = timedelta(minutes=30)


@login_required
def history(request):
    # What has happened: events still to come are on Home and Assignments, not here as
    # "Not checked in".
    records = (
        Attendance.objects.filter(user=request.user, event__starts_at__lte=timezone.now())
        .select_related("event")
        .order_by("-event__starts_at")
    )
    page = Paginator(records, 20).get_page(request.GET.get("page"))
    return render(request, "attendance/history.html", {"page": page})


@login_required
def ledger(request):
    entries = LedgerEntry.objects.filter(user=request.user).order_by("-created_at", "-id")
    page = Paginator(entries, 25).get_page(request.GET.get("page"))
    return render(
        request, "attendance/ledger.html", {"page": page, "profile": request.user.profile}
    )


@login_required
def account(request):
    """The member's own details: the M-Pesa number they can change, how we contact them."""
    profile = request.user.profile
    form = PhoneNumberForm()
    code_form = PhoneCodeForm()
    whatsapp = settings.WHATSAPP_ENABLED
    push_devices = push_device_count(request.user)
    channel_form = MessageChannelForm(
        initial={
            "message_channel": member_channel_choice(profile),
            "whatsapp_number": format_phone(profile.whatsapp_number),
        },
        whatsapp=whatsapp,
        push=bool(push_devices),
    )
    language_form = LanguageForm(initial={"language": profile.language})
    if request.method == "POST" and "language" in request.POST:
        language_form = LanguageForm(request.POST)
        if language_form.is_valid():
            chosen = language_form.cleaned_data["language"]
            profile_set_language(user=request.user, language=chosen)
            translation.activate(django_language(chosen))  # the next words are in it already
            remember_language(request, chosen)
            messages.success(request, _("Saved: this site and our messages are in English."))
            response = redirect(reverse("attendance:account") + "#language")
            # For the sign-in page on this phone after logging out.
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME,
                django_language(chosen),
                max_age=365 * 24 * 3600,
                secure=settings.LANGUAGE_COOKIE_SECURE,
                samesite="Lax",
            )
            return response
    if request.method == "POST" and request.POST.get("calendar") in ("start", "stop"):
        if request.POST["calendar"] == "start":
            renewed = bool(profile.calendar_token)
            calendar_feed_start(user=request.user)
            messages.success(
                request,
                _("New calendar address made: the old one no longer works.")
                if renewed
                else _("Your calendar address is ready: add it to your phone's calendar below."),
            )
        else:
            calendar_feed_stop(user=request.user)
            messages.success(request, _("Calendar feed stopped: its address no longer works."))
        return redirect(reverse("attendance:account") + "#calendar")
    if request.method == "POST" and "message_channel" in request.POST:
        channel_form = MessageChannelForm(request.POST, whatsapp=whatsapp, push=bool(push_devices))
        if channel_form.is_valid():
            channel = channel_form.cleaned_data["message_channel"]
            number = channel_form.cleaned_data.get("whatsapp_number", "")
            if channel == "whatsapp" and not (number or profile.phone_number):
                channel_form.add_error(
                    "whatsapp_number",
                    _("Type your WhatsApp number, or add your M-Pesa number first."),
                )
            else:
                profile_set_channel(user=request.user, channel=channel, whatsapp_number=number)
                shown = {
                    "sms": _("SMS"),
                    "email": _("email"),
                    "both": _("SMS and email"),
                    "whatsapp": _("WhatsApp on %(number)s")
                    % {"number": format_phone(number or profile.phone_number)},
                    "push": _("notifications on your phone"),
                }[channel]
                messages.success(
                    request, _("Saved. We will contact you by %(way)s.") % {"way": shown}
                )
                return redirect("attendance:account")
    elif request.method == "POST" and "code" in request.POST:
        code_form = PhoneCodeForm(request.POST)
        if code_form.is_valid():
            try:
                profile = phone_change_confirm(
                    user=request.user, code=code_form.cleaned_data["code"]
                )
            except PhoneChangeError as error:
                code_form.add_error("code", str(error))
            else:
                messages.success(
                    request,
                    _("Saved. Your M-Pesa number is %(number)s.")
                    % {"number": format_phone(profile.phone_number)},
                )
                return redirect("attendance:account")
    elif request.method == "POST" and request.POST.get("phone") == "cancel":
        phone_change_cancel(user=request.user)
        messages.success(request, _("Number change cancelled: your number stays as it was."))
        return redirect("attendance:account")
    elif request.method == "POST":
        form = PhoneNumberForm(request.POST)
        if form.is_valid():
            try:
                phone_change_start(
                    user=request.user,
                    phone_number=form.cleaned_data["phone_number"],
                    password=form.cleaned_data["password"],
                )
            except PhoneChangeError as error:
                form.add_error(None, str(error))
            else:
                number = format_phone(form.cleaned_data["phone_number"])
                messages.success(
                    request,
                    _("We texted a code to %(number)s: type it below.") % {"number": number},
                )
                return redirect(reverse("attendance:account") + "#phone-code")
    return render(
        request,
        "attendance/account.html",
        {
            "form": form,
            "code_form": code_form,
            "pending_phone": phone_change_pending(request.user),
            "channel_form": channel_form,
            "language_form": language_form,
            "profile": profile,
            "sms_enabled": settings.SMS_ENABLED,
            "whatsapp_enabled": whatsapp,
            "push_key": push_public_key(),
            "push_devices": push_devices,
            "feed_url": calendar_feed_url(profile),
            "feed_webcal": calendar_feed_url(profile, webcal=True),
        },
    )


def calendar(request, token):
    """The member's calendar feed. No login (calendar apps send no cookies): the secret
    address is the key, and a revoked or unknown one is a 404."""
    body = calendar_feed(token=token)
    if body is None:
        raise Http404("No such calendar")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
