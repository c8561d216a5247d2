"""M-Pesa STK push payments: request, settle exactly once, reconcile.

Money rules, in one place:
- A payment row is committed before Daraja is called, and Daraja is called outside any
  transaction (a slow Daraja must not hold row locks).
- Settling locks the payment row; the ledger credit is posted in the same transaction and the
  database allows one credit per payment, so duplicate, concurrent or reordered callbacks and
  queries can never credit twice.
- A final state is never downgraded. Success wins over an earlier failure (the money moved),
  which is how a late callback completes a payment reconciliation had given up on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import EmailNotification, LedgerEntry, MpesaCallback, MpesaPayment
from attendance.mpesa import daraja_client
from attendance.mpesa.callbacks import MalformedCallback, StkResult, clean_text, parse_stk_callback
from attendance.mpesa.client import (
    MAX_AMOUNT,
    DarajaClient,
    DarajaError,
    DarajaValidationError,
    whole_shillings,
)
from attendance.phones import mask_phone, normalise_phone
from attendance.services.ledger import LedgerError, ledger_post
from attendance.services.notifications import notification_create

logger = logging.getLogger(__name__)
Status = MpesaPayment.Status

# What members read when a prompt did not end in a payment (Daraja's own text is kept too).
RESULT_HINTS = {
    1: "Not enough money in the M-Pesa account.",
    2: "The amount is below M-Pesa's minimum.",
    3: "The amount is above M-Pesa's maximum.",
    4: "The M-Pesa daily limit has been reached.",
    8: "The payment would exceed the account's maximum balance.",
    17: "The same amount was just paid; wait two minutes before trying again.",
    1019: "The prompt expired before it was answered.",
    1025: "The prompt could not be sent to the phone.",
    1032: "The prompt was cancelled on the phone.",
    1037: "The phone could not be reached or did not answer in time.",
    2001: "The M-Pesa PIN was wrong.",
    2028: "M-Pesa did not permit this payment (wrong till or paybill setup).",
    8006: "The M-Pesa account's security credential is locked.",
}


# Transport failures after which the push may still have reached the phone (client.py), and
# an unexpected failure mid-push (we cannot tell).
PUSH_MAY_HAVE_REACHED = ("timeout", "connection_lost", "http_error", "internal_error")


def payment_explanation(payment: MpesaPayment) -> str:
    """What a member reads when a payment did not go through, in plain words.

    Safaricom's own description stays on the payment for staff; this is the sentence for the
    person holding the phone, and it always says whether money moved.
    """
    if payment.status == Status.CANCELLED:
        return "The prompt was cancelled on the phone. Nothing was paid."
    if payment.status != Status.FAILED:
        return ""
    if payment.result_code.isdigit() and int(payment.result_code) in RESULT_HINTS:
        return f"{RESULT_HINTS[int(payment.result_code)]} Nothing was paid."
    if payment.result_code == "timeout":
        return "M-Pesa did not confirm the payment in time. Nothing was paid."
    if payment.result_code in PUSH_MAY_HAVE_REACHED:
        return "M-Pesa did not answer. If the prompt still arrives and you pay, we check it."
    return "M-Pesa did not take the request. Nothing was paid."


class PaymentError(Exception):
    """A payment request that could not be made; `code` and `message` go to the API caller."""

    def __init__(self, code: str, message: str, *, http_status: int = 400, payment=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.payment = payment


# --- Requesting a payment -------------------------------------------------------------------
def payment_callback_url() -> str:
    """The CallBackURL sent with every push: the public base plus the secret token."""
    return f"{settings.MPESA_CALLBACK_URL}/{settings.MPESA_CALLBACK_TOKEN}/"


def payment_references(purpose: str) -> tuple[str, str]:
    """AccountReference (at most 12 characters, shown to the customer) and TransactionDesc
    (at most 13), derived from the purpose."""
    words = re.sub(r"[^A-Za-z0-9 ]+", " ", purpose).split()
    account_reference = ("SF " + " ".join(words))[:12].strip() if words else "SoundFusion"
    transaction_desc = (" ".join(words) or "Sound Fusion")[:13].strip()
    return account_reference, transaction_desc


def _fingerprint(**fields) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def payment_request_stk_push(
    *,
    payer,
    amount,
    purpose: str,
    requested_by,
    phone: str | None = None,
    idempotency_key: str | None = None,
    client: DarajaClient | None = None,
) -> tuple[MpesaPayment, bool]:
    """Send an M-Pesa prompt to `payer`'s phone (or `phone`) for `amount` shillings.

    Returns (payment, replayed): `replayed` is True when `idempotency_key` matched an earlier
    request with the same content, which is returned instead of prompting again.

    Raises PaymentError: invalid amount or phone (400), a prompt already waiting on that phone
    (409), the same idempotency key with different content (422), too many prompts (429),
    Daraja refusing or not answering (502) or payments unavailable with nothing sent (503);
    from a 502 or 503 on the payment is kept as failed with the reason.
    """
    purpose = (purpose or "").strip()[:100] or "Balance payment"
    try:
        shillings = whole_shillings(amount)
    except DarajaValidationError as error:
        raise PaymentError("invalid_amount", error.message) from error
    try:
        phone = normalise_phone(phone or payer.profile.phone_number)
    except ValidationError as error:
        raise PaymentError(
            "invalid_phone",
            "Enter a Safaricom number such as 0712 345 678"
            + ("" if phone else " (the member's profile has none)")
            + ".",
        ) from error
    fingerprint = _fingerprint(payer=payer.pk, amount=shillings, phone=phone, purpose=purpose)

    if idempotency_key:
        replay = _replay(requested_by, idempotency_key, fingerprint)
        if replay is not None:
            return replay, True

    account_reference, transaction_desc = payment_references(purpose)
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
    client = client or daraja_client()
    try:
        try:
            accepted = client.stk_push(
                phone=phone,
                amount=shillings,
                account_reference=account_reference,
                transaction_desc=transaction_desc,
                callback_url=payment_callback_url(),
            )
        except DarajaError:
            raise
        except Exception as error:
            # A bug or a failing dependency mid-push: we cannot tell whether the push left,
            # so it is treated like a push that got no answer (never sent again by us).
            logger.exception("STK push for payment %s failed unexpectedly", payment.pk)
            raise DarajaError(
                f"Unexpected error ({type(error).__name__}).", code="internal_error"
            ) from error
    except DarajaError as error:
        MpesaPayment.objects.filter(pk=payment.pk, status=Status.INITIATED).update(
            status=Status.FAILED,
            result_code=(error.code or "daraja_error")[:20],
            result_description=str(error),
            settled_via="push",
            settled_at=timezone.now(),
        )
        payment.refresh_from_db()
        logger.warning("STK push to %s failed: %s", mask_phone(phone), error)
        code, status = "daraja_error", 502
        message = f"M-Pesa did not take the request: {error.message}"
        if isinstance(error, DarajaValidationError):
            code, status = "invalid_request", 400
        elif not error.reached and error.retryable:
            code, status = "mpesa_unavailable", 503
            message = (
                "M-Pesa payments are briefly unavailable, and nothing was sent to the phone. "
                "Please try again in a minute."
            )
        elif error.code in PUSH_MAY_HAVE_REACHED:
            # The prompt may still reach the phone: callers can keep following the payment.
            code = "daraja_no_answer"
            message = (
                "M-Pesa did not answer in time. If a prompt still reaches the phone and is "
                "paid, the payment is matched to this request and checked before the balance "
                "changes."
            )
        raise PaymentError(code, message, http_status=status, payment=payment) from error

    MpesaPayment.objects.filter(pk=payment.pk, status=Status.INITIATED).update(
        status=Status.PENDING,
        checkout_request_id=accepted.checkout_request_id,
        merchant_request_id=accepted.merchant_request_id,
        result_description=accepted.customer_message or accepted.response_description,
    )
    payment.refresh_from_db()
    # A callback that beat us here was stored as unmatched: settle from it now.
    early = MpesaCallback.objects.filter(
        checkout_request_id=accepted.checkout_request_id, status=MpesaCallback.Status.UNMATCHED
    ).values_list("pk", flat=True)
    for callback_id in early:
        _process_guarded(callback_id)
    if early:
        payment.refresh_from_db()
    return payment, False


def _check_prompt_limits(*, requested_by, phone: str) -> None:
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
    checks = [
        (
            MpesaPayment.objects.filter(phone_number=phone, initiated_at__gte=since),
            settings.MPESA_PROMPT_LIMIT_PER_PHONE,
            f"{mask_phone(phone)} has had {{n}} payment prompts in the last {minutes} minutes",
        )
    ]
    if requested_by is not None:
        get_user_model().objects.select_for_update().filter(pk=requested_by.pk).exists()
        if not (requested_by.is_staff and requested_by.has_perm("attendance.request_mpesapayment")):
            checks.append(
                (
                    MpesaPayment.objects.filter(requested_by=requested_by, initiated_at__gte=since),
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


def _replay(requested_by, key: str, fingerprint: str) -> MpesaPayment | None:
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


def payment_resend(*, payment: MpesaPayment, by) -> MpesaPayment:
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


# --- Callbacks ------------------------------------------------------------------------------
def _as_text(body: bytes) -> tuple[str, bytes | None]:
    """The body as storable text, plus its exact bytes when the text cannot hold them."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), body
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return text.replace("\x00", "\ufffd"), body
    return text, None


