"""Requesting a payment: one STK push prompt to a member's phone, on record before it is sent."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from attendance.models import MpesaCallback, MpesaPayment
from attendance.mpesa import daraja_client
from attendance.mpesa.client import DarajaClient, StkPushAccepted, whole_shillings
from attendance.mpesa.transport import DarajaError, DarajaValidationError
from attendance.phones import mask_phone, normalise_phone
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.pacing import daraja_problem_note

from .inbox import process_guarded
from .outcomes import PUSH_NOT_SENT, PUSH_REFUSED, PUSH_UNANSWERED, PaymentError

logger = logging.getLogger(__name__)
Status = MpesaPayment.Status


def payment_callback_url() -> str:
    """The CallBackURL sent with every push: the public base plus the secret token."""
    return f"{settings.MPESA_CALLBACK_URL}/{settings.MPESA_CALLBACK_TOKEN}/"


def payment_references(purpose: str, account_code: str | None = None) -> tuple[str, str]:
    """AccountReference (at most 12 characters, shown to the customer) and TransactionDesc
    (at most 13). The reference is the payer's account code: the prompt names the same
    account a Paybill payment would, and the same money seen again as a Paybill
    confirmation or a Pull row is attributed to the same member."""
    words = re.sub(r"[^A-Za-z0-9 ]+", " ", purpose).split()
    account_reference = account_code or (
        ("SF " + " ".join(words))[:12].strip() if words else "SoundFusion"
    )
    transaction_desc = (" ".join(words) or "Sound Fusion")[:13].strip()
    return account_reference, transaction_desc


def _fingerprint(**fields: object) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def payment_request_stk_push(
    *,
    payer: User,
    amount: object,
    purpose: str,
    requested_by: User | None,
    phone: str | None = None,
    idempotency_key: str | None = None,
    client: DarajaClient | None = None,
    audit: bool = True,
) -> tuple[MpesaPayment, bool]:
    """Send an M-Pesa prompt to `payer`'s phone (or `phone`) for `amount` shillings.

    Returns (payment, replayed): `replayed` is True when `idempotency_key` matched an earlier
    request with the same content, which is returned instead of prompting again.

    Raises PaymentError: invalid amount or phone (400), a prompt already waiting on that phone
    (409), the same idempotency key with different content (422), too many prompts (429),
    Daraja refusing or not answering (502) or payments unavailable with nothing sent (503);
    from a 502 or 503 on, the payment is kept as failed with the reason.

    A prompt to someone else's phone is in the audit trail (`audit=False`: a bulk job, whose
    start is).
    """
    purpose = (purpose or "").strip()[:100] or "Balance payment"
    shillings, phone = _checked_amount_and_phone(payer, amount, phone)
    fingerprint = _fingerprint(payer=payer.pk, amount=shillings, phone=phone, purpose=purpose)
    if idempotency_key:
        replay = _replay(requested_by, idempotency_key, fingerprint)
        if replay is not None:
            return replay, True
    account_reference, transaction_desc = payment_references(
        purpose, getattr(getattr(payer, "profile", None), "account_code", None)
    )
    try:
        with transaction.atomic():
            _check_prompt_limits(requested_by=requested_by, phone=phone)
            payment = MpesaPayment.objects.create(
                user=payer,
                requested_by=requested_by,
                phone_number=phone,
                amount=Decimal(shillings),
                payment_purpose=purpose,
                account_reference=account_reference,
                transaction_desc=transaction_desc,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
            )
            if audit and requested_by is not None and requested_by.pk != payer.pk:
                audit_record(
                    AuditEvent.PROMPT_REQUESTED,
                    actor=requested_by,
                    target=payment,
                    after={"member": payer.get_username(), "amount": shillings},
                    details={"phone": mask_phone(phone), "purpose": purpose},
                )
    except IntegrityError as error:
        # Either the same idempotency key raced us, or a prompt is open on this phone.
        if idempotency_key:
            replay = _replay(requested_by, idempotency_key, fingerprint)
            if replay is not None:
                return replay, True
        raise PaymentError(
            "prompt_pending",
            f"A payment prompt is already waiting on {mask_phone(phone)}. "
            "Answer it on the phone, or wait a minute and try again.",
            http_status=409,
        ) from error
    # Committed: from here on, whatever Daraja does, the attempt is on record.
    accepted = _push(payment, client or daraja_client())
    return _record_accepted(payment, accepted), False


def _checked_amount_and_phone(payer: User, amount: object, phone: str | None) -> tuple[int, str]:
    try:
        shillings = whole_shillings(amount)
    except DarajaValidationError as error:
        raise PaymentError("invalid_amount", error.message) from error
    try:
        return shillings, normalise_phone(phone or payer.profile.phone_number)
    except ValidationError as error:
        raise PaymentError(
            "invalid_phone",
            "Enter a Safaricom number such as 0712 345 678"
            + ("" if phone else " (the member's profile has none)")
            + ".",
        ) from error


def _push(payment: MpesaPayment, client: DarajaClient) -> StkPushAccepted:
    """The STK push itself, outside any transaction; a failure fails the payment and raises."""
    try:
        try:
            return client.stk_push(
                phone=payment.phone_number,
                amount=int(payment.amount),
                account_reference=payment.account_reference,
                transaction_desc=payment.transaction_desc,
                callback_url=payment_callback_url(),
            )
        except DarajaError:
            raise
        except Exception as error:
            # A bug or a failing dependency mid-push: we cannot tell whether the push left,
            # so it is treated like a push that got no answer (never sent again by us).
            logger.exception("STK push for payment %s failed unexpectedly", payment.pk)
            raise DarajaError(
                f"Unexpected error ({type(error).__name__}).",
                code="internal_error",
                may_have_reached_customer=True,
            ) from error
    except DarajaError as error:
        raise _push_failed(payment, error) from error


def _push_failed(payment: MpesaPayment, error: DarajaError) -> PaymentError:
    daraja_problem_note(error)
    if error.may_have_reached_customer:
        result_code = PUSH_UNANSWERED
    else:
        result_code = PUSH_REFUSED if error.sent else PUSH_NOT_SENT
    MpesaPayment.objects.filter(pk=payment.pk, status=Status.INITIATED).update(
        status=Status.FAILED,
        result_code=result_code,
        result_description=str(error),  # Daraja's or the client's code and message
        settled_via="push",
        settled_at=timezone.now(),
    )
    payment.refresh_from_db()
    logger.warning("STK push to %s failed: %s", mask_phone(payment.phone_number), error)
    if isinstance(error, DarajaValidationError):
        return PaymentError("invalid_request", error.message, payment=payment)
    if error.may_have_reached_customer:
        # The prompt may still reach the phone: callers can keep following the payment.
        return PaymentError(
            "daraja_no_answer",
            "M-Pesa did not answer in time. If a prompt still reaches the phone and is paid, "
            "the payment is matched to this request and checked before the balance changes.",
            http_status=502,
            payment=payment,
        )
    if not error.sent and error.retryable:
        return PaymentError(
            "mpesa_unavailable",
            "M-Pesa payments are briefly unavailable, and nothing was sent to the phone. "
            "Please try again in a minute.",
            http_status=503,
            payment=payment,
        )
    return PaymentError(
        "daraja_error",
        f"M-Pesa did not take the request: {error.message}",
        http_status=502,
        payment=payment,
        retry_later=error.retryable,
    )


def _record_accepted(payment: MpesaPayment, accepted: StkPushAccepted) -> MpesaPayment:
    MpesaPayment.objects.filter(pk=payment.pk, status=Status.INITIATED).update(
        status=Status.PENDING,
        checkout_request_id=accepted.checkout_request_id,
        merchant_request_id=accepted.merchant_request_id,
        result_description=accepted.customer_message or accepted.response_description,
    )
    payment.refresh_from_db()
    # A callback that beat us here is waiting for another look: settle from it now.
    early = list(
        MpesaCallback.objects.filter(
            checkout_request_id=accepted.checkout_request_id,
            status__in=[MpesaCallback.Status.WAITING, MpesaCallback.Status.UNMATCHED],
        ).values_list("pk", flat=True)
    )
    for callback_id in early:
        process_guarded(callback_id)
    if early:
        payment.refresh_from_db()
    return payment


def _check_prompt_limits(*, requested_by: User | None, phone: str) -> None:
    """Refuse a prompt past the limits (429): per requester and per phone, in a window.

    Counted in the database, so the limit holds across processes and without Redis. The
    requester's row is locked first: two requests at the same moment cannot both see room
    for the last prompt. Staff who may collect payments are not limited per requester (a bulk
    request prompts every member), but any phone is protected from being prompted too often.
    Caller holds a transaction.
    """
    window = timedelta(seconds=settings.MPESA_PROMPT_LIMIT_WINDOW_SECONDS)
    since = timezone.now() - window
    minutes = max(1, round(window.total_seconds() / 60))
    # A push Daraja refused, or that never left us, prompted nobody: it does not count.
    prompted = MpesaPayment.objects.filter(initiated_at__gte=since).exclude(
        result_code__in=[PUSH_REFUSED, PUSH_NOT_SENT]
    )
    checks = [
        (
            prompted.filter(phone_number=phone),
            settings.MPESA_PROMPT_LIMIT_PER_PHONE,
            f"{mask_phone(phone)} has had {{n}} payment prompts in the last {minutes} minutes",
        )
    ]
    if requested_by is not None:
        User.objects.select_for_update().filter(pk=requested_by.pk).exists()
        if not (requested_by.is_staff and requested_by.has_perm("attendance.request_mpesapayment")):
            checks.append(
                (
                    prompted.filter(requested_by=requested_by),
                    settings.MPESA_PROMPT_LIMIT_PER_REQUESTER,
                    f"You have sent {{n}} payment prompts in the last {minutes} minutes",
                )
            )
    for recent, limit, said in checks:
        times = list(
            recent.order_by("-initiated_at").values_list("initiated_at", flat=True)[:limit]
        )
        if limit > 0 and len(times) >= limit:
            free_at = timezone.localtime(times[-1] + window)
            raise PaymentError(
                "rate_limited",
                f"{said.format(n=len(times))}. Please wait until {free_at:%H:%M} and try again.",
                http_status=429,
            )


def _replay(requested_by: User | None, key: str, fingerprint: str) -> MpesaPayment | None:
    existing = MpesaPayment.objects.filter(requested_by=requested_by, idempotency_key=key).first()
    if existing is None:
        return None
    if existing.request_fingerprint != fingerprint:
        raise PaymentError(
            "idempotency_conflict",
            "This Idempotency-Key was already used for a different payment request.",
            http_status=422,
        )
    return existing


def payment_resend(*, payment: MpesaPayment, by: User) -> MpesaPayment:
    """A new prompt for a failed or cancelled payment (same member, amount, phone, purpose)."""
    if payment.status not in (Status.FAILED, Status.CANCELLED):
        raise PaymentError("not_resendable", "Only failed or cancelled payments can be resent.")
    new, _ = payment_request_stk_push(
        payer=payment.user,
        amount=payment.amount,
        purpose=payment.payment_purpose,
        phone=payment.phone_number,
        requested_by=by,
    )
    return new
