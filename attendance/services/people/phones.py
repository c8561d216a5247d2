"""A member's M-Pesa number: changed only by proving it, owned by one member.

The number is where payouts go and how SMS replies are matched, so a change is a money action:
the member types their password again, a code is texted to the *new* number, and the number
takes effect only when that code comes back. The old number and the email address hear about
the change (a stolen password cannot redirect pay quietly), it is audited, and payouts to a
number this new wait for a second Finance approval (services/payouts).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from attendance.models import EmailNotification, PhoneVerification, Profile
from attendance.phones import format_phone, mask_phone
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.errors import ServiceError
from attendance.services.core.urls import absolute_url
from attendance.services.messaging.email import notification_create
from attendance.services.messaging.sms import sms_create
from attendance.services.people.profiles import profile_set_phone

logger = logging.getLogger(__name__)
CODE_MINUTES = 15
MAX_WRONG_CODES = 5
MAX_CODES_PER_HOUR = 4


class PhoneChangeError(ServiceError):
    """The change cannot go on; the message says why, in the member's words."""


def _hash(verification_user_id: int, phone: str, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{verification_user_id}:{phone}:{code}".encode(), "sha256").hexdigest()


def phone_owner(phone: str, *, other_than: User) -> Profile | None:
    return Profile.objects.filter(phone_number=phone).exclude(user=other_than).first()


def phone_change_start(*, user: User, phone_number: str, password: str) -> PhoneVerification:
    """Text a code to `phone_number` (normalised) for `user`. Raises PhoneChangeError."""
    if not user.check_password(password):
        raise PhoneChangeError(_("That is not your password. Type the one you log in with."))
    profile = user.profile
    if phone_number == profile.phone_number:
        raise PhoneChangeError(
            _("%(number)s is your number already.") % {"number": format_phone(phone_number)}
        )
    if phone_owner(phone_number, other_than=user) is not None:
        raise PhoneChangeError(
            _(
                "%(number)s is on another member's account. If it is yours now, ask the office "
                "to move it."
            )
            % {"number": format_phone(phone_number)}
        )
    if not settings.SMS_ENABLED:
        raise PhoneChangeError(
            _("Texts are switched off here, so the number cannot be checked: ask the office.")
        )
    now = timezone.now()
    recent = PhoneVerification.objects.filter(user=user, created_at__gte=now - timedelta(hours=1))
    if recent.count() >= MAX_CODES_PER_HOUR:
        raise PhoneChangeError(_("Too many codes asked for in an hour: try again later."))
    code = f"{secrets.randbelow(1_000_000):06d}"
    with transaction.atomic():
        PhoneVerification.objects.filter(user=user, confirmed_at=None, ended_at=None).update(
            ended_at=now
        )
        verification = PhoneVerification.objects.create(
            user=user,
            phone_number=phone_number,
            code_hash=_hash(user.pk, phone_number, code),
            expires_at=now + timedelta(minutes=CODE_MINUTES),
        )
        sms_create(
            user=user,
            phone_number=phone_number,
            notification_type=EmailNotification.Type.PHONE_CODE,
            context={"code": code, "minutes": CODE_MINUTES},
        )
    logger.info("Phone code sent to %s for user %s", mask_phone(phone_number), user.pk)
    return verification


def phone_change_pending(user: User) -> PhoneVerification | None:
    """The change waiting for its code, if any (not confirmed, ended or expired)."""
    return (
        PhoneVerification.objects.filter(
            user=user, confirmed_at=None, ended_at=None, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )


def phone_change_confirm(*, user: User, code: str) -> Profile:
    """The member typed the code: the number becomes theirs. Raises PhoneChangeError (a
    wrong try is counted and committed first, so the limit holds)."""
    code = "".join(code.split())
    problem = None
    with transaction.atomic():
        pending = (
            PhoneVerification.objects.select_for_update()
            .filter(user=user, confirmed_at=None, ended_at=None)
            .order_by("-created_at")
            .first()
        )
        if pending is None or pending.expires_at <= timezone.now():
            raise PhoneChangeError(_("That code has expired: ask for a new one."))
        pending.attempts += 1
        if hmac.compare_digest(pending.code_hash, _hash(user.pk, pending.phone_number, code)):
            pending.confirmed_at = timezone.now()
            pending.save(update_fields=["attempts", "confirmed_at"])
            return _apply(user, pending.phone_number)
        if pending.attempts >= MAX_WRONG_CODES:
            pending.ended_at = timezone.now()
            problem = _("Too many wrong codes: ask for a new one.")
        else:
            left = MAX_WRONG_CODES - pending.attempts
            problem = ngettext(
                "That is not the code we texted. %(left)s try left.",
                "That is not the code we texted. %(left)s tries left.",
                left,
            ) % {"left": left}
        pending.save(update_fields=["attempts", "ended_at"])
    raise PhoneChangeError(problem)


def _apply(user: User, phone: str) -> Profile:
    profile = Profile.objects.select_for_update().get(user=user)
    old = profile.phone_number
    if phone_owner(phone, other_than=user) is not None:
        raise PhoneChangeError(
            _("%(number)s is on another member's account now.") % {"number": format_phone(phone)}
        )
    try:
        with transaction.atomic():
            profile = profile_set_phone(user=user, phone_number=phone)
    except IntegrityError as error:  # another member took it a moment ago
        raise PhoneChangeError(
            _("%(number)s is on another member's account.") % {"number": format_phone(phone)}
        ) from error
    audit_record(
        AuditEvent.PHONE_CHANGED,
        actor=user,
        target=profile,
        before={"phone_number": mask_phone(old) if old else ""},
        after={"phone_number": mask_phone(phone)},
        details={"proved_by": "code texted to the new number"},
    )
    _tell_about_change(user, old, phone)
    return profile


def _tell_about_change(user: User, old: str, new: str) -> None:
    """The old number and the email hear of it: if it was not the member, they can act."""
    context = {
        "old": mask_phone(old) if old else "",
        "new": mask_phone(new) if new else "",
        "hold_days": settings.PAYOUT_NEW_NUMBER_HOLD_DAYS,
        "account_url": absolute_url("attendance:account"),
    }
    if old and settings.SMS_ENABLED:
        sms_create(
            user=user,
            phone_number=old,
            notification_type=EmailNotification.Type.PHONE_CHANGED,
            context=context,
        )
    if user.email:
        notification_create(
            recipient=user.email,
            user=user,
            notification_type=EmailNotification.Type.PHONE_CHANGED,
            context=context,
        )


def phone_changed_by_staff(*, profile: Profile, old: str, by: User) -> None:
    """Staff changed a member's number in admin (the form already saved it, and the database
    keeps it one member's): the payout hold starts, the change is audited, and the old number
    and the email hear of it, as when the member changes it."""
    new = profile.phone_number
    if new == old:
        return
    if old and new:
        Profile.objects.filter(pk=profile.pk).update(phone_changed_at=timezone.now())
    audit_record(
        AuditEvent.PHONE_CHANGED,
        actor=by,
        target=profile,
        before={"phone_number": mask_phone(old) if old else ""},
        after={"phone_number": mask_phone(new) if new else ""},
        details={"proved_by": "changed by staff in admin"},
    )
    if old:
        _tell_about_change(profile.user, old, new)


def phone_change_cancel(*, user: User) -> int:
    """The member gives up on a change waiting for its code."""
    return PhoneVerification.objects.filter(user=user, confirmed_at=None, ended_at=None).update(
        ended_at=timezone.now()
    )
