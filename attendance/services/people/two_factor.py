"""Staff two-factor login: an authenticator app (TOTP) and single-use backup codes (django-otp).

Every staff account needs a verified second factor before the admin site or a staff-only API
answers it; crew accounts never do. Codes are checked against one device chosen by their shape
(six digits: the app; anything else: a backup code), inside a transaction that locks it, so
django-otp's throttling (after each failure the next try waits 1, 2, 4, 8 ... seconds) holds
against parallel guesses too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from attendance.services.core.audit import AuditEvent, audit_record

logger = logging.getLogger(__name__)

BACKUP_CODES = 10
APP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


@dataclass(frozen=True)
class CodeCheck:
    device: TOTPDevice | StaticDevice | None
    locked_until: datetime | None = None  # set when the code was not even tried
    codes: list[str] | None = None  # new backup codes, after an enrolment

    @property
    def ok(self) -> bool:
        return self.device is not None


def staff_needs_second_factor(user: Any) -> bool:
    """Staff signed in with a password only: the admin and staff APIs refuse them until verified."""
    # Just after a password login, request.user is the plain user django-otp has not seen yet.
    verified = getattr(user, "is_verified", lambda: False)()
    return bool(user.is_authenticated and user.is_active and user.is_staff and not verified)


def two_factor_enrolled(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def two_factor_pending_device(user: User) -> TOTPDevice:
    """The app device being set up: the same key on every reload until a code confirms it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return device


def two_factor_check(user: User, code: str) -> CodeCheck:
    """Verify a code from the app or a backup code; a failure counts towards the throttle."""
    code = "".join(code.split()).lower()
    model = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    with transaction.atomic():
        device = (
            model.objects.select_for_update()
            .filter(user=user, confirmed=True)
            .order_by("pk")
            .first()
        )
        if device is None or not code:
            return CodeCheck(None)
        allowed, why = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(None, locked_until=(why or {}).get("locked_until"))
        if device.verify_token(code):
            return CodeCheck(device)
    logger.warning("Wrong second-factor code for staff user %s", user.pk)
    return CodeCheck(None)


def two_factor_confirm_app(user: User, device: TOTPDevice, code: str) -> CodeCheck:
    """Confirm the app device with its first code; on success `codes` are the backup codes."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        if device.confirmed:
            return CodeCheck(None)
        allowed, why = device.verify_is_allowed()
        if not allowed:
            return CodeCheck(None, locked_until=(why or {}).get("locked_until"))
        if not device.verify_token("".join(code.split())):
            return CodeCheck(None)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # One app per account: set-ups abandoned on another phone stop working.
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        codes = two_factor_new_backup_codes(user, audited=False)
        audit_record(AuditEvent.TWO_FACTOR_ENROLLED, actor=user, target=user)
    return CodeCheck(device, codes=codes)


def two_factor_new_backup_codes(user: User, *, audited: bool = True) -> list[str]:
    """Replace the account's backup codes by BACKUP_CODES new ones (the old stop working)."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
        if audited:
            audit_record(AuditEvent.BACKUP_CODES_RENEWED, actor=user, target=user)
    return codes


def two_factor_backup_codes_left(user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def two_factor_reset(user: User, *, by: User | None) -> int:
    """Remove every device of `user` (a lost phone); they enrol again at their next visit.

    Sessions verified with a removed device stop being verified at once (django-otp looks the
    device up on each request).
    """
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0]
        removed += StaticDevice.objects.filter(user=user).delete()[0]
        audit_record(
            AuditEvent.TWO_FACTOR_RESET,
            actor=by,
            target=user,
            before={"devices": removed},
            after={"devices": 0},
        )
    return removed


def two_factor_setup(user: User, *, replace: bool = False) -> tuple[TOTPDevice, list[str]]:
    """A confirmed app device and backup codes for `user`, made at the terminal.

    For the first superuser, who has nobody to reset them (`manage.py two_factor_setup`).
    """
    with transaction.atomic():
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists() and not replace:
            raise ValueError(f"{user.get_username()} already has an authenticator app.")
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=True)
        codes = two_factor_new_backup_codes(user, audited=False)
        audit_record(
            AuditEvent.TWO_FACTOR_ENROLLED,
            actor=None,
            target=user,
            details={"how": "manage.py two_factor_setup", "at": timezone.now().isoformat()},
        )
    return device, codes
