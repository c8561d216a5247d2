"""Members on WhatsApp, and webhook bodies as Meta signs them, for the WhatsApp tests."""

import json
import time
from datetime import timedelta

from django.utils import timezone

from attendance.models import Profile
from attendance.whatsapp.simulator import envelope, status_body
from attendance.whatsapp.webhook import signature_for
from tests.support.factories import UserFactory

PHONE_NUMBER_ID = "106540352242922"


def on_whatsapp(user=None, *, phone="254712345670", language="en", window=False, **fields):
    """A member who chose WhatsApp on their Account page; `window`: they wrote to us just now."""
    user = user or UserFactory()
    Profile.objects.filter(user=user).update(
        phone_number=phone,
        message_channel="whatsapp",
        whatsapp_opted_in_at=timezone.now() - timedelta(days=1),
        language=language,
        whatsapp_last_inbound_at=timezone.now() - timedelta(minutes=5) if window else None,
        **fields,
    )
    user.profile.refresh_from_db()
    return user


def raw(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: dict, secret: str) -> tuple[bytes, dict]:
    data = raw(body)
    return data, {"HTTP_X_HUB_SIGNATURE_256": signature_for(data, secret)}


def status(wamid, state, to="254712345670", *, reference="", code=None) -> dict:
    return status_body(
        PHONE_NUMBER_ID, wamid=wamid, status=state, to=to, reference=reference, code=code
    )


def incoming(sender, *, wamid, text=None, payload=None, label="Confirm", context_id="") -> dict:
    message: dict = {"from": sender, "id": wamid, "timestamp": str(int(time.time()))}
    if payload is not None:
        message.update(
            type="button",
            button={"payload": payload, "text": label},
            context={"from": "254700000001", "id": context_id},
        )
    else:
        message.update(type="text", text={"body": text or ""})
    return envelope(PHONE_NUMBER_ID, {"contacts": [{"wa_id": sender}], "messages": [message]})