def callback_receive(
    *, body: bytes, remote_addr: str | None, oversized: bool = False
) -> tuple[int, int]:
    """Store a callback raw and commit it; queue its processing. Returns (row id, http status).

    Whatever the body, it is stored: malformed or oversized ones too (truncated to
    MPESA_CALLBACK_MAX_BYTES, exact bytes kept when text cannot hold them), answered with
    400/413 and never processed. Only a database failure raises.
    """
    raw, exact = _as_text(body[: settings.MPESA_CALLBACK_MAX_BYTES])
    if oversized:
        detail = f"Body larger than {settings.MPESA_CALLBACK_MAX_BYTES} bytes (truncated)."
        return _store_unreadable(raw, exact, remote_addr, detail), 413
    try:
        result = parse_stk_callback(body)
    except MalformedCallback as error:
        detail = str(error)
    except Exception as error:  # the parser's promise broken: still keep the body
        logger.exception("The callback parser failed on a body")
        detail = f"Unreadable: {type(error).__name__}"
    else:
        callback_id = _callback_store(
            raw=raw,
            exact=exact,
            remote_addr=remote_addr,
            checkout_request_id=result.checkout_request_id,
        )
        _queue_callback(callback_id)
        return callback_id, 200
    callback_id = _store_unreadable(raw, exact, remote_addr, detail)
    logger.warning("Malformed M-Pesa callback %s from %s: %s", callback_id, remote_addr, detail)
    return callback_id, 400


