"""Pull Transactions: the last hours' Paybill payments as M-Pesa knows them, fed through the
same inbox as confirmations, so a lost confirmation is credited and a duplicate is not.

Pull keeps 48 hours; the beat asks for the last MPESA_PULL_HOURS every quarter hour, so each
payment is seen several times (known receipts are skipped before storing) and a window
rarely needs a second page. Registering (once per shortcode) and the URLs: `registration.py`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from attendance.mpesa import paybill_client
from attendance.mpesa.paybill import PULL_PAGE, PaybillClient, pull_rows

from .paybill_inbox import paybill_pull_store

logger = logging.getLogger(__name__)
MAX_PAGES = 50  # 5,000 payments in a window: far past any day of ours; stops a runaway loop


def paybill_pull(*, now: datetime | None = None, client: PaybillClient | None = None) -> dict:
    """Ask Pull Transactions for the recent window and store what is new. Returns counts.
    Safe to run any number of times: receipts decide what is new."""
    if not (settings.MPESA_PULL_ENABLED and settings.MPESA_C2B_SHORT_CODE):
        return {"skipped": "Pull Transactions is off (MPESA_PULL_ENABLED)"}
    client = client or paybill_client()
    now = now or timezone.now()
    start = now - timedelta(hours=settings.MPESA_PULL_HOURS)
    # A minute past now: Safaricom's clock may run ahead of ours, and times have no fractions.
    end = now + timedelta(minutes=1)
    seen = stored = 0
    receipts: set[str] = set()
    for page in range(MAX_PAGES):
        data = client.pull_query(
            short_code=settings.MPESA_C2B_SHORT_CODE,
            start=start,
            end=end,
            offset=page * PULL_PAGE,
        )
        rows = pull_rows(data)
        # Whether OffSetValue counts rows or pages is unconfirmed: a page that brings
        # nothing new ends the walk either way.
        new = [row for row in rows if str(row.get("transactionId")) not in receipts]
        receipts.update(str(row.get("transactionId")) for row in rows)
        seen += len(new)
        stored += len(paybill_pull_store(new))
        if len(rows) < PULL_PAGE or not new:
            break
    if stored:
        logger.info("Pull Transactions: %s payments seen, %s new", seen, stored)
    return {"seen": seen, "stored": stored}
