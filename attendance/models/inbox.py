"""What every inbox row has: the body a provider posted, raw, and what processing made of it.

One vocabulary for every inbox (STK callbacks, payout results, SMS reports and replies, and the
providers still to come), so that an operator's filter means the same thing everywhere.
The machine that fills these rows is `services/core/inbox.py`.
"""

from __future__ import annotations

from django.db import models


class InboxStatus(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    PROCESSED = "processed", "Processed"
    DUPLICATE = "duplicate", "Duplicate (already applied)"
    STALE = "stale", "Older than what we know (ignored)"
    NOTED = "noted", "Noted (nothing to apply)"
    # Names nothing of ours *yet* (what it names may not be saved yet): looked at again.
    WAITING = "waiting", "Names nothing of ours yet: looked at again shortly"
    # Names nothing of ours, after every look: kept for staff. Never a failure.
    UNMATCHED = "unmatched", "Names nothing of ours (kept for staff)"
    MALFORMED = "malformed", "Malformed body (kept, never processed)"
    ERROR = "error", "Processing failed (will be retried)"
    # Processing failed the inbox's maximum number of times: left for a person.
    QUARANTINED = "quarantined", "Quarantined: failed repeatedly, a person must look"
    SET_ASIDE = "set_aside", "Set aside by a person"


# What the machine picks up by itself; the rest is history (or a person's to decide).
INBOX_OPEN = (InboxStatus.RECEIVED, InboxStatus.ERROR, InboxStatus.WAITING)


class InboxRow(models.Model):
    """A body that reached us with the right token or signature, stored raw and committed
    before it is acted on, so nothing a provider sends is lost when processing fails."""

    Status = InboxStatus

    # As text for reading and processing. A body that is not exactly representable as text
    # (NUL bytes, invalid UTF-8) also keeps its exact bytes in raw_bytes.
    raw_body = models.TextField()
    raw_bytes = models.BinaryField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=12, choices=InboxStatus.choices, default=InboxStatus.RECEIVED
    )
    detail = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager()  # named here so that code typed against InboxRow can use it

    class Meta:
        abstract = True
        ordering = ["-received_at", "-id"]

    @property
    def body_bytes(self) -> bytes:
        """The body exactly as it arrived (truncated only if it was oversized)."""
        if self.raw_bytes is not None:
            return bytes(self.raw_bytes)
        return self.raw_body.encode()