def _store_unreadable(raw: str, exact: bytes | None, remote_addr, detail: str) -> int:
    return MpesaCallback.objects.create(
        raw_body=raw,
        raw_bytes=exact,
        remote_addr=remote_addr,
        status=MpesaCallback.Status.MALFORMED,
        detail=detail,
    ).pk


_CALLBACK_INSERT = (
    f"INSERT INTO {MpesaCallback._meta.db_table} "  # noqa: S608 - a constant table name
    "(received_at, raw_body, raw_bytes, remote_addr, checkout_request_id, status, detail, "
    "attempts) VALUES (%s, %s, %s, %s, %s, %s, '', 0) RETURNING id"
)


def _callback_store(
    *, raw: str, remote_addr: str | None, checkout_request_id: str, exact: bytes | None = None
) -> int:
    """One committed INSERT of a well-formed callback; returns its id.

    The busiest write of the app, so it skips the ORM's model machinery (a third of the
    endpoint's time in profiles). Persistent connections are not health-checked per request
    (CONN_HEALTH_CHECKS, a second round trip), so a connection that died since the last
    request (a database restart) is replaced and the INSERT tried once more: a callback is
    answered 200 only once it is stored, and Safaricom does not send it again.
    """
    params = [
        timezone.now(),
        raw,
        exact,
        remote_addr,
        checkout_request_id,
        MpesaCallback.Status.RECEIVED,
    ]
    for attempt in (1, 2):
        try:
            with connection.cursor() as cursor:
                cursor.execute(_CALLBACK_INSERT, params)
                return cursor.fetchone()[0]
        except (OperationalError, InterfaceError):
            if attempt == 2 or not connection.get_autocommit() or connection.in_atomic_block:
                raise
            connection.close()
    raise AssertionError("unreachable")


