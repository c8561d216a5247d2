"""Check-ins that were not proven: a manager accepts them so held lines can be approved
(timesheets.py holds a line; this releases it, with a reason kept on its history)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet

from attendance.models import TimesheetChange, TimesheetLine
from attendance.services.pay.timesheets import PayError, timesheet_record_change

Kind = TimesheetChange.Kind


def timesheet_accept_unproven(*, lines: QuerySet[TimesheetLine], by: User, reason: str) -> int:
    """A manager accepts held lines' unproven check-ins (they saw the member there, say), so
    the lines can be approved. The reason is kept on each line's history. Returns how many."""
    reason = reason.strip()
    if not reason:
        raise PayError("Say why the check-in is accepted (e.g. 'Seen on site by the crew chief').")
    with transaction.atomic():
        held = list(lines.select_for_update(of=("self",)).filter(held=True).order_by("pk"))
        for line in held:
            line.held = False
            line.save(update_fields=["held"])
            timesheet_record_change(line, Kind.ACCEPTED, by, {"held": ["True", "False"]}, reason)
    return len(held)
