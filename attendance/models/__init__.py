"""Every model of the app, re-exported so that the label stays `attendance`."""

from .crew import CrewRole, EventCrew, EventRoleRequirement
from .events import Attendance, AttendanceCorrection, AttendanceRemoval, Event
from .jobs import BulkJob, BulkJobItem
from .notifications import EmailNotification
from .payments import MpesaCallback, MpesaPayment
from .people import Department, LedgerEntry, Profile, member_name

__all__ = [
    "Attendance",
    "AttendanceCorrection",
    "AttendanceRemoval",
    "BulkJob",
    "BulkJobItem",
    "CrewRole",
    "Department",
    "EmailNotification",
    "Event",
    "EventCrew",
    "EventRoleRequirement",
    "LedgerEntry",
    "MpesaCallback",
    "MpesaPayment",
    "Profile",
    "member_name",
]