# Queueing a Celery task costs more than storing the callback. The flag means "a batch task
# is queued or running": only the request that sets it queues one, and that task drains
# every callback stored until the burst is over.
KICK_KEY = "mpesa:callbacks:kick"
KICK_SECONDS = 10  # refreshed while the task runs; a dead worker's flag expires
# A process that has seen the flag set this recently does not ask Redis again (a round trip
# per callback, a tenth of the endpoint's time); see callbacks_process_received for why no
# callback is left behind.
KICK_LOCAL_SECONDS = 0.5
BATCH_LINGER_SECONDS = 1.0
BATCH_POLL_SECONDS = 0.2
_kick_seen_at = -1e9


_redis = None


def _redis_client():
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(settings.REDIS_URL)
    return _redis


def _kick_set() -> bool:
    """Set the flag if it is not set; True if this call set it.

    On the callback's hot path: a plain Redis SET NX costs a quarter of Django's cache.add.
    """
    if not settings.REDIS_URL:
        return cache.add(KICK_KEY, 1, timeout=KICK_SECONDS)
    return bool(_redis_client().set(KICK_KEY, 1, ex=KICK_SECONDS, nx=True))


def _kick_refresh() -> None:
    if settings.REDIS_URL:
        _redis_client().expire(KICK_KEY, KICK_SECONDS)
    else:
        cache.touch(KICK_KEY, KICK_SECONDS)


def _kick_clear() -> None:
    if settings.REDIS_URL:
        _redis_client().delete(KICK_KEY)
    else:
        cache.delete(KICK_KEY)


def _tasks_run_in_process() -> bool:
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def _queue_callback(callback_id: int) -> None:
    from attendance.tasks import callbacks_process_received_task

    def queue():
        global _kick_seen_at
        checked_at = time.monotonic()
        if checked_at - _kick_seen_at < KICK_LOCAL_SECONDS:
            return
        # Asked only here: reading Celery's config costs a tenth of the endpoint's time.
        if _tasks_run_in_process():
            # No worker (the demo, tests): each request settles its own callback. The flag
            # is for workers, whose batch task looks once more after clearing it; a task run
            # in a request cannot wait for other requests to commit.
            try:
                callback_process(callback_id=callback_id)
            except Exception:
                logger.exception("Callback %s not processed; the sweeper will", callback_id)
            return
        try:
            if _kick_set():
                callbacks_process_received_task.delay()
            # Set before the flag was read: the window never outlasts what the task allows.
            _kick_seen_at = checked_at
        except Exception:
            # Redis or the broker is down: the callback is stored; the sweeper processes it.
            _kick_seen_at = -1e9
            with contextlib.suppress(Exception):
                _kick_clear()
            logger.warning("Could not queue callback %s; the sweeper will process it", callback_id)

    transaction.on_commit(queue)


def callbacks_process_received() -> int:
    """The batch task (on a worker): process every stored callback not processed yet.

    It keeps looking until it has found nothing new for BATCH_LINGER_SECONDS, clears the
    flag, waits KICK_LOCAL_SECONDS (the longest any process trusts a flag it saw) and looks
    once more. A request checks the flag only after its row is committed, so a row whose
    request saw the flag set, or skipped Redis because it saw it recently, is committed
    before that last look. Returns how many it processed.
    """
    done, idle_since = 0, time.monotonic()
    while True:
        found = _callbacks_drain()
        done += found
        if found:
            idle_since = time.monotonic()
        if time.monotonic() - idle_since >= BATCH_LINGER_SECONDS:
            break
        _kick_refresh()
        time.sleep(BATCH_POLL_SECONDS)
    _kick_clear()
    time.sleep(KICK_LOCAL_SECONDS + BATCH_POLL_SECONDS)
    return done + _callbacks_drain()


def _callbacks_drain() -> int:
    """Process stored callbacks in arrival order, each looked at once per drain.

    A cursor on the id, not "the oldest received rows again": a row another worker holds, or
    one whose processing failed, must not be picked up again and again ahead of the rest.
    """
    done, after = 0, 0
    while True:
        batch = list(
            MpesaCallback.objects.filter(status=MpesaCallback.Status.RECEIVED, pk__gt=after)
            .order_by("id")
            .values_list("pk", flat=True)[:200]
        )
        if not batch:
            return done
        done += sum(_process_guarded(pk) != "skipped" for pk in batch)
        after = batch[-1]


