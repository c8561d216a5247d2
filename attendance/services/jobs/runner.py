"""Background jobs: bulk work that runs on a worker while staff watch its progress.

A job is a BulkJob row with one BulkJobItem per member (or assignment, or email). The worker
claims items one at a time with a conditional update, so two workers never do the same one,
and records each outcome as it goes. What each kind of job does to one item is in
job_kinds.py; this module runs them:

- the admin request only writes the rows and queues the job (after commit), so it returns at
  once, whatever the size;
- a worker that dies mid-job leaves its job's heartbeat stale; the beat's
  `bulk_jobs_resume` queues it again, and an item it had claimed is taken again once its
  lease has passed. Doing an item twice is safe by construction: a prompt is sent with an
  idempotency key of the item (a second try returns the first payment), and an email is
  written in the same transaction as the item's outcome;
- kinds that call Daraja are paced (a few at a time, so many per second) and slow down when
  Daraja answers "spike arrest" rather than failing the members still to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import User
from django.db import close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from attendance.models import BulkJob, BulkJobItem
from attendance.mpesa import daraja_waiting
from attendance.services.core.audit import audit_record
from attendance.services.core.pacing import Pacer, in_thread, threads_allowed
from attendance.services.core.queueing import queue_after_commit
from attendance.services.jobs.kinds import KINDS, Kind, Outcome

logger = logging.getLogger(__name__)
Item = BulkJobItem.Status

# An item claimed longer ago than this belongs to a worker that died (an STK push gives up
# after MPESA_READ_TIMEOUT, far shorter).
ITEM_LEASE = timedelta(minutes=2)
# A running job whose heartbeat is older than this is resumed by the beat.
STALE_JOB = timedelta(minutes=2)
AUDIT_IDS = 100


def _fingerprint(kind: str, by: User | None, targets: list[int], params: dict[str, Any]) -> str:
    data = json.dumps(
        [kind, by.pk if by else None, sorted(targets), params], sort_keys=True, default=str
    )
    return hashlib.sha256(data.encode()).hexdigest()


def bulk_job_create(
    *,
    kind: str,
    by: User | None,
    targets: Iterable[tuple[int, str]] = (),
    params: dict[str, Any] | None = None,
    total: int | None = None,
) -> BulkJob:
    """Write a job and its items (target id, label) and queue it to run after commit.

    The same person asking for the same kind of job on the same targets within
    JOB_REPEAT_WINDOW_SECONDS (a double click, a second tap while the page loads) gets the
    first job back, `job.repeated` set: one job, never two. Presses are serialised on the
    person's own user row, so two at the same instant cannot both start one.
    """
    targets = list(targets)
    params = params or {}
    fingerprint = _fingerprint(kind, by, [target for target, _ in targets], params)
    with transaction.atomic():
        if by is not None:
            User.objects.select_for_update().filter(pk=by.pk).first()
            since = timezone.now() - timedelta(seconds=settings.JOB_REPEAT_WINDOW_SECONDS)
            earlier = BulkJob.objects.filter(fingerprint=fingerprint, created_at__gte=since).first()
            if earlier is not None:
                earlier.repeated = True
                return earlier
        job = BulkJob.objects.create(
            kind=kind, created_by=by, params=params, fingerprint=fingerprint
        )
        job.repeated = False
        items = [
            BulkJobItem(job=job, position=n, target_id=target, label=label[:200])
            for n, (target, label) in enumerate(targets)
        ]
        BulkJobItem.objects.bulk_create(items, batch_size=2000)
        job.total = total if total is not None else len(items)
        job.save(update_fields=["total"])
        if (event := KINDS[kind].audited) is not None:
            audit_record(
                event,
                actor=by,
                target=job,
                after={"rows": job.total},
                details=_audit_details(job, [item.target_id for item in items]),
            )
        _start_after_commit(job.pk)
    return job


def _audit_details(job: BulkJob, targets: list[int]) -> dict[str, Any]:
    # Which rows: the first hundred ids (an export of a year of payments has 200,000).
    ids = list(job.params.get("ids") or targets)
    return {
        "kind": job.get_kind_display(),
        **{key: value for key, value in job.params.items() if key != "ids"},
        "ids": ids[:AUDIT_IDS] + (["..."] if len(ids) > AUDIT_IDS else []),
    }


def _start_after_commit(job_id: int) -> None:
    # With a worker, it runs there; without one (the demo), in this process once the request
    # has committed: the page it lands on shows the outcome either way.
    queue_after_commit(bulk_job_run_task, job_id)


@shared_task(name="attendance.tasks.bulk_job_run_task", acks_late=True, ignore_result=True)
def bulk_job_run_task(job_id: int) -> str:
    return bulk_job_run(job_id=job_id)


def bulk_job_run(*, job_id: int) -> str:
    """Do every item still to do; safe to run twice at once or again after a crash."""
    now = timezone.now()
    started = BulkJob.objects.filter(
        pk=job_id, status__in=[BulkJob.Status.QUEUED, BulkJob.Status.RUNNING]
    ).update(status=BulkJob.Status.RUNNING, heartbeat_at=now)
    if not started:
        return "finished already"
    BulkJob.objects.filter(pk=job_id, started_at__isnull=True).update(started_at=now)
    job = BulkJob.objects.get(pk=job_id)
    kind = KINDS[job.kind]
    try:
        if kind.whole_job is not None:
            kind.whole_job(job, lambda done: _progress(job.pk, done))
        else:
            # A job started with its items (a release, Pay again) has nothing to work out.
            if kind.prepare is not None and not job.total and not job.params.get("prepared"):
                _prepare(job, kind)
            _run_items(job, kind)
    except Exception as error:
        logger.exception("Background job %s stopped", job_id)
        BulkJob.objects.filter(pk=job_id).update(
            status=BulkJob.Status.FAILED, finished_at=timezone.now(), error=str(error)[:2000]
        )
        return "failed"
    finished = _finish_if_done(job)
    return "done" if finished else "left for later"


def _prepare(job: BulkJob, kind: Kind) -> None:
    """Work out the job's items once (a rerun after a crash finds `prepared` and goes on)."""
    assert kind.prepare is not None

    def stage(text: str) -> None:
        BulkJob.objects.filter(pk=job.pk).update(stage=text[:300], heartbeat_at=timezone.now())

    targets = kind.prepare(job, stage)
    with transaction.atomic():
        start = job.items.count()
        BulkJobItem.objects.bulk_create(
            [
                BulkJobItem(job=job, position=start + n, target_id=target, label=label[:200])
                for n, (target, label) in enumerate(targets)
            ],
            batch_size=2000,
        )
        job.params = {**job.params, "prepared": True}
        job.total = start + len(targets)
        job.save(update_fields=["params", "total"])


