"""What each kind of background job does to one item (jobs.py runs them).

Every handler calls the same service a single click would, and says how it went in words
staff read on the progress page. Doing an item a second time (after a worker died) is safe:
prompts carry an idempotency key of their item, emails are written in the same transaction
as the item's outcome (`transactional`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from attendance.models import (
    Attendance,
    BulkJob,
    BulkJobItem,
    EmailNotification,
    EventCrew,
    MpesaPayment,
    Payout,
    PayRun,
    Profile,
    member_name,
)
from attendance.mpesa import rate
from attendance.phones import mask_phone
from attendance.services.core.audit import AuditEvent
from attendance.services.crew.assignments import CrewError, crew_confirm, crew_invite
from attendance.services.crew.followup import crew_brief_one, crew_remind
from attendance.services.jobs.exports import (
    ATTENDANCE_CSV_HEADER,
    PAYMENT_CSV_HEADER,
    attendance_row,
    export_to_job_file,
    payment_row,
    payroll_xlsx,
    rows_for_ids,
    write_job_file,
)
from attendance.services.messaging.email import notification_requeue
from attendance.services.messaging.sms import sms_requeue
from attendance.services.pay.runs import pay_run_approve_member
from attendance.services.pay.timesheets import PayError
from attendance.services.payments import PaymentError, payment_query, payment_request_stk_push
from attendance.services.payments.amounts import prompt_amount_for
from attendance.services.payouts import (
    PayoutError,
    payout_failure_text,
    payout_submit,
    payouts_prepare,
)
from attendance.wording import kes

Status = BulkJobItem.Status
# Daraja asked us to slow down: try the member again after this, doubling, this many times.
RETRY_FIRST_SECONDS = 5
RETRY_MAX_ATTEMPTS = 6


@dataclass(frozen=True)
class Outcome:
    status: str
    text: str
    result_id: int | None = None
    retry_in: float | None = None  # not done yet: back in the queue after this many seconds
    slow_down: bool = False  # Daraja's spike arrest: the job's pace halves


@dataclass(frozen=True)
class Kind:
    handle: Callable[[BulkJob, BulkJobItem], Outcome] | None = None
    whole_job: Callable[[BulkJob, Callable[[int], None]], None] | None = None
    # Works out the items when the job starts (slow work that must not hold the web request),
    # telling the page what it does through the callback; returns (target id, label) pairs.
    prepare: Callable[[BulkJob, Callable[[str], None]], list[tuple[int, str]]] | None = None
    concurrency: int = 1
    per_second: float | None = None
    # The Daraja API family each item calls (attendance/mpesa/rate.py): the progress page says
    # when the job waits for the deployment's shared rate.
    daraja: str | None = None
    transactional: bool = False
    # Starting a job of this kind is a staff action for the audit trail (one row per job).
    audited: AuditEvent | None = None


def prompt_one(job: BulkJob, item: BulkJobItem) -> Outcome:
    profile = Profile.objects.select_related("user").get(pk=item.target_id)
    amount = job.params.get("amount") or prompt_amount_for(profile.balance)
    if amount is None:
        return Outcome(Status.SKIPPED, "Nothing owed.")
    try:
        payment, _ = payment_request_stk_push(
            payer=profile.user,
            amount=amount,
            purpose=job.params.get("purpose") or "Balance payment",
            requested_by=job.created_by,
            # One key per item and try: a second run of this item (its worker died) gets
            # the first payment back instead of a second prompt.
            idempotency_key=f"bulk-{job.pk}-{item.pk}-{item.attempts}",
            audit=False,  # the job's start is the audited action
        )
    except PaymentError as error:
        if error.retry_later and item.attempts + 1 < RETRY_MAX_ATTEMPTS:
            return Outcome(
                Status.PENDING,
                f"M-Pesa asked us to slow down ({error.message}); trying again shortly.",
                retry_in=RETRY_FIRST_SECONDS * 2**item.attempts,
                slow_down=True,
            )
        return Outcome(Status.FAILED, error.message, error.payment.pk if error.payment else None)
    return Outcome(
        Status.DONE,
        f"Prompt for {kes(payment.amount, whole=True)} sent to {mask_phone(payment.phone_number)}.",
        payment.pk,
    )


_QUERY_WORDS = {
    "processed": "Settled by M-Pesa's answer.",
    "duplicate": "Already settled.",
    "pending": "Still waiting for the customer.",
    "error": "M-Pesa could not answer; try again later.",
    "skipped": "Not waiting for an answer (already final, or never sent).",
}


def check_one(job: BulkJob, item: BulkJobItem) -> Outcome:
    payment = MpesaPayment.objects.get(pk=item.target_id)
    outcome = payment_query(payment=payment)
    status = Status.FAILED if outcome == "error" else Status.DONE
    if outcome == "skipped":
        status = Status.SKIPPED
    return Outcome(status, _QUERY_WORDS.get(outcome, outcome), payment.pk)


def _crew_step(step: Callable[..., object], done: str) -> Callable[[BulkJob, BulkJobItem], Outcome]:
    def handle(job: BulkJob, item: BulkJobItem) -> Outcome:
        assignment = EventCrew.objects.select_related("event", "user", "role").get(
            pk=item.target_id
        )
        try:
            result = step(assignment=assignment)
        except CrewError as error:
            return Outcome(Status.FAILED, str(error))
        if result is False:
            return Outcome(Status.SKIPPED, "Not confirmed, or reminded already.")
        result_id = result.pk if isinstance(result, EmailNotification) else None
        return Outcome(Status.DONE, done, result_id)

    return handle


def resend_one(job: BulkJob, item: BulkJobItem) -> Outcome:
    if notification_requeue(notification_ids=[item.target_id]):
        return Outcome(Status.DONE, "Queued for delivery again.", item.target_id)
    return Outcome(Status.SKIPPED, "Not failed (sent or on its way already): left alone.")


def resend_sms_one(job: BulkJob, item: BulkJobItem) -> Outcome:
    if sms_requeue(sms_ids=[item.target_id]):
        return Outcome(Status.DONE, "Queued for sending again.", item.target_id)
    return Outcome(Status.SKIPPED, "Not failed, or the member's number refuses texts: left alone.")


def approve_pay_member(job: BulkJob, item: BulkJobItem) -> Outcome:
    run = PayRun.objects.get(pk=job.params["pay_run"])
    try:
        member = pay_run_approve_member(pay_run=run, user_id=item.target_id, by=job.created_by)
    except PayError as error:
        return Outcome(Status.FAILED, str(error))
    return Outcome(
        Status.DONE,
        f"{kes(member.earned)} earned, {kes(member.to_pay)} to pay; payslip sent.",
        member.pk,
    )


_PAYOUT_WORDS = {
    "submitted": "Sent to M-Pesa; waiting for its result.",
    "completed": "Paid.",
    "unknown": "Sent, but M-Pesa's answer did not say how it ended: asking M-Pesa (it cannot pay "
    "twice).",
    "failed": "Not paid",
}


def prepare_payouts(job: BulkJob, stage: Callable[[str], None]) -> list[tuple[int, str]]:
    """The float check and the run's payouts, in the job: a PayoutError (balance short, M-Pesa
    silent) stops the job with its words on the page."""
    run = PayRun.objects.get(pk=job.params["pay_run"])
    stage("Asking M-Pesa for the utility account's balance (Account Balance)…")
    if job.created_by is None:
        raise PayoutError("The person who started this job no longer exists.")
    payouts = payouts_prepare(
        pay_run=run, by=job.created_by, partial=bool(job.params.get("partial"))
    )
    held = [p for p in payouts if p.status == Payout.Status.HELD]
    queued = [p for p in payouts if p.status == Payout.Status.QUEUED]
    said = f"{len(queued)} payout(s), KES {sum(p.amount for p in queued):,}, going to M-Pesa."
    if held:
        said += f" {len(held)} held for a second approval (new numbers): see the pay run."
    stage(said)
    return [(p.pk, member_name(p.user)) for p in queued]


def submit_payout(job: BulkJob, item: BulkJobItem) -> Outcome:
    status = payout_submit(payout_id=item.target_id)
    payout = Payout.objects.get(pk=item.target_id)
    if status == Payout.Status.QUEUED:
        # Nothing reached Daraja, or it asked us to slow down: the same id goes again.
        if item.attempts + 1 < RETRY_MAX_ATTEMPTS:
            return Outcome(
                Status.PENDING,
                f"Not sent yet ({payout.result_description}); trying again shortly.",
                retry_in=RETRY_FIRST_SECONDS * 2**item.attempts,
                slow_down=True,
            )
        return Outcome(Status.FAILED, f"Not sent: {payout.result_description}", payout.pk)
    words = _PAYOUT_WORDS.get(status, status)
    if status == Payout.Status.FAILED:
        return Outcome(Status.FAILED, f"{words}: {payout_failure_text(payout)}", payout.pk)
    return Outcome(
        Status.DONE,
        f"{kes(payout.amount, whole=True)} to {mask_phone(payout.phone_number)}: {words}",
        payout.pk,
    )


def export_payments(job: BulkJob, progress: Callable[[int], None]) -> None:
    rows = rows_for_ids(
        MpesaPayment.objects.select_related("user"),
        job.params["ids"],
        payment_row,
        PAYMENT_CSV_HEADER,
    )
    export_to_job_file(job, rows, f"mpesa-payments-{job.pk}.csv", progress)


def export_attendance(job: BulkJob, progress: Callable[[int], None]) -> None:
    rows = rows_for_ids(
        Attendance.objects.select_related("event", "user"),
        job.params["ids"],
        attendance_row,
        ATTENDANCE_CSV_HEADER,
    )
    export_to_job_file(job, rows, f"attendance-{job.pk}.csv", progress)


def export_payroll(job: BulkJob, progress: Callable[[int], None]) -> None:
    run = PayRun.objects.get(pk=job.params["pay_run"])
    name = f"payroll-{run.period_start:%Y%m%d}-{run.period_end:%Y%m%d}-{run.pk}.xlsx"
    write_job_file(job, name, lambda target: payroll_xlsx(run, target))


K = BulkJob.Kind
KINDS: dict[str, Kind] = {
    # A few pushes at a time, paced under Daraja's rate limits (a push takes hundreds of ms).
    K.PROMPT_PAYMENTS: Kind(
        handle=prompt_one,
        concurrency=settings.MPESA_BULK_CONCURRENCY,
        per_second=settings.MPESA_BULK_PER_SECOND,
        daraja=rate.STK_PUSH,
        audited=AuditEvent.PROMPTS_REQUESTED,
    ),
    K.CHECK_PAYMENTS: Kind(
        handle=check_one,
        concurrency=settings.MPESA_BULK_CONCURRENCY,
        per_second=settings.MPESA_BULK_PER_SECOND,
        daraja=rate.STK_QUERY,
    ),
    K.SEND_INVITATIONS: Kind(
        handle=_crew_step(crew_invite, "Invitation sent."), transactional=True
    ),
    K.SEND_REMINDERS: Kind(handle=_crew_step(crew_remind, "Reminder sent."), transactional=True),
    K.CONFIRM_CREW: Kind(handle=_crew_step(crew_confirm, "Marked confirmed."), transactional=True),
    K.SEND_BRIEFING: Kind(handle=_crew_step(crew_brief_one, "Briefing sent."), transactional=True),
    K.RESEND_EMAILS: Kind(handle=resend_one, transactional=True),
    K.RESEND_SMS: Kind(handle=resend_sms_one, transactional=True),
    K.EXPORT_PAYMENTS: Kind(whole_job=export_payments, audited=AuditEvent.PERSONAL_DATA_EXPORTED),
    K.EXPORT_ATTENDANCE: Kind(
        whole_job=export_attendance, audited=AuditEvent.PERSONAL_DATA_EXPORTED
    ),
    K.EXPORT_PAYROLL: Kind(whole_job=export_payroll, audited=AuditEvent.PERSONAL_DATA_EXPORTED),
    # One member's earnings and payslip per item, in the item's transaction; the run's
    # approval is audited when its last member is posted.
    K.APPROVE_PAY_RUN: Kind(handle=approve_pay_member, transactional=True),
    # Paced like prompts: each is one B2C POST. Not transactional: the POST must follow the
    # committed claim, and its outcome is saved whatever happens to the item.
    K.SUBMIT_PAYOUTS: Kind(
        handle=submit_payout,
        prepare=prepare_payouts,
        concurrency=settings.MPESA_BULK_CONCURRENCY,
        per_second=settings.MPESA_BULK_PER_SECOND,
        daraja=rate.B2C,
    ),
}
