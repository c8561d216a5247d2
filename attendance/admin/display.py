"""Small display pieces shared by the admin modules."""

from django.utils.html import format_html


def status_badge(value: str, label: str):
    # Colours come from static/css/admin.css, keyed by the status value.
    return format_html('<span class="sf-badge sf-{}">{}</span>', value, label)
