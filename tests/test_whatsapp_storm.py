"""A storm of WhatsApp statuses, on PostgreSQL, over real HTTP, from concurrent threads: each
status of 200 messages posted 1 to 3 times, shuffled. Final states follow the order of meaning,
nothing is sent twice, and each failed message goes by SMS exactly once."""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.utils import timezone

from attendance.models import SmsMessage, WhatsAppMessage, WhatsAppWebhook
from attendance.whatsapp.webhook import signature_for
from tests.support.factories import UserFactory
from tests.support.waiting import wait_until
from tests.support.whatsapp import on_whatsapp, raw, status

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _post(url, secret, body):
    with requests.Session() as session:
        return session.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature_for(body, secret),
            },
            timeout=30,
        ).status_code


def test_a_storm_of_statuses_settles_every_message_once(wa_to_live_server, wa, at_sms, settings):
    members = [on_whatsapp(UserFactory(), phone=f"2547220{n:05d}") for n in range(50)]
    messages = [
        WhatsAppMessage.objects.create(
            user=members[n % 50],
            wa_number=members[n % 50].profile.phone_number,
            notification_type="crew_reminder",
            kind="template",
            template_name="sf_crew_reminder_v1",
            text=f"Reminder {n}",
            fallback_text=f"Sound Fusion reminder {n}",
            status="sent",
            sent_at=timezone.now(),
            provider_message_id=f"wamid.STORM{n:04d}",
        )
        for n in range(200)
    ]
    # Every fourth message fails outside the window (after a "sent"); the others end read,
    # delivered or sent.
    steps = {
        0: [("sent", None), ("failed", 131047)],
        1: [("sent", None), ("delivered", None), ("read", None)],
        2: [("sent", None), ("delivered", None)],
        3: [("sent", None)],
    }
    rng = random.Random(32)
    bodies = []
    for n, message in enumerate(messages):
        for state, code in steps[n % 4]:
            body = raw(
                status(
                    message.provider_message_id,
                    state,
                    to=message.wa_number,
                    reference=f"wa:{message.pk}",
                    code=code,
                )
            )
            bodies += [body] * rng.randint(1, 3)
    rng.shuffle(bodies)
    url = f"{wa_to_live_server.url}/api/whatsapp/webhook/"

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda body: _post(url, wa.state.app_secret, body), bodies))

    assert set(answers) == {200}
    assert WhatsAppWebhook.objects.count() == len(bodies)
    assert not WhatsAppWebhook.objects.filter(status__in=["received", "error", "quarantined"])
    final = {0: "failed", 1: "read", 2: "delivered", 3: "sent"}
    for n, message in enumerate(WhatsAppMessage.objects.order_by("pk")):
        assert message.delivery_status == final[n % 4], n
        assert (message.fell_back_at is not None) == (n % 4 == 0)
    # Exactly one SMS per failed message, each carrying that message's text.
    texts = sorted(SmsMessage.objects.values_list("message", flat=True))
    assert texts == sorted(f"Sound Fusion reminder {n}" for n in range(0, 200, 4))
    assert wait_until(lambda: len(at_sms.state.messages) == 50, timeout=20)
    # Nothing went to WhatsApp again.
    assert wa.state.stats["send"] == 0
    assert settings.WHATSAPP_ENABLED
