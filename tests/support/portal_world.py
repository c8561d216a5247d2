"""A member with something on every portal page, and an admin: the browser tests' world."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attendance.models import LedgerEntry
from attendance.services.attendance import attendance_correct, attendance_expect
from attendance.services.crew.assignments import crew_confirm, crew_invite
from attendance.services.crew.links import crew_answer_url
from attendance.services.ledger import ledger_post
from attendance.services.messaging.email import notification_create
from tests.support.factories import (
    CrewRoleFactory,
    EventCrewFactory,
    EventFactory,
    PaymentFactory,
    UserFactory,
)

PASSWORD = "portal-pass-2026"


@pytest.fixture
def world(db):
    """A member with something on every page, and an admin."""
    member = UserFactory(
        username="wanjiku",
        first_name="Wanjiku",
        last_name="Kamau-Njoroge",
        email="wanjiku@example.com",
        profile__phone_number="0712345678",
    )
    member.set_password(PASSWORD)
    member.save()
    admin = UserFactory(username="grace", is_staff=True, is_superuser=True)
    admin.set_password(PASSWORD)
    admin.save()
    ledger_post(
        user=member, kind=LedgerEntry.Kind.CHARGE, amount=Decimal("1500"), description="Lost XLR"
    )
    now = timezone.now()
    tonight = EventFactory(
        name="Product launch, KICC Tsavo Ballroom",
        starts_at=now + timedelta(minutes=90),
        ends_at=now + timedelta(hours=6),
        call_time=now + timedelta(minutes=10),
        special_instructions="Black crew shirts. Load in through the service gate.",
    )
    attendance_expect(event=tonight, user=member)
    role = CrewRoleFactory(name="FOH engineer")
    later = now + timedelta(days=4)
    invited = EventCrewFactory(
        user=member,
        role=role,
        event=EventFactory(
            name="Wedding reception", starts_at=later, ends_at=later + timedelta(hours=6)
        ),
    )
    crew_invite(assignment=invited)
    confirmed = EventCrewFactory(
        user=member,
        role=role,
        event=EventFactory(
            name="Blankets & Wine",
            starts_at=later + timedelta(days=3),
            ends_at=later + timedelta(days=3, hours=8),
        ),
    )
    colleague = UserFactory(
        first_name="Brian", last_name="Otieno", profile__phone_number="0722000111"
    )
    EventCrewFactory(user=colleague, role=role, event=confirmed.event)
    crew_confirm(assignment=confirmed)
    crew_confirm(assignment=confirmed.event.crew.exclude(pk=confirmed.pk).get())
    past = EventFactory(
        name="Sunday service",
        starts_at=now - timedelta(days=3),
        ends_at=now - timedelta(days=3) + timedelta(hours=4),
    )
    attendance_correct(
        attendance=attendance_expect(event=past, user=member),
        by=admin,
        check_in_at=past.call_time,
        check_out_at=past.ends_at,
        reason="paper sheet",
    )
    PaymentFactory(user=member, status="pending", phone_number="254712345678")
    PaymentFactory(
        user=member, status="failed", phone_number="254712345679", result_description="Wrong PIN"
    )
    notification_create(
        recipient=member.email,
        user=member,
        notification_type="event_created",
        context={"event": tonight},
    )
    return {
        "member": member,
        "event": tonight,
        "confirmed": confirmed,
        "answer_url": crew_answer_url(assignment=invited, action="decline"),
    }


PORTAL_PAGES = [
    "/",
    "EVENT",
    "/attendance/",
    "/balance/",
    "/account/",
    "/crew/assignments/",
    "/crew/availability/",
    "/crew/open-roles/",
    "REPLACE",
    "ANSWER",
    "/accounts/password_change/",
]
ANONYMOUS_PAGES = ["/accounts/login/", "/accounts/password_reset/"]


def portal_path(path: str, world: dict) -> str:
    """A page of PORTAL_PAGES as a path (some name the world's rows)."""
    if path == "EVENT":
        return f"/events/{world['event'].pk}/"
    if path == "REPLACE":
        return f"/crew/{world['confirmed'].pk}/replace/"
    if path == "ANSWER":
        return world["answer_url"].replace("http://127.0.0.1:8000", "")
    return path
