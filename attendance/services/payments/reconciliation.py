"""Reconciliation: settle what no callback reported, by asking Daraja, never by guessing."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from attendance.models import MpesaPayment
from attendance.mpesa import daraja_client
from attendance.mpesa.callbacks import StkResult
from attendance.mpesa.client import DarajaClient
from attendance.mpesa.transport import DarajaError
from attendance.services.core.pacing import Pacer, daraja_problem_note, paced_map

from .outcomes import EXPIRED
from .settlement import payment_apply_result

logger = logging.getLogger(__name__)
Status = MpesaPayment.Status


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
        daraja_problem_note(error)
        answer = None
    MpesaPayment.objects.filter(pk=payment.pk).update(
        last_queried_at=now, query_count=payment.query_count + 1
    )
    if answer is None:
        return "error"
    if answer.result_code is None:  # the customer has not answered yet
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
    """Give up on a payment nobody answered for: failed (`expired`). A late success callback
    can still complete it. Returns whether it was expired."""
    with transaction.atomic():
        payment = MpesaPayment.objects.select_for_update().get(pk=payment.pk)
        if payment.is_final:
            return False
        minutes = settings.MPESA_PENDING_TIMEOUT_SECONDS // 60
        payment.status = Status.FAILED
        payment.result_code = EXPIRED
        payment.result_description = f"No answer from M-Pesa within {minutes} minutes."
        payment.settled_at = timezone.now()
        payment.settled_via = "timeout"
        payment.save()
    return True


RECONCILE_LOCK = "mpesa:reconcile:running"
# A run stops starting new queries after this: the beat starts one every minute.
RECONCILE_RUN_SECONDS = 50


def payments_reconcile(*, now: datetime | None = None, client: DarajaClient | None = None) -> dict:
    """The beat's reconciler: settle what callbacks never reported. Returns what it did.

    Sized to the backlog, not to a fixed batch: it expires the payments open past
    MPESA_PENDING_TIMEOUT_SECONDS, then queries the due ones (pending longer than
    MPESA_QUERY_AFTER_SECONDS, never asked or not since then), those never asked first,
    MPESA_RECONCILE_CONCURRENCY at a time and at most MPESA_RECONCILE_PER_SECOND, until none is
    due or RECONCILE_RUN_SECONDS have passed. At the defaults (8 at a time, 20 a second) a
    burst of 10,000 pending payments is queried in about 500 s, inside the 810 s between
    their first query and their expiry. Runs never overlap (a lock in the shared cache).
    """
    if not cache.add(RECONCILE_LOCK, 1, timeout=RECONCILE_RUN_SECONDS + 30):
        return {"skipped": 1}  # another run is still at work
    try:
        return _reconcile(now or timezone.now(), client or daraja_client())
    finally:
        cache.delete(RECONCILE_LOCK)


def _reconcile(now: datetime, client: DarajaClient) -> dict:
    started = time.monotonic()
    counts: dict[str, int] = {}
    query_after = now - timedelta(seconds=settings.MPESA_QUERY_AFTER_SECONDS)
    stale = MpesaPayment.objects.filter(
        status__in=MpesaPayment.OPEN,
        initiated_at__lt=now - timedelta(seconds=settings.MPESA_PENDING_TIMEOUT_SECONDS),
    )
    expired_ids = list(stale.values_list("pk", flat=True))
    counts["expired"] = sum(payment_expire(payment=MpesaPayment(pk=pk)) for pk in expired_ids)
    due = (
        MpesaPayment.objects.filter(status=Status.PENDING, initiated_at__lt=query_after)
        .filter(Q(last_queried_at__isnull=True) | Q(last_queried_at__lt=query_after))
        .order_by(F("last_queried_at").asc(nulls_first=True), "initiated_at")
    )
    pacer = Pacer(settings.MPESA_RECONCILE_PER_SECOND)
    seen: set[int] = set()
    while time.monotonic() - started < RECONCILE_RUN_SECONDS:
        # A queried payment is no longer due (its last_queried_at moved); `seen` only guards
        # against one that could not be asked and would come back first every time.
        batch = [p for p in due[:200] if p.pk not in seen]
        if not batch:
            break
        seen.update(p.pk for p in batch)
        outcomes = paced_map(
            lambda payment: payment_query(payment=payment, client=client),
            batch,
            concurrency=settings.MPESA_RECONCILE_CONCURRENCY,
            pacer=pacer,
        )
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts
