"""Every model of the app, re-exported so that the label stays `attendance`."""

from .crew import CrewRole, EventCrew, EventRoleRequirement
from .events import Attendance, AttendanceCorrection, AttendanceRemoval, Event, RefusedCheckIn
from .jobs import BulkJob, BulkJobItem
from .notifications import EmailNotification, MessageType
from .operations import Alert, BeatRun
from .pay import (
    PayRun,
    PayRunLine,
    PayRunMember,
    PublicHoliday,
    TimesheetChange,
    TimesheetLine,
)
from .paybill import PaybillNotice, PaybillPayment, Reversal, ReversalResult
from .payments import MpesaCallback, MpesaPayment
from .payouts import Payout, PayoutResult
from .people import (
    Department,
    Language,
    LedgerEntry,
    MessageChannel,
    PhoneVerification,
    Profile,
    django_language,
    member_name,
)
from .push import PushMessage, PushSubscription
from .scheduling import ReplacementRequest, Unavailability
from .showday import RunOfShowBlock, ShowDayNotice
from .sms import SmsCallback, SmsMessage
from .statement import StatementImport, StatementRow
from .statutory import PayeBand, StatutoryDeduction, StatutoryProfile, StatutoryRates
from .whatsapp import WhatsAppInbound, WhatsAppMessage, WhatsAppWebhook

__all__ = [
    "Alert",
    "Attendance",
    "AttendanceCorrection",
    "AttendanceRemoval",
    "BeatRun",
    "BulkJob",
    "BulkJobItem",
    "CrewRole",
    "Department",
    "EmailNotification",
    "Event",
    "EventCrew",
    "EventRoleRequirement",
    "Language",
    "LedgerEntry",
    "MessageChannel",
    "MessageType",
    "MpesaCallback",
    "MpesaPayment",
    "PayRun",
    "PayRunLine",
    "PayRunMember",
    "PaybillNotice",
    "PaybillPayment",
    "PayeBand",
    "Payout",
    "PayoutResult",
    "PhoneVerification",
    "Profile",
    "PublicHoliday",
    "PushMessage",
    "PushSubscription",
    "RefusedCheckIn",
    "ReplacementRequest",
    "Reversal",
    "ReversalResult",
    "RunOfShowBlock",
    "ShowDayNotice",
    "SmsCallback",
    "SmsMessage",
    "StatementImport",
    "StatementRow",
    "StatutoryDeduction",
    "StatutoryProfile",
    "StatutoryRates",
    "TimesheetChange",
    "TimesheetLine",
    "Unavailability",
    "WhatsAppInbound",
    "WhatsAppMessage",
    "WhatsAppWebhook",
    "django_language",
    "member_name",
]
