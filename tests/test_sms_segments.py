"""What a text costs: GSM-7 / UCS-2 counting, and every SMS template within its budget."""

import pytest

from attendance.services.messaging.sms import SMS_TYPES, sms_render
from attendance.sms.segments import sms_clean, sms_segments
from tests.support.sms_samples import sms_sample_context


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


@pytest.mark.parametrize("notification_type", sorted(SMS_TYPES))
def test_each_sms_template_fits_one_gsm7_segment_with_long_real_names(notification_type):
    text = sms_render(notification_type, sms_sample_context(notification_type))
    segments = sms_segments(text)
    assert segments.encoding == "GSM-7", text
    assert segments.parts == 1, f"{segments.units} characters: {text}"
    assert "None" not in text and "{" not in text


def test_the_invitation_says_what_when_and_how_to_answer():
    text = sms_render("crew_invitation", sms_sample_context("crew_invitation"))
    assert "Wed 30 Dec 16:30" in text
    assert "https://crew.soundfusion.co.ke/K7P2Q9XW4M/" in text
    assert "YES 4821" in text and "NO 4821" in text
    assert text.startswith("Sound Fusion:")


def test_a_changed_call_time_comes_first_and_is_never_hidden_behind_more():
    text = sms_render("event_updated", sms_sample_context("event_updated"))
    assert "changed: call Wed 30 Dec 16:30, starts Wed 30 Dec 16:30" in text
    assert "+2 more" in text


def test_the_briefing_keeps_the_instructions_whole_or_links_them():
    context = sms_sample_context("setup_briefing")
    text = sms_render("setup_briefing", context)
    assert "Bring your own" not in text  # too long to keep whole: linked, never cut
    assert "call Wed 30 Dec 16:30" in text
    assert "Instructions and crew: https://crew.soundfusion.co.ke/crew/assignments/" in text
    context["assignment"].notes = "Black crew shirts"
    text = sms_render("setup_briefing", context)
    assert "Black crew shirts. Crew: https://" in text and sms_segments(text).parts == 1


def test_a_cancellation_says_so_in_capitals():
    context = sms_sample_context("event_updated")
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
    context = {**sms_sample_context("crew_offer_answer"), "accepted": accepted, "request": asked}
    text = sms_render("crew_offer_answer", context)
    assert says in text
    assert sms_segments(text).parts == 1, text
