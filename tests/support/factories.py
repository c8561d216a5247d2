from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from attendance.models import Attendance, Event, Profile


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"member{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("crew-password-123")

    @factory.post_generation
    def profile(user, create, extracted, **kwargs):
        # The profile exists already (created by the post_save signal); fill it in.
        if create and kwargs:
            Profile.objects.filter(user=user).update(**kwargs)
            user.profile.refresh_from_db()


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    name = factory.Sequence(lambda n: f"Event {n}")
    client = "Acme Ltd"
    venue = "KICC, Nairobi"
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=2))
    ends_at = factory.LazyAttribute(lambda e: e.starts_at + timedelta(hours=5))
    call_time = factory.LazyAttribute(lambda e: e.starts_at - timedelta(hours=1))
    status = Event.Status.CONFIRMED


class AttendanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attendance

    event = factory.SubFactory(EventFactory)
    user = factory.SubFactory(UserFactory)


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment Daraja has accepted (pending), as the request service leaves it."""

    class Meta:
        model = "attendance.MpesaPayment"

    user = factory.SubFactory(UserFactory)
    requested_by = factory.SelfAttribute("user")
    phone_number = "254712345678"
    amount = 100
    payment_purpose = "Balance payment"
    account_reference = "SF Balance"
    transaction_desc = "Balance"
    status = "pending"
    checkout_request_id = factory.Sequence(lambda n: f"ws_CO_TEST{n:08d}")
    merchant_request_id = factory.Sequence(lambda n: f"29115-{n}-1")


class CrewRoleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "attendance.CrewRole"
        django_get_or_create = ("name",)

    name = "Stagehand"


class EventCrewFactory(factory.django.DjangoModelFactory):
    """An assignment as crew_assign leaves it: invited, no email yet."""

    class Meta:
        model = "attendance.EventCrew"

    event = factory.SubFactory(EventFactory)
    user = factory.SubFactory(UserFactory)
    role = factory.SubFactory(CrewRoleFactory)


class PayRunFactory(factory.django.DjangoModelFactory):
    """A draft pay run of today (no lines: `tests.support.pay.approved_run` builds a real one)."""

    class Meta:
        model = "attendance.PayRun"

    period_start = factory.LazyFunction(timezone.localdate)
    period_end = factory.SelfAttribute("period_start")


class SmsMessageFactory(factory.django.DjangoModelFactory):
    """A text in the outbox, queued, to a member."""

    class Meta:
        model = "attendance.SmsMessage"

    user = factory.SubFactory(UserFactory)
    phone_number = factory.LazyAttribute(
        lambda sms: sms.user.profile.phone_number or "254712345678"
    )
    notification_type = "crew_reply"
    message = "Sound Fusion: no invitation is waiting for your answer."


class BulkJobFactory(factory.django.DjangoModelFactory):
    """A background job someone started, still running."""

    class Meta:
        model = "attendance.BulkJob"

    kind = "send_reminders"
    status = "running"
    created_by = factory.SubFactory(UserFactory, is_staff=True)
    total = 3


class _InboxRowFactory(factory.django.DjangoModelFactory):
    raw_body = '{"stored": "raw"}'
    status = "received"


class MpesaCallbackFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.MpesaCallback"

    checkout_request_id = factory.Sequence(lambda n: f"ws_CO_CB{n:08d}")


class PayoutResultFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.PayoutResult"

    kind = "result"
    originator_conversation_id = factory.Sequence(lambda n: f"sf-payout-{n}")


class SmsCallbackFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.SmsCallback"

    kind = "report"
    provider_id = factory.Sequence(lambda n: f"ATXid_{n}")


class WhatsAppWebhookFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.WhatsAppWebhook"

    kind = "status"
    provider_id = factory.Sequence(lambda n: f"wamid.TEST{n}")


class PaybillNoticeFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.PaybillNotice"

    kind = "confirmation"
    receipt = factory.Sequence(lambda n: f"SKF{n:07d}")


class ReversalResultFactory(_InboxRowFactory):
    class Meta:
        model = "attendance.ReversalResult"

    kind = "result"
    originator_conversation_id = factory.Sequence(lambda n: f"{n}-sim-reversal")
