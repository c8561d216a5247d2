from django.contrib.auth.models import User
from django.utils import timezone

from attendance.models import Language, MessageChannel, Profile


def profile_set_phone(*, user: User, phone_number: str, changed: bool = True) -> Profile:
    """Set the member's M-Pesa number (already normalised, or "" for none). A member changes
    their own through services/people/phones.py (a code texted to it first); this is the write.

    A new number also lifts an SMS block: the block was Africa's Talking's word about the old
    number. A different number (`changed`) starts the payout hold (phone_changed_at); the
    number a member is first given does not.
    """
    profile = user.profile
    fields = ["phone_number", "updated_at"]
    if phone_number != profile.phone_number and profile.sms_blocked_at is not None:
        profile.sms_blocked_at, profile.sms_blocked_reason = None, ""
        fields += ["sms_blocked_at", "sms_blocked_reason"]
    if changed and phone_number and profile.phone_number and phone_number != profile.phone_number:
        profile.phone_changed_at = timezone.now()
        fields.append("phone_changed_at")
    profile.phone_number = phone_number
    # The balance is the ledger's: write only what changed (Profile.save explains why).
    profile.save(update_fields=fields)
    return profile


def profile_set_channel(*, user: User, channel: str, whatsapp_number: str = "") -> Profile:
    """How the member wants invitations, reminders and receipts: email, SMS, both or WhatsApp.

    Choosing SMS again after a block means the member says texts reach them now (they opted
    back in with the network): the block is lifted and the next text tries. Choosing WhatsApp
    is the opt-in Meta requires: when, kept on the profile (a new one after a STOP), with the
    number (`whatsapp_number`, or "" for their M-Pesa number); it lifts a block, as a new
    number or the member's word that WhatsApp now works.
    """
    if channel not in MessageChannel.values:
        raise ValueError(channel)
    profile = user.profile
    profile.message_channel = channel
    fields = ["message_channel", "updated_at"]
    if channel in (MessageChannel.SMS, MessageChannel.BOTH) and profile.sms_blocked_at:
        profile.sms_blocked_at, profile.sms_blocked_reason = None, ""
        fields += ["sms_blocked_at", "sms_blocked_reason"]
    if channel == MessageChannel.WHATSAPP:
        if profile.whatsapp_opted_in_at is None or profile.whatsapp_opted_out_at is not None:
            profile.whatsapp_opted_in_at = timezone.now()
        profile.whatsapp_opted_out_at = None
        profile.whatsapp_number = whatsapp_number
        profile.whatsapp_blocked_at, profile.whatsapp_blocked_reason = None, ""
        fields += [
            "whatsapp_opted_in_at",
            "whatsapp_opted_out_at",
            "whatsapp_number",
            "whatsapp_blocked_at",
            "whatsapp_blocked_reason",
        ]
    profile.updated_at = timezone.now()
    profile.save(update_fields=fields)
    return profile


def profile_set_language(*, user: User, language: str) -> Profile:
    """The language the member reads: the portal's, and every message we send them from now
    on (email, SMS, WhatsApp). Admin stays English."""
    if language not in Language.values:
        raise ValueError(language)
    profile = user.profile
    profile.language = language
    profile.updated_at = timezone.now()
    profile.save(update_fields=["language", "updated_at"])
    return profile
