from django.utils import timezone

"""Form data for admin pages with inlines: the management forms Django expects on POST."""


def management_forms(*prefixes: str, initial: dict[str, int] | None = None) -> dict[str, str]:
    """Empty inline formsets (or `initial` existing rows) for each prefix."""
    initial = initial or {}
    data = {}
    for prefix in prefixes:
        data[f"{prefix}-TOTAL_FORMS"] = str(initial.get(prefix, 0))
        data[f"{prefix}-INITIAL_FORMS"] = str(initial.get(prefix, 0))
    return data


# The event page: crew needed per role, assigned crew, new assignments, attendance list,
# additions to it, its pay lines (read-only).
EVENT_INLINES = (
    "run_of_show",
    "role_requirements",
    "crew",
    "crew-2",
    "attendances",
    "attendances-2",
    "timesheet_lines",
)


def event_form(event, **extra):
    """The event change form's fields for `event`, as its admin page would post them."""
    local = {
        f: timezone.localtime(getattr(event, f)) for f in ("starts_at", "ends_at", "call_time")
    }
    data = {
        "name": event.name,
        "client": event.client,
        "status": event.status,
        "venue": event.venue,
        "special_instructions": event.special_instructions,
        "venue_radius_m": str(event.venue_radius_m),
        "leave_now_hours": str(event.leave_now_hours),
        "late_alert_minutes": str(event.late_alert_minutes),
        "short_alert_hours": event.short_alert_hours,
        **({"check_out_reminder": "on"} if event.check_out_reminder else {}),
        **({"plain_check_in": "on"} if event.plain_check_in else {}),
        **({"hold_unproven": "on"} if event.hold_unproven else {}),
        **{f"{f}_0": v.strftime("%Y-%m-%d") for f, v in local.items()},
        **{f"{f}_1": v.strftime("%H:%M:%S") for f, v in local.items()},
        **management_forms(*EVENT_INLINES),
    }
    data.update(extra)
    return data
