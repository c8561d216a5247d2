"""What a text costs: GSM-7 / UCS-2 counting, and every SMS template within its budget."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from attendance.models import CrewRole, Event, EventCrew, MpesaPayment, Payout
from attendance.services.messaging.sms import SMS_TYPES, sms_render
from attendance.sms.segments import sms_clean, sms_segments

NAIROBI = ZoneInfo("Africa/Nairobi")


def test_gsm7_counts_160_in_one_part_and_153_per_part_after():
    assert sms_segments("a" * 160).parts == 1
    assert sms_segments("a" * 161).parts == 2
    assert sms_segments("a" * 306).parts == 2
    assert sms_segments("a" * 307).parts == 3
    assert sms_segments("a" * 10).encoding == "GSM-7"


def test_extension_characters_count_twice():
    text = "{" * 80
    assert sms_segments(text).units == 160
    assert sms_segments(text).parts == 1
    assert sms_segments(text + "€").parts == 2


def test_one_character_outside_gsm7_makes_the_whole_text_ucs2():
    plain = "Call time 16:00 at KICC" + "." * 40
    assert sms_segments(plain).encoding == "GSM-7"
    with_emoji = plain + " 🎤"
    segments = sms_segments(with_emoji)
    assert segments.encoding == "UCS-2"
    assert segments.units == len(plain) + 1 + 2  # the emoji is two UTF-16 units
    assert sms_segments("ą" * 70).parts == 1
    assert sms_segments("ą" * 71).parts == 2
    assert sms_segments("ą" * 134).parts == 2
    assert sms_segments("ą" * 135).parts == 3


def test_typed_punctuation_is_made_gsm7_before_counting():
    typed = "Njeri\u2019s \u201cmain\u201d stage \u2013 KICC\u2026 "
    cleaned = sms_clean(typed)
    assert cleaned == 'Njeri\'s "main" stage - KICC...'
    assert sms_segments(cleaned).encoding == "GSM-7"
    assert sms_segments(typed).encoding == "UCS-2"


# The longest names a busy year has: an event with its sponsor and stage, a two-word role, a
# venue with directions, the production site's own domain.
LONG_EVENT = "Safaricom Jazz Festival 2026: Main Stage Production and Backline"
LONG_ROLE = "Monitor engineer (assistant)"
LONG_VENUE = "Ngong Racecourse, Ngong Road, Nairobi (Gate C, the back entrance)"
NOTES = "Bring your own in-ear monitors, black clothing and ID for the gate"


def _context(notification_type: str) -> dict:
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


@pytest.mark.parametrize("notification_type", sorted(SMS_TYPES))
def test_each_sms_template_fits_one_gsm7_segment_with_long_real_names(notification_type):
    text = sms_render(notification_type, _context(notification_type))
    segments = sms_segments(text)
    assert segments.encoding == "GSM-7", text
    assert segments.parts == 1, f"{segments.units} characters: {text}"
    assert "None" not in text and "{" not in text


def test_the_invitation_says_what_when_and_how_to_answer():
    text = sms_render("crew_invitation", _context("crew_invitation"))
    assert "Wed 30 Dec 16:30" in text
    assert "https://crew.soundfusion.co.ke/K7P2Q9XW4M/" in text
    assert "YES 4821" in text and "NO 4821" in text
    assert text.startswith("Sound Fusion:")


def test_a_changed_call_time_comes_first_and_is_never_hidden_behind_more():
    text = sms_render("event_updated", _context("event_updated"))
    assert "changed: call Wed 30 Dec 16:30, starts Wed 30 Dec 16:30" in text
    assert "+2 more" in text


def test_the_briefing_keeps_the_instructions_whole_or_links_them():
    context = _context("setup_briefing")
    text = sms_render("setup_briefing", context)
    assert "Bring your own" not in text  # too long to keep whole: linked, never cut
    assert "call Wed 30 Dec 16:30" in text
    assert "Instructions and crew: https://crew.soundfusion.co.ke/crew/assignments/" in text
    context["assignment"].notes = "Black crew shirts"
    text = sms_render("setup_briefing", context)
    assert "Black crew shirts. Crew: https://" in text and sms_segments(text).parts == 1


def test_a_cancellation_says_so_in_capitals():
    context = _context("event_updated")
    context["changes"] = [
        {"field": "status", "label": "Status", "before": "Confirmed", "after": "Cancelled"}
    ]
    text = sms_render("event_updated", context)
    assert "is CANCELLED" in text
    assert sms_segments(text).parts == 1


@pytest.mark.parametrize(
    ("accepted", "asked", "says"),
    [
        (True, None, "offer accepted! Safaricom Jazz"),
        (False, None, "thank you for offering"),
        (True, "asked", "replacement approved, you are off"),
        (False, "asked", "replacement not approved: you still work"),
    ],
)
def test_every_answer_to_an_offer_or_a_request_fits_one_segment(accepted, asked, says):
    context = {**_context("crew_offer_answer"), "accepted": accepted, "request": asked}
    text = sms_render("crew_offer_answer", context)
    assert says in text
    assert sms_segments(text).parts == 1, text
