from django.contrib.auth.models import User

from attendance.models import Profile


def profile_set_phone(*, user: User, phone_number: str) -> Profile:
    """Set the member's M-Pesa number (already normalised, or "" for none)."""
    profile = user.profile
    profile.phone_number = phone_number
    # The balance is the ledger's: write only what changed (Profile.save explains why).
    profile.save(update_fields=["phone_number", "updated_at"])
    return profile