def _process_guarded(callback_id: int) -> str:
    """callback_process for loops: a failure is logged and the loop goes on to the next row."""
    try:
        return callback_process(callback_id=callback_id)
    except Exception:
        # Only the bookkeeping itself failed here (the database went away mid-row); the row
        # is still stored and the sweeper comes back to it.
        logger.exception("M-Pesa callback %s could not be processed", callback_id)
        return "failed"


_OUTCOME_STATUS = {
    "processed": MpesaCallback.Status.PROCESSED,
    "duplicate": MpesaCallback.Status.DUPLICATE,
    "unmatched": MpesaCallback.Status.UNMATCHED,
}


def callback_process(*, callback_id: int, manual: bool = False) -> str:
    """Settle the payment a stored callback reports. Safe to run any number of times.

    The callback row is claimed with a row lock that others skip, and its outcome commits in
    the same transaction as the payment's settlement: a callback is never half processed.
    Settlement runs in a savepoint: whatever goes wrong in it (a bug, a body the rules cannot
    take), the row records the reason and counts the attempt, and after
    MPESA_CALLBACK_MAX_ATTEMPTS it is quarantined for a person; it can never stop the
    callbacks behind it. `manual` (staff's "Process again") also takes quarantined rows.
    """
    statuses = [*MpesaCallback.RETRYABLE]
    if manual:
        statuses.append(MpesaCallback.Status.QUARANTINED)
    with transaction.atomic():
        callback = (
            MpesaCallback.objects.select_for_update(skip_locked=True)
            .filter(pk=callback_id, status__in=statuses)
            .first()
        )
        if callback is None:
            return "skipped"  # processed already, or being processed right now
        callback.attempts += 1
        callback.processed_at = timezone.now()
        try:
            with transaction.atomic():
                result = parse_stk_callback(callback.body_bytes)
                outcome, payment = payment_apply_result(result=result, via="callback")
                callback.status = _OUTCOME_STATUS[outcome]
                callback.payment = payment
                callback.detail = clean_text(
                    f"ResultCode {result.result_code}: {result.result_description}", 2000
                )
                callback.save(
                    update_fields=["status", "payment", "detail", "attempts", "processed_at"]
                )
                if outcome == "unmatched" and result.succeeded and callback.attempts == 2:
                    # Money arrived that no request of ours explains. Not on the first look,
                    # which can race the push's answer being saved; the sweeper's retry,
                    # 30 s on, cannot.
                    _alert_staff(
                        notification_type=EmailNotification.Type.PAYMENT_UNMATCHED,
                        context={"callback": callback, "result": result},
                    )
        except Exception as error:
            logger.exception("M-Pesa callback %s could not be processed", callback_id)
            give_up = callback.attempts >= settings.MPESA_CALLBACK_MAX_ATTEMPTS
            callback.status = (
                MpesaCallback.Status.QUARANTINED if give_up else MpesaCallback.Status.ERROR
            )
            callback.payment = None
            callback.detail = clean_text(f"{type(error).__name__}: {error}", 2000)
            callback.save(update_fields=["status", "payment", "detail", "attempts", "processed_at"])
            return callback.status
    if callback.status == MpesaCallback.Status.UNMATCHED:
        logger.warning(
            "M-Pesa callback %s for unknown checkout %s (result %s)",
            callback_id,
            result.checkout_request_id,
            result.result_code,
        )
    return callback.status


# When the sweeper looks again at a callback that matched no payment (after its Nth look): its
# push's answer may not have been saved yet (a push that timed out on our side is only failed
# after MPESA_READ_TIMEOUT), so a second look 30 s after the first, a last one 5 minutes after
# that; then it is left for staff.
UNMATCHED_RETRY_AFTER = {1: timedelta(seconds=30), 2: timedelta(minutes=5)}
SWEEP_SECONDS = 40  # a run stops starting new rows after this; the beat runs every minute


