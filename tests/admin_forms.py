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
    "role_requirements",
    "crew",
    "crew-2",
    "attendances",
    "attendances-2",
    "timesheet_lines",
)
