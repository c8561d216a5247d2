"""The inbox: every body a provider posts us, stored raw and committed, then processed once.

The receiving twin of `outbox.py`, and the one pattern for every inbound body (STK callbacks,
payout results, SMS reports and replies, and the providers still to come). An adapter
(`Inbox`) says how to read its kind of body and how to apply it; this module owns the rest:

- reading the body from the request (chunked included) up to the inbox's size limit;
- storing it raw and committing it before anything else, whatever it contains: a malformed
  or oversized body is kept too (answered 400/413, never processed);
- the claim: a row lock that other workers skip, so two workers never apply one row and one
  busy row never blocks the rest;
- a savepoint around the adapter's work: whatever fails inside it (a bug, a body the rules
  cannot take) is rolled back alone, the row records the reason and counts the attempt;
- attempts from settings, backoff between them, quarantine (`QUARANTINED`, with the reason)
  once they are used up; only a person's "Process again" takes a quarantined row;
- `WAITING`: a body naming something we may not have saved yet (a callback that overtook
  our saving of the provider's answer) is looked at again on the adapter's schedule, then
  `UNMATCHED`, which means only "names nothing of ours";
- the sweeper that finds every row whose processing was lost (a broker down, a worker killed).

A body is parsed twice on purpose: once when stored, only to fill the columns processing and
staff search by (an id, a sender), and again when processed, from the stored text, because
processing may run much later, on another machine, or again after a fix to the parser.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, Any, ClassVar, NamedTuple, TypeVar

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from attendance.models.inbox import INBOX_OPEN, InboxRow, InboxStatus

from .queueing import queue_after_commit

logger = logging.getLogger(__name__)
S = InboxStatus
DETAIL_MAX = 2000
BOOKKEEPING = ["status", "detail", "attempts", "processed_at"]


class Outcome(StrEnum):
    """What applying a body did: the adapter's answer, stored as the row's status."""

    PROCESSED = S.PROCESSED
    DUPLICATE = S.DUPLICATE
    STALE = S.STALE
    NOTED = S.NOTED
    UNMATCHED = S.UNMATCHED
    # Names nothing of ours yet: WAITING while the inbox's schedule has looks left, then
    # UNMATCHED.
    NOT_YET = "not_yet"


class Unreadable(Exception):
    """Raised by an adapter's `identify`: the body is not one of this inbox's kind."""


class Received(NamedTuple):
    row_id: int
    http_status: int  # 200, or 400 (not this kind of body) / 413 (too large): kept all the same


def body_as_text(body: bytes) -> tuple[str, bytes | None]:
    """The body as storable text, plus its exact bytes when the text cannot hold them."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"), body
    if "\x00" in text:  # PostgreSQL text cannot hold NUL
        return text.replace("\x00", "\ufffd"), body
    return text, None


def clip(text: str, limit: int = DETAIL_MAX) -> str:
    """Text for a detail column: no NUL (PostgreSQL refuses it), at most `limit` characters."""
    return text.replace("\x00", "\ufffd")[:limit]