def callbacks_process_pending(*, now: datetime | None = None) -> int:
    """The beat's sweeper: process what the batch task left behind. Returns how many rows.

    First rows never processed or whose processing failed (oldest first), then unmatched rows
    due their next look. The open set has a partial index, so a run costs what is left
    behind, not the size of the history; it goes on until that set is empty or SWEEP_SECONDS
    have passed (its rate is then bounded by processing, not a fixed batch).
    """
    now = now or timezone.now()
    started = time.monotonic()
    open_rows = MpesaCallback.objects.filter(received_at__lt=now - timedelta(seconds=30))
    unmatched_due = Q()
    for attempts, after in UNMATCHED_RETRY_AFTER.items():
        unmatched_due |= Q(attempts=attempts, processed_at__lt=now - after)
    stages = [
        open_rows.filter(status__in=[MpesaCallback.Status.RECEIVED, MpesaCallback.Status.ERROR]),
        open_rows.filter(unmatched_due, status=MpesaCallback.Status.UNMATCHED),
    ]
    count = 0
    for stage in stages:
        after = 0
        while time.monotonic() - started < SWEEP_SECONDS:
            batch = list(
                stage.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:200]
            )
            if not batch:
                break
            for callback_id in batch:
                _process_guarded(callback_id)
                count += 1
            after = batch[-1]
    return count


# --- Settling -------------------------------------------------------------------------------
def payment_apply_result(*, result: StkResult, via: str) -> tuple[str, MpesaPayment | None]:
    """Apply a callback's or a query's outcome to its payment, once.

    Returns ("processed" | "duplicate" | "unmatched", payment).
    """
    with transaction.atomic():
        # The row lock serialises concurrent callbacks and queries for one payment.
        payment = (
            MpesaPayment.objects.select_for_update()
            .filter(checkout_request_id=result.checkout_request_id)
            .first()
        )
        if payment is None:
            payment = _unanswered_push_for(result)
            if payment is None:
                return "unmatched", None
            payment.checkout_request_id = result.checkout_request_id
            payment.merchant_request_id = result.merchant_request_id
            doubt = (
                f"our push got no answer ({payment.result_code}); matched to this callback "
                "by amount and phone: check receipt"
            )
            return _complete(payment, result, via, doubt=doubt), payment
        if result.result_code == 0:
            return _complete(payment, result, via), payment
        return _fail(payment, result, via), payment


def _unanswered_push_for(result: StkResult) -> MpesaPayment | None:
    """The payment a success callback with an unknown checkout must be for, if only one fits.

    A push that timed out on our side may still reach the phone; we never learnt its
    CheckoutRequestID, so the customer's money would otherwise sit in an unmatched callback.
    The one failed-without-an-answer payment for the same amount, started shortly before the
    transaction (and from the same phone, when the callback shows it unmasked), is taken;
    two candidates or none leave the callback unmatched for staff. Caller holds a transaction.
    """
    if result.result_code != 0 or result.amount is None:
        return None
    paid_at = result.transaction_date or timezone.now()
    candidates = MpesaPayment.objects.select_for_update().filter(
        checkout_request_id__isnull=True,
        status=Status.FAILED,
        result_code__in=PUSH_MAY_HAVE_REACHED,
        amount=result.amount,
        # The prompt lives a minute or two; the slack allows for Safaricom's clock.
        initiated_at__range=(
            paid_at - timedelta(seconds=settings.MPESA_PENDING_TIMEOUT_SECONDS),
            paid_at + timedelta(minutes=2),
        ),
    )
    if result.phone.isdigit() and len(result.phone) == 12:
        candidates = candidates.filter(phone_number=result.phone)
    found = list(candidates.order_by("pk")[:2])
    return found[0] if len(found) == 1 else None


def _paid_amount(result: StkResult) -> Decimal | None:
    """What the callback says was paid, if it is an amount M-Pesa can have moved: whole
    shillings, 1 to 250,000. None for anything else (0, negative, 300.001, absurd)."""
    amount = result.amount
    if amount is None or amount != amount.to_integral_value() or not 1 <= amount <= MAX_AMOUNT:
        return None
    return amount.quantize(Decimal("0.01"))


def _record_paid(payment: MpesaPayment, result: StkResult) -> None:
    payment.receipt_number = result.receipt_number
    payment.transaction_date = result.transaction_date
    payment.paid_amount = _paid_amount(result)
    payment.paid_phone_number = result.phone


