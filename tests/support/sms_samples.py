"""Sample contexts for every SMS type with the longest real names a busy year has: what the
segment tests render in each language."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from attendance.models import CrewRole, Event, EventCrew, MpesaPayment, Payout

NAIROBI = ZoneInfo("Africa/Nairobi")


# The longest names a busy year has: an event with its sponsor and stage, a two-word role, a
# venue with directions, the production site's own domain.
LONG_EVENT = "Safaricom Jazz Festival 2026: Main Stage Production and Backline"
LONG_ROLE = "Monitor engineer (assistant)"
LONG_VENUE = "Ngong Racecourse, Ngong Road, Nairobi (Gate C, the back entrance)"
NOTES = "Bring your own in-ear monitors, black clothing and ID for the gate"


def sms_sample_context(notification_type: str) -> dict:
    call = datetime(2026, 12, 30, 16, 30, tzinfo=NAIROBI)
    event = Event(
        name=LONG_EVENT,
        venue=LONG_VENUE,
        starts_at=call,
        ends_at=call,
        call_time=call,
        special_instructions=NOTES,
    )
    role = CrewRole(name=LONG_ROLE)
    assignment = EventCrew(event=event, role=role, notes=NOTES)
    portal = "https://crew.soundfusion.co.ke/crew/assignments/"
    base = {
        "site_url": "https://crew.soundfusion.co.ke",
        "event": event,
        "role": role,
        "assignment": assignment,
        "call_time": call,
        "portal_url": portal,
    }
    match notification_type:
        case "crew_invitation":
            return {
                **base,
                "short_url": "https://crew.soundfusion.co.ke/K7P2Q9XW4M/",
                "reply_code": "4821",
            }
        case "event_updated":
            from attendance.services.crew.events import event_changes_in_words

            changes = [
                {"field": f, "label": "", "before": "", "after": ""}
                for f in ("starts_at", "venue", "call_time", "special_instructions")
            ]
            return {
                **base,
                "changes": changes,
                "what": event_changes_in_words(event, changes, call),
            }
        case "payment_confirmation":
            payment = MpesaPayment(
                amount=Decimal("150000.00"),
                payment_purpose="Damaged equipment: two Shure SM58 and a DI box (event 412)",
                receipt_number="TLK3X9ABCD",
            )
            return {**base, "payment": payment, "balance": Decimal("-12500.50")}
        case "payout_receipt":
            payout = Payout(amount=148250, receipt_number="TLK3X9ABCD")
            return {
                **base,
                "payout": payout,
                "balance": Decimal("-100000.00"),
                "phone": "2547*****678",
                "pay_url": "https://crew.soundfusion.co.ke/pay/",
            }
        case "crew_off":
            return {**base, "removed": True}
        case "crew_offer_answer":
            # The longest of its four answers: a replacement refused.
            return {**base, "accepted": False, "request": object()}
        case "payout_not_paid":
            from attendance.services.payouts.reasons import NUMBER

            return {
                **base,
                "payout": Payout(amount=148250),
                "phone": "2547*****678",
                "short": NUMBER.text,
                "account_url": "https://crew.soundfusion.co.ke/account/",
            }
        case "dispute_answered":
            from attendance.models import TimesheetLine

            line = TimesheetLine(event=event, role_name=LONG_ROLE, amount=Decimal("12500.00"))
            answer = "You checked out at 23:10, not 01:00: the gate log and the crew chief agree."
            return {
                **base,
                "line": line,
                "changed": True,
                "answer": answer,
                "pay_url": "https://crew.soundfusion.co.ke/pay/",
            }
        case "password_reset":
            token = "ceh6f7-4b1e0f2a6c8d9e0f1a2b3c4d5e6f7a8b"
            return {
                **base,
                "link": f"https://crew.soundfusion.co.ke/accounts/reset/MTIzNA/{token}/",
            }
        case "phone_code":
            return {**base, "code": "482193", "minutes": 15}
        case "phone_changed":
            return {**base, "old": "2547*****678", "new": "2541*****234"}
        case "crew_reply":  # the longest answer: which of three invitations
            starts = datetime(2026, 12, 30, 16, 30, tzinfo=NAIROBI)
            choices = [{"name": LONG_EVENT, "starts_at": starts, "code": "4821"}] * 3
            return {**base, "reply": "which_one", "choices": choices}
    return base
