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