def _complete(payment: MpesaPayment, result: StkResult, via: str, *, doubt: str = "") -> str:
    """`doubt`: a reason staff must look before the ledger is credited."""
    now = timezone.now()
    if payment.status == Status.COMPLETED:
        if result.receipt_number and not payment.receipt_number:
            # Settled by a query earlier (which carries no receipt); fill in what we learnt.
            _record_paid(payment, result)
            fields = ["receipt_number", "transaction_date", "paid_amount", "paid_phone_number"]
            problems = _mismatches(payment, result)
            if problems and payment.ledger_entry_id and not payment.needs_review:
                # The query credited the requested amount; the callback says otherwise.
                payment.needs_review = True
                payment.review_reason = clean_text(
                    f"credited KES {payment.amount} on the status query, then the callback "
                    f"said: {'; '.join(problems)}",
                    255,
                )
                fields += ["needs_review", "review_reason"]
            payment.save(update_fields=[*fields, "updated_at"])
        return "duplicate"

    payment.status = Status.COMPLETED
    payment.completed_at = payment.settled_at = now
    payment.settled_via = via
    payment.result_code = "0"
    payment.result_description = result.result_description or "Paid"
    if result.receipt_number:
        _record_paid(payment, result)

    problems = [doubt] if doubt else []
    problems += _mismatches(payment, result)
    if problems:
        payment.needs_review = True
        payment.review_reason = clean_text("; ".join(problems), 255)
        payment.save()
        _alert_staff(
            notification_type=EmailNotification.Type.PAYMENT_REVIEW,
            context={"payment": payment},
            payment=payment,
        )
        logger.error("M-Pesa payment %s needs review: %s", payment.pk, payment.review_reason)
        return "processed"

    payment.ledger_entry = ledger_post(
        user=payment.user,
        kind=LedgerEntry.Kind.PAYMENT,
        amount=payment.amount,
        description=f"M-Pesa payment {payment.receipt_number or payment.checkout_request_id}",
        created_by=payment.requested_by,
        source=payment,
    )
    payment.save()
    _confirm_to_payer(payment)
    return "processed"


def _mismatches(payment: MpesaPayment, result: StkResult) -> list[str]:
    problems = []
    if result.amount is not None:
        if _paid_amount(result) is None:
            problems.append(f"M-Pesa reported an amount that cannot be right: {result.amount}")
        elif result.amount != payment.amount:
            problems.append(f"paid KES {result.amount}, requested KES {payment.amount}")
    if result.phone.isdigit() and len(result.phone) == 12 and result.phone != payment.phone_number:
        problems.append(
            f"paid from {mask_phone(result.phone)}, requested {mask_phone(payment.phone_number)}"
        )
    return problems


def _fail(payment: MpesaPayment, result: StkResult, via: str) -> str:
    if payment.is_final:
        return "duplicate"  # never downgrade; the first final answer stands
    payment.status = Status.CANCELLED if result.result_code == 1032 else Status.FAILED
    payment.result_code = str(result.result_code)
    hint = RESULT_HINTS.get(result.result_code, "")
    payment.result_description = " ".join(
        part for part in (result.result_description, f"({hint})" if hint else "") if part
    )
    payment.settled_at = timezone.now()
    payment.settled_via = via
    payment.save()
    return "processed"


def _confirm_to_payer(payment: MpesaPayment) -> None:
    if not payment.user.email:
        return
    notification_create(
        recipient=payment.user.email,
        user=payment.user,
        notification_type=EmailNotification.Type.PAYMENT_CONFIRMATION,
        context={"payment": payment, "balance": payment.ledger_entry.balance_after},
        payment=payment,
    )


def _alert_staff(*, notification_type: str, context: dict, **links) -> None:
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    for member in staff:
        notification_create(
            recipient=member.email,
            user=member,
            notification_type=notification_type,
            context=context,
            **links,
        )


