"""Registering our Paybill URLs with Daraja (C2B) and the shortcode for Pull Transactions.

Production registers once: changing the URLs means deleting them on the M-Pesa org portal
first (MPESA_CRM_IMPLEMENTATION.md, "C2B go-live"), so "already registered" is an answer to
explain, not an error. The sandbox needs registering again before each simulation.
"""

from __future__ import annotations

from django.conf import settings

from attendance.mpesa import paybill_client
from attendance.mpesa.paybill import PaybillClient
from attendance.mpesa.transport import DarajaError
from attendance.services.core.errors import ServiceError


class PaybillSetupError(ServiceError):
    """Registration could not be done; the message says why and what to do."""


def paybill_urls() -> tuple[str, str]:
    """(confirmation URL, validation URL) as Daraja must call them."""
    base, token = settings.MPESA_C2B_URL, settings.MPESA_C2B_TOKEN
    return f"{base}/confirmation/{token}/", f"{base}/validation/{token}/"


def paybill_register_urls(*, client: PaybillClient | None = None) -> str:
    """Register the confirmation and validation URLs; a sentence for the person who asked."""
    short_code = settings.MPESA_C2B_SHORT_CODE
    if not short_code:
        raise PaybillSetupError("Set MPESA_C2B_SHORT_CODE (the Paybill or Till) first.")
    confirmation, validation = paybill_urls()
    version = settings.MPESA_C2B_API_VERSION
    try:
        registered = (client or paybill_client()).register_urls(
            version=version,
            short_code=short_code,
            confirmation_url=confirmation,
            validation_url=validation,
            response_type=settings.MPESA_C2B_RESPONSE_TYPE,
        )
    except DarajaError as error:
        if "apiproduct" in error.message.lower():
            other = "v1" if version == "v2" else "v2"
            raise PaybillSetupError(
                f"Daraja says this app has no C2B {version} product ({error}). Set "
                f"MPESA_C2B_API_VERSION={other} and register again."
            ) from error
        raise PaybillSetupError(f"Daraja did not register the URLs: {error}") from error
    if registered.already:
        return (
            f"Paybill {short_code} already has URLs registered ({registered.description}). "
            "In production they are registered once: to change them, delete them on the "
            "M-Pesa org portal (URL Management) and register again."
        )
    return (
        f"Registered Paybill {short_code} ({version}): payments will be confirmed to {confirmation}"
    )


def paybill_register_pull(*, client: PaybillClient | None = None) -> str:
    """Register the shortcode for Pull Transactions (once)."""
    short_code, number = settings.MPESA_C2B_SHORT_CODE, settings.MPESA_PULL_NOMINATED_NUMBER
    if not (short_code and number):
        raise PaybillSetupError(
            "Set MPESA_C2B_SHORT_CODE and MPESA_PULL_NOMINATED_NUMBER (the number in the "
            "shortcode's KYC on the org portal) first."
        )
    try:
        registered = (client or paybill_client()).pull_register(
            short_code=short_code,
            nominated_number=number,
            callback_url=f"{settings.MPESA_C2B_URL}/pull/{settings.MPESA_C2B_TOKEN}/",
        )
    except DarajaError as error:
        raise PaybillSetupError(f"Daraja did not register Pull Transactions: {error}") from error
    if registered.already:
        return f"Paybill {short_code} was already registered for Pull Transactions."
    return f"Registered Paybill {short_code} for Pull Transactions: {registered.description}"