def read_body(request: Any, limit: int) -> bytes:
    """Up to `limit` bytes of a request's body, including a chunked one.

    Without a Content-Length (Transfer-Encoding: chunked), Django reads an empty body; the
    WSGI server (gunicorn) decodes the chunks, so read its input stream directly. Callers ask
    for one byte more than they store, to tell a body at the limit from one over it.
    """
    try:
        if (
            not request.META.get("CONTENT_LENGTH")
            and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            stream: IO[bytes] = request.META["wsgi.input"]
            chunks, size = [], 0
            while size < limit:
                chunk = stream.read(min(65536, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        return request.read(limit)
    except OSError:
        return b""


class Inbox:
    """One kind of inbound body. Subclasses name their model and settings and implement
    `identify` (at receipt) and `apply` (at processing); everything else is shared."""

    model: ClassVar[type[InboxRow]]
    label: ClassVar[str]  # for logs and staff: "M-Pesa callback"
    max_bytes_setting: ClassVar[str]
    max_attempts_setting: ClassVar[str]
    # The task that processes one row (queued after commit, and again after a failure with
    # backoff); None for an inbox whose rows are taken by a batch task and the sweeper.
    task: ClassVar[Task | None] = None
    # The row's links that `apply` may set (the payment, the payout, the message ...): saved
    # with the outcome. Only these and the bookkeeping are written, never the body again.
    links: ClassVar[tuple[str, ...]] = ()
    # A RECEIVED row is the sweeper's after this long (its task had its chance first).
    sweep_grace: ClassVar[timedelta] = timedelta(seconds=5)
    # After the Nth look found nothing (NOT_YET), wait this long before the next one; a
    # look with no entry here is the last, and the row becomes UNMATCHED.
    look_again_after: ClassVar[Mapping[int, timedelta]] = {}

    # --- What an adapter provides ---------------------------------------------------------

    def identify(self, row: Any, body: bytes) -> None:
        """Fill the row's searchable columns from the body; raise Unreadable if it is not
        this inbox's kind of body (it is then kept as MALFORMED and never processed)."""

    def apply(self, row: Any) -> Outcome:
        """Apply the stored body (inside a savepoint, the row locked). May set row.detail
        and the row's links; raising counts a failed attempt."""
        raise NotImplementedError

    def after(self, row: Any) -> None:
        """Hook run after a look, in the row's transaction (an alert, a log line)."""

    # --- Shared ---------------------------------------------------------------------------

    @property
    def max_bytes(self) -> int:
        return getattr(settings, self.max_bytes_setting)

    @property
    def max_attempts(self) -> int:
        return getattr(settings, self.max_attempts_setting)

    def retry_after(self, attempts: int) -> timedelta:
        """The wait after a failed attempt: 2, 4, 8 … seconds, at most ten minutes."""
        return timedelta(seconds=min(2**attempts, 600))

    def store(self, row: Any) -> int:
        """Commit the row (one INSERT). Adapters may store faster; never inside a request's
        transaction (ATOMIC_REQUESTS is off), so it is committed when this returns."""
        row.save()
        return row.pk

    def queue(self, row_id: int) -> None:
        if self.task is not None:
            queue_after_commit(self.task, row_id)

    def receive(self, *, body: bytes, remote_addr: str | None, **fields: Any) -> Received:
        """Store a body raw and commit it, then queue its processing. Only a database
        failure raises: any body at all is kept."""
        limit = self.max_bytes
        raw, exact = body_as_text(body[:limit])
        row = self.model(raw_body=raw, raw_bytes=exact, remote_addr=remote_addr, **fields)
        http_status = 200
        if len(body) > limit:
            row.status, http_status = S.MALFORMED, 413
            row.detail = f"Body larger than {limit} bytes (truncated)."
        else:
            try:
                self.identify(row, body)
            except Unreadable as error:
                row.status, http_status = S.MALFORMED, 400
                row.detail = clip(str(error))
            except Exception as error:  # the parser's promise broken: still keep the body
                logger.exception("The %s parser failed on a body", self.label)
                row.status, http_status = S.MALFORMED, 400
                row.detail = f"Unreadable: {type(error).__name__}"
        row_id = self.store(row)
        if row.status == S.RECEIVED:
            self.queue(row_id)
        elif row.status == S.MALFORMED:
            logger.warning("%s %s kept unprocessed: %s", self.label, row_id, row.detail)
        return Received(row_id, http_status)

    def process(self, row_id: int, *, manual: bool = False) -> str:
        """Apply one stored row; safe to run any number of times, anywhere. Returns the row's
        status afterwards ("skipped" when another worker holds it or it is done).

        The row's outcome commits in the same transaction as what applying it changed: a row
        is never half processed. `manual` (a person's "Process again") also takes rows that
        are quarantined or unmatched, with a fresh count of attempts.
        """
        statuses = [*INBOX_OPEN, *((S.QUARANTINED, S.UNMATCHED) if manual else ())]
        with transaction.atomic():
            row = (
                self.model.objects.select_for_update(skip_locked=True)
                .filter(pk=row_id, status__in=statuses)
                .first()
            )
            if row is None:  # done already, or another worker holds it right now
                status = self.model.objects.filter(pk=row_id).values_list("status", flat=True)
                done = status.first()
                return "skipped" if done is None or done in INBOX_OPEN else done
            row.attempts = 1 if manual else row.attempts + 1
            row.processed_at = timezone.now()
            try:
                with transaction.atomic():
                    outcome = self.apply(row)
                    row.status = self._status_for(outcome, row.attempts)
                    row.detail = clip(row.detail)
                    row.save(update_fields=[*BOOKKEEPING, *self.links])
            except Exception as error:
                logger.exception("%s %s could not be processed", self.label, row_id)
                # The savepoint undid the adapter's writes, not its changes to the row in
                # memory (a link to a row that no longer exists): start from the stored row.
                attempts, row = row.attempts, self.model.objects.get(pk=row_id)
                row.attempts, row.processed_at = attempts, timezone.now()
                row.status = S.QUARANTINED if attempts >= self.max_attempts else S.ERROR
                row.detail = clip(f"{type(error).__name__}: {error}")
                row.save(update_fields=BOOKKEEPING)
            self.after(row)
            if row.status in (S.ERROR, S.WAITING) and self.task is not None:
                wait = self._wait(row)
                queue_after_commit(self.task, row.pk, countdown=wait.total_seconds())
        return row.status

    def process_guarded(self, row_id: int) -> str:
        """`process` for loops: a failure outside the savepoint (the database went away) is
        logged and the loop goes on; the row is still stored and the sweeper comes back."""
        try:
            return self.process(row_id)
        except Exception:
            logger.exception("%s %s: processing failed outside its savepoint", self.label, row_id)
            return "failed"

    def reprocess(self, row: InboxRow) -> str:
        """A person asks for a row to be tried again from scratch (after a fix, usually)."""
        return self.process(row.pk, manual=True)

    def set_aside(self, row: InboxRow, *, reason: str) -> bool:
        """A person decides a stored row is not to be processed; it stays, with the reason."""
        return bool(
            self.model.objects.filter(pk=row.pk, status__in=[*INBOX_OPEN, S.QUARANTINED]).update(
                status=S.SET_ASIDE, detail=clip(f"Set aside: {reason}")
            )
        )

    def due(self, now: datetime) -> QuerySet[Any]:
        """Rows the sweeper should take at `now`: never processed past the grace, and failed
        or waiting rows whose wait is over. Served by each model's partial index on the open
        statuses, so it costs what is open, not the history."""
        due = Q(status=S.RECEIVED, received_at__lt=now - self.sweep_grace)
        for attempts in range(1, self.max_attempts):
            due |= Q(
                status=S.ERROR,
                attempts=attempts,
                processed_at__lt=now - self.retry_after(attempts),
            )
        for attempts, wait in self.look_again_after.items():
            due |= Q(status=S.WAITING, attempts=attempts, processed_at__lt=now - wait)
        return self.model.objects.filter(due)

    def sweep(self, *, now: datetime | None = None, seconds: float = 40) -> int:
        """The beat's sweeper: process what was left behind, oldest first, until nothing is
        due or `seconds` have passed (the beat runs it every minute). Returns rows looked at."""
        now = now or timezone.now()
        started, count, after = time.monotonic(), 0, 0
        rows = self.due(now)
        while time.monotonic() - started < seconds:
            batch = list(
                rows.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:200]
            )
            if not batch:
                break
            for row_id in batch:
                self.process_guarded(row_id)
                count += 1
            after = batch[-1]
        return count

    # --- Inside ----------------------------------------------------------------------------

    def _status_for(self, outcome: Outcome, attempts: int) -> str:
        if outcome is Outcome.NOT_YET:
            return S.WAITING if attempts in self.look_again_after else S.UNMATCHED
        return S(outcome.value)

    def _wait(self, row: InboxRow) -> timedelta:
        if row.status == S.WAITING:
            return self.look_again_after[row.attempts]
        return self.retry_after(row.attempts)


INBOXES: dict[type[Model], Inbox] = {}
AnInbox = TypeVar("AnInbox", bound=Inbox)


def register(inbox: AnInbox) -> AnInbox:
    """The one instance of an inbox, found by its model (admin, alerts)."""
    INBOXES[inbox.model] = inbox
    return inbox


def inbox_for(model: type[Model]) -> Inbox:
    return INBOXES[model]