def payment_credit_after_review(*, payment: MpesaPayment, by) -> MpesaPayment:
    """Staff accept a flagged payment: the ledger is credited with what was actually paid."""
    with transaction.atomic():
        payment = MpesaPayment.objects.select_for_update().get(pk=payment.pk)
        if not (payment.needs_review and payment.status == Status.COMPLETED):
            raise PaymentError("not_in_review", "Only completed payments flagged for review.")
        if payment.ledger_entry_id:
            raise PaymentError("already_credited", "This payment was already credited.")
        # What M-Pesa says was paid, never the requested amount: a callback that reported
        # 0, a negative or a fraction of a shilling has nothing we may credit.
        amount = payment.paid_amount
        if amount is None or amount <= 0:
            raise PaymentError(
                "no_paid_amount",
                f"Payment {payment.pk}: M-Pesa reported no valid amount paid, so there is "
                "nothing to credit. Check the M-Pesa statement and add a ledger payment by hand "
                "if money arrived.",
            )
        try:
            payment.ledger_entry = ledger_post(
                user=payment.user,
                kind=LedgerEntry.Kind.PAYMENT,
                amount=amount,
                description=f"M-Pesa payment {payment.receipt_number} (after review)",
                created_by=by,
                source=payment,
            )
        except LedgerError as error:
            raise PaymentError("invalid_amount", str(error)) from error
        payment.needs_review = False
        payment.review_reason = f"{payment.review_reason}; credited KES {amount} by {by}"[:255]
        payment.save()
    return payment


# --- Reconciliation -------------------------------------------------------------------------
def payment_query(*, payment: MpesaPayment, client: DarajaClient | None = None) -> str:
    """Ask Daraja how an open payment ended and settle it if it has.

    Returns "processed", "duplicate", "pending" (the customer has not answered yet),
    "error" (Daraja could not answer) or "skipped" (nothing to ask).
    """
    if payment.is_final or not payment.checkout_request_id:
        return "skipped"
    client = client or daraja_client()
    now = timezone.now()
    try:
        answer = client.stk_query(checkout_request_id=payment.checkout_request_id)
    except DarajaError as error:
        logger.warning("STK query for payment %s failed: %s", payment.pk, error)
        answer = None
    MpesaPayment.objects.filter(pk=payment.pk).update(
        last_queried_at=now, query_count=payment.query_count + 1
    )
    if answer is None:
        return "error"
    if answer.pending:
        return "pending"
    outcome, _ = payment_apply_result(
        result=StkResult(
            merchant_request_id=payment.merchant_request_id,
            checkout_request_id=payment.checkout_request_id,
            result_code=answer.result_code,
            result_description=answer.result_description,
        ),
        via="query",
    )
    return outcome


def payment_expire(*, payment: MpesaPayment) -> bool:
    """Give up on a payment nobody answered for: failed (timeout). A late success callback
    can still complete it. Returns whether it was expired."""
    with transaction.atomic():
        payment = MpesaPayment.objects.select_for_update().get(pk=payment.pk)
        if payment.is_final:
            return False
        minutes = settings.MPESA_PENDING_TIMEOUT_SECONDS // 60
        payment.status = Status.FAILED
        payment.result_code = "timeout"
        payment.result_description = f"No answer from M-Pesa within {minutes} minutes."
        payment.settled_at = timezone.now()
        payment.settled_via = "timeout"
        payment.save()
    return True


def payments_reconcile(*, now: datetime | None = None, client: DarajaClient | None = None) -> dict:
    """Settle what callbacks never reported: query payments pending for a while, expire the
    ones that stay unanswered too long. For the beat; safe to run concurrently."""
    now = now or timezone.now()
    query_after = timedelta(seconds=settings.MPESA_QUERY_AFTER_SECONDS)
    counts: dict[str, int] = {}
    due = (
        MpesaPayment.objects.filter(status=Status.PENDING, initiated_at__lt=now - query_after)
        .filter(Q(last_queried_at__isnull=True) | Q(last_queried_at__lt=now - query_after))
        .order_by("initiated_at")[:200]
    )
    for payment in due:
        outcome = payment_query(payment=payment, client=client)
        counts[outcome] = counts.get(outcome, 0) + 1
    stale = MpesaPayment.objects.filter(
        status__in=MpesaPayment.OPEN,
        initiated_at__lt=now - timedelta(seconds=settings.MPESA_PENDING_TIMEOUT_SECONDS),
    )
    counts["expired"] = sum(payment_expire(payment=payment) for payment in stale[:500])
    return counts
