"""Reconciliation: settle what no callback reported, by asking Daraja, never by guessing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from attendance.models import MpesaPayment
from attendance.mpesa import daraja_client
from attendance.mpesa.callbacks import StkResult
from attendance.mpesa.client import DarajaClient, DarajaError

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
