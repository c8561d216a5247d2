"""The dashboard's chart, drawn here as SVG: no chart library, no script, works without CSS."""

from decimal import Decimal
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

WIDTH, HEIGHT, GAP, AXIS = 600, 160, 2, 18
COLOURS = {"completed": "#1b7f3b", "failed": "#b3261e", "cancelled": "#8a8f98"}


def _n(value: float) -> str:
    # format_html escapes its arguments into strings first: numbers are formatted here.
    return f"{value:.1f}"


@register.filter
def percent(value: float | Decimal | None) -> str:
    """0.934 as "93%"; no figure yet as an em dash."""
    return "—" if value is None else f"{value:.0%}"


@register.filter
def hours(value: float | Decimal | None) -> str:
    """A wait in hours, read at a glance: "25 min", "5.5 h", "3 days"."""
    if value is None:
        return "—"
    if value < 1:
        return f"{round(value * 60)} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.0f} days"


@register.simple_tag
def payments_chart(days: list[Any], link: str) -> SafeString:
    """Stacked bars per day (completed, failed, cancelled), each linking to that day's list.

    `link` is the payments list's address; a bar adds `?day=YYYY-MM-DD`.
    """
    top = max((day.total for day in days), default=0) or 1
    slot = WIDTH / max(len(days), 1)
    scale = (HEIGHT - AXIS) / top
    bars = []
    for n, day in enumerate(days):
        x = n * slot + GAP / 2
        y = HEIGHT - AXIS
        rects = []
        for part in ("completed", "failed", "cancelled"):
            height = getattr(day, part) * scale
            if height:
                y -= height
                rects.append((_n(x), _n(y), _n(slot - GAP), _n(height), COLOURS[part]))
        label = (
            f"{day.day:%a %d %b}: {day.completed} completed, {day.failed} failed, "
            f"{day.cancelled} cancelled"
        )
        shapes = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>',
            rects,
        )
        # A transparent full-height rect: the whole column is the link, even on an empty day.
        bars.append(
            format_html(
                '<a href="{}?day={}" aria-label="{}"><title>{}</title>'
                '<rect x="{}" y="0" width="{}" height="{}" fill="transparent"></rect>'
                "{}</a>",
                link,
                day.day.isoformat(),
                label,
                label,
                _n(x),
                _n(slot - GAP),
                HEIGHT - AXIS,
                shapes,
            )
        )
        if (len(days) - 1 - n) % 7 == 0:  # today, and a week apart back from it
            # Centred under its bar; today's (the last) ends at the edge rather than past it.
            last = n == len(days) - 1
            bars.append(
                format_html(
                    '<text x="{}" y="{}" font-size="11" fill="#333" text-anchor="{}">{}</text>',
                    _n(x + slot - GAP if last else x + (slot - GAP) / 2),
                    HEIGHT - 4,
                    "end" if last else "middle",
                    f"{day.day:%d %b}",
                )
            )
    return format_html(
        '<svg class="sf-chart" viewBox="0 0 {} {}" role="group" aria-label="{}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#ccc"></line>{}</svg>',
        WIDTH,
        HEIGHT,
        f"Payments per day for the last {len(days)} days; the busiest had {top}",
        HEIGHT - AXIS,
        WIDTH,
        HEIGHT - AXIS,
        format_html_join("", "{}", ((bar,) for bar in bars)),
    )