def _run_items(job: BulkJob, kind: Kind) -> None:
    pacer = Pacer(kind.per_second) if kind.per_second else None
    if kind.concurrency <= 1 or not threads_allowed():
        _work(job, kind, pacer)
        return
    with ThreadPoolExecutor(max_workers=kind.concurrency) as pool:
        for future in [
            pool.submit(_work_in_thread, job, kind, pacer) for _ in range(kind.concurrency)
        ]:
            future.result()


def _work_in_thread(job: BulkJob, kind: Kind, pacer: Pacer | None) -> None:
    in_thread(_work, job, kind, pacer)


def _work(job: BulkJob, kind: Kind, pacer: Pacer | None) -> None:
    handle = kind.handle
    assert handle is not None  # item jobs have a handler; whole jobs never come here
    while True:
        item = _claim_item(job)
        if item is None:
            wait = _seconds_until_retry_due(job)
            if wait is None:
                return
            time.sleep(min(wait, 5.0))
            continue
        if pacer is not None:
            pacer.wait()
        try:
            if kind.transactional:
                # What the item does (an email written) commits with its outcome, or neither.
                with transaction.atomic():
                    # Still ours (not taken over after a lapsed lease)? Held until commit.
                    mine = BulkJobItem.objects.select_for_update().filter(
                        pk=item.pk, status=Item.RUNNING, claimed_at=item.claimed_at
                    )
                    if mine.exists():
                        _record(job, item, handle(job, item))
                continue
            outcome = handle(job, item)
        except Exception as error:  # a bug for this one item: record it, go on
            logger.exception("Background job %s, item %s failed", job.pk, item.pk)
            outcome = Outcome(Item.FAILED, f"Error: {type(error).__name__}: {error}")
        if outcome.slow_down and pacer is not None:
            pacer.slow_down()
        _record(job, item, outcome)
        if not connection.in_atomic_block:
            close_old_connections()  # a long job: drop a connection the database closed


