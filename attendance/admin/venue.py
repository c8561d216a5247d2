"""The venue QR page: a screen at the venue that crew scan with their phone's camera to check
in (attendance/venue_codes.py). Full screen, readable from a few metres, reloading itself when
the code changes. For whoever may change the event (managers, crew chiefs with that right)."""

import segno
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from attendance.models import Event
from attendance.services.core.urls import absolute_url
from attendance.venue_codes import venue_code, venue_code_seconds_left


class VenueQrMixin:
    def get_urls(self):
        return [
            path(
                "<int:event_id>/venue-qr/",
                self.admin_site.admin_view(self.venue_qr_view),
                name="attendance_event_venue_qr",
            ),
            *super().get_urls(),
        ]

    def venue_qr_view(self, request, event_id):
        event = get_object_or_404(Event, pk=event_id)
        if not self.has_change_permission(request, event):
            raise PermissionDenied("Showing the venue code needs the right to change the event.")
        link = absolute_url("attendance:venue_check_in", event.pk, venue_code(event.pk))
        # segno writes the SVG itself from our own link: no user text reaches it unescaped.
        svg = segno.make(link, error="m").svg_inline(scale=10, border=2, dark="#111")
        return TemplateResponse(
            request,
            "admin/attendance/event/venue_qr.html",
            {
                "event": event,
                "qr": mark_safe(svg),  # noqa: S308 - segno's SVG of our own URL
                "link": link,
                # The demo runs on a desktop with no camera to scan with: the link is shown.
                "show_link": settings.DEBUG,
                "refresh": venue_code_seconds_left(),
                "back": reverse("admin:attendance_event_change", args=[event.pk]),
            },
        )
