"""Messages where features meet (issue 25): a dispute's answer reaches the member, and the
admin says which way crew were told of an event's change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import EmailNotification, SmsMessage, TimesheetLine
from attendance.services.crew.followup import crew_complete_event
from attendance.services.pay.timesheets import timesheet_adjust, timesheet_dispute, timesheet_keep
from tests.support.admin_forms import event_form
from tests.support.auth import log_in_staff, staff_in
from tests.support.factories import EventCrewFactory, EventFactory, UserFactory
from tests.support.pay import role_with, worked

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputed(db):
    starts = timezone.now() - timedelta(hours=12)
    event = EventFactory(
        name="Blankets & Wine", starts_at=starts, ends_at=starts + timedelta(hours=8)
    )
    role = role_with("Stagehand", day_rate=Decimal("1500"), hourly_rate=None)
    manager = staff_in("Event managers")
    member = UserFactory(first_name="Akinyi")
    worked(event, member, role, "8")
    crew_complete_event(event=event, by=manager)
    line = TimesheetLine.objects.get(user=member)
    timesheet_dispute(line=line, user=member, reason="I worked until 2 am")
    return line, member, manager


def test_a_changed_line_s_answer_reaches_the_member(disputed):
    line, member, manager = disputed
    timesheet_adjust(line=line, by=manager, amount="1800", reason="Extra hour paid")
    mail = EmailNotification.objects.get(user=member, notification_type="dispute_answered")
    assert "Extra hour paid" in mail.message and "now pays KES 1,800.00" in mail.message


def test_a_kept_line_s_answer_reaches_the_member_by_text_too(disputed, at_sms):
    line, member, manager = disputed
    member.profile.phone_number = "254712000777"
    member.profile.save()
    timesheet_keep(line=line, by=manager, reason="Gate log says 23:10")
    text = SmsMessage.objects.get(user=member, notification_type="dispute_answered")
    assert 'stays KES 1,500.00. "Gate log says 23:10"' in text.message


def test_the_admin_says_how_crew_were_told_of_a_change(client, at_sms):
    manager = UserFactory(is_staff=True, is_superuser=True)
    start = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    event = EventFactory(starts_at=start, ends_at=start + timedelta(hours=5))
    texts = UserFactory(profile__phone_number="254712000888", profile__message_channel="sms")
    mails = UserFactory(profile__message_channel="email")
    for member in (texts, mails):
        EventCrewFactory(
            event=event,
            user=member,
            status="confirmed",
            confirmed_at=timezone.now(),
            invitation_sent=True,
        )
    call = timezone.localtime(event.call_time) - timedelta(hours=1)
    data = event_form(
        event, call_time_0=call.strftime("%Y-%m-%d"), call_time_1=call.strftime("%H:%M:%S")
    )
    log_in_staff(client, manager)
    response = client.post(f"/admin/attendance/event/{event.pk}/change/", data, follow=True)
    text = response.content.decode()
    assert "Told of the change of call time: 1 by email and 1 by text." in text, text[:3000]