def _claim_item(job: BulkJob) -> BulkJobItem | None:
    now = timezone.now()
    free = Q(status=Item.PENDING) & (Q(not_before__isnull=True) | Q(not_before__lte=now))
    abandoned = Q(status=Item.RUNNING, claimed_at__lt=now - ITEM_LEASE)
    for _ in range(5):
        candidate = (
            BulkJobItem.objects.filter(free | abandoned, job=job)
            .order_by("position")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            return None
        # The claim is one conditional UPDATE: of two workers, one gets it.
        claimed = BulkJobItem.objects.filter(free | abandoned, pk=candidate).update(
            status=Item.RUNNING, claimed_at=now
        )
        if claimed:
            return BulkJobItem.objects.get(pk=candidate)
    return None


def _seconds_until_retry_due(job: BulkJob) -> float | None:
    """Items waiting for a retry (Daraja asked us to slow down): how long until the next."""
    later = (
        BulkJobItem.objects.filter(job=job, status=Item.PENDING, not_before__isnull=False)
        .order_by("not_before")
        .values_list("not_before", flat=True)
        .first()
    )
    if later is None:
        return None
    return max((later - timezone.now()).total_seconds(), 0.05)


def _record(job: BulkJob, item: BulkJobItem, outcome: Outcome) -> None:
    """The item's outcome and the job's counters, in one transaction; only the claimer's."""
    now = timezone.now()
    with transaction.atomic():
        if outcome.retry_in is not None:
            BulkJobItem.objects.filter(
                pk=item.pk, status=Item.RUNNING, claimed_at=item.claimed_at
            ).update(
                status=Item.PENDING,
                not_before=now + timedelta(seconds=outcome.retry_in),
                attempts=F("attempts") + 1,
                outcome=outcome.text[:500],
                claimed_at=None,
            )
            BulkJob.objects.filter(pk=job.pk).update(heartbeat_at=now)
            return
        changed = BulkJobItem.objects.filter(
            pk=item.pk, status=Item.RUNNING, claimed_at=item.claimed_at
        ).update(status=outcome.status, outcome=outcome.text[:500], result_id=outcome.result_id)
        if not changed:
            return  # another worker took it over after our lease ran out; it records
        counter = _COUNTERS[outcome.status]
        BulkJob.objects.filter(pk=job.pk).update(**{counter: F(counter) + 1}, heartbeat_at=now)


_COUNTERS: dict[str, str] = {Item.DONE: "done", Item.FAILED: "failed", Item.SKIPPED: "skipped"}


def _progress(job_id: int, done: int) -> None:
    BulkJob.objects.filter(pk=job_id).update(done=done, heartbeat_at=timezone.now())


def _finish_if_done(job: BulkJob) -> bool:
    if KINDS[job.kind].whole_job is None:
        open_items = BulkJobItem.objects.filter(job=job, status__in=[Item.PENDING, Item.RUNNING])
        if open_items.exists():
            return False
    BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.RUNNING).update(
        status=BulkJob.Status.DONE, finished_at=timezone.now()
    )
    return True


def bulk_jobs_resume(*, now: datetime | None = None) -> int:
    """The beat's safety net: queue again jobs whose worker stopped (or whose task was lost).

    A running job's heartbeat is refreshed after every item; one that has not moved for
    STALE_JOB, or a job still waiting that long after it was created, is queued again.
    Returns how many were queued.
    """
    now = now or timezone.now()
    stale = BulkJob.objects.filter(
        Q(status=BulkJob.Status.RUNNING, heartbeat_at__lt=now - STALE_JOB)
        | Q(status=BulkJob.Status.QUEUED, created_at__lt=now - STALE_JOB)
    ).values_list("pk", flat=True)
    ids = list(stale[:100])
    for job_id in ids:
        BulkJob.objects.filter(pk=job_id).update(heartbeat_at=now)  # one requeue per stale spell
        _start_after_commit(job_id)
    return len(ids)


def _waiting_text(job: BulkJob) -> str:
    family = KINDS[job.kind].daraja
    if job.is_finished or family is None or not daraja_waiting(family):
        return ""
    return (
        "Waiting for M-Pesa's rate limit (shared by everything the company sends to M-Pesa); "
        "the job goes on by itself."
    )


def bulk_job_progress(*, job: BulkJob, items_since: datetime | None = None) -> dict[str, Any]:
    """What the progress page shows: the counts and the items that changed since a moment."""
    job.refresh_from_db()
    items = job.items.order_by("position")
    if items_since is not None:
        items = items.filter(updated_at__gt=items_since)
    return {
        "status": job.status,
        "status_display": job.get_status_display(),
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "skipped": job.skipped,
        "remaining": job.remaining,
        "finished": job.is_finished,
        "error": job.error,
        "stage": job.stage,
        "waiting": _waiting_text(job),
        "file": bool(job.file),
        "items": [
            {
                "id": item.pk,
                "label": item.label,
                "status": item.status,
                "status_display": item.get_status_display(),
                "outcome": item.outcome,
            }
            for item in items.only("pk", "job_id", "label", "status", "outcome")[:1000]
        ],
        "now": timezone.now().isoformat(),
    }
