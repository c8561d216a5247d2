"""Replies the way people type them (issue 25): a bare "Yes", "Ok" or "Ndiyo" answers the only
open invitation, several open invitations get a text listing each with its code, and a number
sending wrong codes is stopped after a few, without a text per guess."""

from datetime import timedelta

import pytest
from django.utils import timezone

from attendance.models import EventCrew, SmsCallback, SmsMessage
from attendance.services.crew.assignments import crew_invite
from attendance.services.crew.replies import WRONG_CODE_LIMIT
from attendance.services.messaging.sms_inbox import sms_callback_process, sms_callback_receive
from attendance.sms.callbacks import parse_reply
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def replies_on(settings, at_sms):
    settings.SMS_REPLIES_ENABLED = True


def _invited(member, django_capture_on_commit_callbacks, *, days=2, name="Safari Rally gala"):
    start = timezone.now() + timedelta(days=days)
    assignment = EventCrewFactory(
        event=EventFactory(name=name, starts_at=start, ends_at=start + timedelta(hours=5)),
        user=member,
    )
    with django_capture_on_commit_callbacks(execute=True):
        crew_invite(assignment=assignment)
    assignment.refresh_from_db()
    return assignment


_ids = iter(range(10_000, 99_999))


def _text(member, text, django_capture_on_commit_callbacks):
    body = (
        f"id=ATInbound_{next(_ids)}&from=%2B{member.profile.phone_number}&to=20880"
        f"&text={text.replace(' ', '+')}&date=2026-12-01"
    ).encode()
    with django_capture_on_commit_callbacks(execute=True):
        pk, _ = sms_callback_receive(kind="incoming", body=body, remote_addr="127.0.0.1")
    return SmsCallback.objects.get(pk=pk)


def _answers(member):
    return list(
        SmsMessage.objects.filter(user=member, notification_type="crew_reply")
        .order_by("pk")
        .values_list("message", flat=True)
    )


@pytest.mark.parametrize(
    ("text", "accept", "code"),
    [
        ("YES 4821", True, "4821"),
        ("Yes", True, None),
        ("ok!", True, None),
        ("Ndiyo", True, None),
        ("sawa 4821 nitakuja", True, "4821"),
        ("No, I'm sick", False, None),
        ("Hapana 4821 ni mgonjwa", False, "4821"),
        ("yes4821", True, "4821"),
    ],
)
def test_the_ways_people_answer_are_read(text, accept, code):
    reply = parse_reply(text)
    assert reply is not None and (reply.accept, reply.code) == (accept, code)


@pytest.mark.parametrize("text", ["Yesterday was great", "Hi who is this", "4821"])
def test_other_texts_are_not_answers(text):
    assert parse_reply(text) is None


@pytest.mark.parametrize("word", ["Yes", "Ok", "Sawa", "Ndiyo"])
def test_a_bare_yes_with_one_open_invitation_confirms_it(word, django_capture_on_commit_callbacks):
    member = UserFactory(profile__phone_number="254712345601")
    assignment = _invited(member, django_capture_on_commit_callbacks)
    row = _text(member, word, django_capture_on_commit_callbacks)
    assert row.status == SmsCallback.Status.PROCESSED
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED
    assert "confirmed" in _answers(member)[-1]


def test_a_bare_yes_with_two_open_invitations_lists_them_and_decides_nothing(
    django_capture_on_commit_callbacks,
):
    member = UserFactory(profile__phone_number="254712345602")
    first = _invited(member, django_capture_on_commit_callbacks, name="Koroga Festival")
    second = _invited(member, django_capture_on_commit_callbacks, days=3, name="Jazz Night")
    _text(member, "yes", django_capture_on_commit_callbacks)
    [answer] = _answers(member)
    assert first.reply_code in answer and second.reply_code in answer
    assert "Koroga Festival" in answer and "Jazz Night" in answer
    assert set(EventCrew.objects.values_list("status", flat=True)) == {"invited"}
    # Then the member answers with the code, as the text asked.
    _text(member, f"YES {second.reply_code}", django_capture_on_commit_callbacks)
    second.refresh_from_db()
    assert second.status == EventCrew.Status.CONFIRMED


def test_a_bare_yes_with_nothing_open_is_answered(django_capture_on_commit_callbacks):
    member = UserFactory(profile__phone_number="254712345603")
    _text(member, "Yes", django_capture_on_commit_callbacks)
    assert _answers(member) == ["Sound Fusion: no invitation is waiting for your answer."]


def test_a_thousand_wrong_codes_send_a_handful_of_answers_and_never_decide(
    django_capture_on_commit_callbacks,
):
    member = UserFactory(profile__phone_number="254712345604")
    assignment = _invited(member, django_capture_on_commit_callbacks)
    guesses = [f"{n:04d}" for n in range(1000, 2000) if f"{n:04d}" != assignment.reply_code]
    guesses.insert(700, assignment.reply_code)  # the right one, deep in the run
    for code in guesses[:1000]:
        _text(member, f"YES {code}", django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.INVITED
    assert len(_answers(member)) == WRONG_CODE_LIMIT
    assert SmsCallback.objects.filter(status="unmatched").count() == 1000


def test_after_the_hour_the_right_code_works_again(django_capture_on_commit_callbacks):
    import time_machine

    member = UserFactory(profile__phone_number="254712345605")
    assignment = _invited(member, django_capture_on_commit_callbacks)
    for n in range(WRONG_CODE_LIMIT):
        _text(member, f"YES 00{n:02d}", django_capture_on_commit_callbacks)
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        row = _text(member, f"YES {assignment.reply_code}", django_capture_on_commit_callbacks)
        assert row.status == SmsCallback.Status.PROCESSED
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.CONFIRMED
    assert sms_callback_process(callback_id=row.pk) == "processed"  # safe to repeat


def test_a_decline_by_text_gets_one_text_back(django_capture_on_commit_callbacks):
    member = UserFactory(profile__phone_number="254712345606")
    assignment = _invited(member, django_capture_on_commit_callbacks)
    before = SmsMessage.objects.filter(user=member).count()  # the invitation
    _text(member, f"NO {assignment.reply_code} sick", django_capture_on_commit_callbacks)
    assignment.refresh_from_db()
    assert assignment.status == EventCrew.Status.DECLINED
    texts = list(SmsMessage.objects.filter(user=member).order_by("pk")[before:])
    assert [t.notification_type for t in texts] == ["crew_reply"]  # not also "you are off"
    assert "declined" in texts[0].message
