"""Logging staff in for tests: a password session plus a verified second factor."""

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice


def app_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Test phone", confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """What the authenticator app shows now."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


def backup_code(user, token: str = "testbackup1") -> str:  # noqa: S107
    device, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes")
    StaticToken.objects.get_or_create(device=device, token=token)
    return token


def log_in_staff(client, user):
    """force_login, then mark the session verified with the user's app, as the second step does."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = app_device(user).persistent_id
    session.save()
    return client


def staff_in(group_name: str, **kwargs):
    """A staff member in one of the roles migrate creates (attendance.services.people.roles)."""
    from django.contrib.auth.models import Group

    from tests.support.factories import UserFactory

    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(Group.objects.get(name=group_name))
    return user
