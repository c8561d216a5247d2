"""Paybill/Till payments (C2B): whose money it is, and crediting it exactly once per receipt.

The rules, in order, for a payment we have not seen before (`paybill_record`):

1. Its receipt belongs to one of our STK prompts: the prompt credits it (or already did).
2. Whose is it? The account number the payer typed, read as a member's account code (case,
   spaces and a leading `#` do not matter); for v1 bodies, the SHA-256 of a member's M-Pesa
   number. Nothing else: a masked v2 number or a name is never a reason to credit anyone.
3. A prompt of that member for the same amount, around the same time, that has no receipt:
   the same money seen twice. Still open, the payment waits for it (`WAITING_STK`); settled
   by a status query (which carries no receipt), it takes this receipt and nothing is
   credited here. Two such prompts: left for Finance, never guessed.
4. Otherwise the member is credited. Nobody named: the unattributed queue, where Finance
   assigns it (audited) or marks it not ours.

Exactly once: the payment row is unique per receipt, and the ledger refuses a second credit
of one receipt whatever path it came by (`LedgerEntry.receipt`), so concurrent
confirmations, Pull rows and prompt callbacks for one receipt cannot credit twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from attendance.account_codes import account_code_normalise
from attendance.models import (
    EmailNotification,
    LedgerEntry,
    MpesaPayment,
    PaybillPayment,
    Profile,
    member_name,
)
from attendance.mpesa.paybill import PaybillTransaction, phone_digest
from attendance.phones import normalise_phone
from attendance.services.core.audit import AuditEvent, audit_record
from attendance.services.core.errors import ServiceError
from attendance.services.ledger import ledger_credit_payment, receipt_credited
from attendance.services.messaging.channels import member_message

logger = logging.getLogger(__name__)
P = PaybillPayment.Status
By = PaybillPayment.AttributedBy
OPEN_PROMPT = (MpesaPayment.Status.INITIATED, MpesaPayment.Status.PENDING)
PULL_CLOCK_DOUBT = timedelta(hours=3)  # Kenyan time is UTC+3


class PaybillError(ServiceError):
    """A Paybill payment cannot be assigned or marked as asked; the message says why."""


def paybill_member_for(bill_ref: str, msisdn_digest: str = "") -> tuple[User | None, str]:
    """The member a payment names, and how (`By.CODE` or `By.HASH`); (None, "") if nobody."""
    code = account_code_normalise(bill_ref)
    if code:
        profile = Profile.objects.select_related("user").filter(account_code=code).first()
        if profile is not None:
            return profile.user, By.CODE
    if msisdn_digest:
        user = _member_by_digest(msisdn_digest)
        if user is not None:
            return user, By.HASH
    return None, ""


def _member_by_digest(digest: str) -> User | None:
    # A SHA-256 cannot be looked up in the database; a member's number can be hashed. One
    # pass over the numbers (2,000 members: a millisecond), only for v1 bodies.
    numbers = Profile.objects.exclude(phone_number="").values_list("user_id", "phone_number")
    matches = [user_id for user_id, phone in numbers.iterator() if phone_digest(phone) == digest]
    if len(matches) != 1:
        return None
    return User.objects.get(pk=matches[0])


def paybill_record(
    txn: PaybillTransaction, *, source: str, last_look: bool = False
) -> tuple[PaybillPayment, bool]:
    """The payment with this receipt, created and settled if new; (payment, changed).

    Runs again for a payment waiting for its prompt (`WAITING_STK`); `last_look`: that
    prompt has had its time, so the payment goes to Finance instead of waiting longer.
    A second body for a known receipt fills in only what the first one lacked.
    """
    with transaction.atomic():
        payment, created = _payment_for(txn, source)
        if not created:
            filled = _fill_in(payment, txn)
            if payment.status != P.WAITING_STK:
                return payment, filled
        _settle(payment, last_look=last_look)
        payment.save()
        return payment, True


def paybill_seen(
    *,
    receipt: str,
    amount: Decimal,
    paid_at: datetime | None,
    bill_ref: str,
    source: str,
    payer_name: str = "",
    short_code: str = "",
) -> PaybillPayment:
    """A payment known from somewhere other than Daraja's own bodies (the statement, the demo):
    recorded by the same rules as a confirmation, once per receipt."""
    txn = PaybillTransaction(
        receipt=receipt,
        amount=amount,
        paid_at=paid_at,
        bill_ref=bill_ref,
        transaction_type="Pay Bill",
        short_code=short_code,
        payer_name=payer_name[:120],
    )
    return paybill_record(txn, source=source, last_look=True)[0]


def _payment_for(txn: PaybillTransaction, source: str) -> tuple[PaybillPayment, bool]:
    """The locked row for this receipt, inserted if new. The unique receipt serialises two
    bodies for a new receipt: the second INSERT waits for the first to commit, then fails,
    and the second body finds the row."""
    existing = PaybillPayment.objects.select_for_update().filter(receipt=txn.receipt).first()
    if existing is not None:
        return existing, False
    payment = PaybillPayment(
        receipt=txn.receipt,
        transaction_type=txn.transaction_type,
        paid_at=txn.paid_at,
        amount=txn.amount,
        short_code=txn.short_code,
        bill_ref=txn.bill_ref,
        msisdn=txn.msisdn,
        payer_name=txn.payer_name,
        org_balance=txn.org_balance,
        source=source,
        status=P.UNATTRIBUTED,
    )
    try:
        with transaction.atomic():
            payment.save(force_insert=True)
    except IntegrityError:
        return PaybillPayment.objects.select_for_update().get(receipt=txn.receipt), False
    return payment, True


def _fill_in(payment: PaybillPayment, txn: PaybillTransaction) -> bool:
    """Pull rows say less than confirmations: keep whatever a later body adds."""
    changed = []
    for field, value in (
        ("payer_name", txn.payer_name),
        ("short_code", txn.short_code),
        ("org_balance", txn.org_balance),
        ("transaction_type", txn.transaction_type),
    ):
        if value and not getattr(payment, field):
            setattr(payment, field, value)
            changed.append(field)
    if changed:
        payment.save(update_fields=changed)
    return bool(changed)


def _settle(payment: PaybillPayment, *, last_look: bool) -> None:
    payment.settled_at = timezone.now()
    stk = MpesaPayment.objects.select_for_update().filter(receipt_number=payment.receipt).first()
    if stk is not None:
        _as_prompt(payment, stk, "the prompt's callback reported this receipt")
        return
    if payment.user_id is None:
        user, how = paybill_member_for(payment.bill_ref, _digest(payment))
        if user is None:
            payment.status = P.UNATTRIBUTED
            payment.detail = _nobody_named(payment)
            return
        payment.user, payment.attributed_by = user, how
    twins = list(_prompt_twins(payment)[:3])
    if any(twin.status in OPEN_PROMPT for twin in twins) and not last_look:
        payment.status = P.WAITING_STK
        payment.detail = f"A prompt for KES {payment.amount} of this member is still open."
        return
    settled = [twin for twin in twins if twin.status == MpesaPayment.Status.COMPLETED]
    if len(settled) == 1:
        stk = settled[0]
        stk.receipt_number = payment.receipt
        stk.save(update_fields=["receipt_number", "updated_at"])
        if stk.ledger_entry_id:
            LedgerEntry.objects.filter(pk=stk.ledger_entry_id).update(receipt=payment.receipt)
        _as_prompt(payment, stk, "matched to a prompt settled without a receipt")
        return
    if settled or twins:
        payment.status = P.UNATTRIBUTED
        payment.detail = (
            "A prompt of this member for the same amount may be this money: check before "
            "assigning (prompts " + ", ".join(str(twin.pk) for twin in twins) + ")."
        )
        return
    _credit(payment, by=None)


def _digest(payment: PaybillPayment) -> str:
    return PaybillTransaction(
        receipt=payment.receipt, amount=payment.amount, paid_at=None, msisdn=payment.msisdn
    ).msisdn_digest


def _nobody_named(payment: PaybillPayment) -> str:
    """Why nobody was credited, with a hint for Finance where there is one (never acted on:
    a phone number typed as the account may be anyone's)."""
    typed = payment.bill_ref
    if not typed:
        return "No account number was given."
    if account_code_normalise(typed):
        return f"The account number {typed!r} belongs to no member."
    try:
        phone = normalise_phone(typed)
    except ValidationError:
        return f"The account number {typed!r} is not a member's account code."
    profile = Profile.objects.select_related("user").filter(phone_number=phone).first()
    if profile is None:
        return f"The account number {typed!r} is a phone number, not a member's account code."
    return (
        f"The account number {typed!r} is a phone number: {member_name(profile.user)}'s "
        "M-Pesa number. Assign it to them if that is right."
    )


def _twin_window(source: str) -> tuple[timedelta, timedelta]:
    """How long before and after a Paybill payment's time its prompt may have started: the
    time a prompt can be paid in, plus Safaricom's clock's slack. Pull's `trxDate` ends in Z,
    and whether that is really UTC or Kenyan time is unconfirmed: both readings are covered
    (a wider window only makes "exactly one prompt fits" rarer, never a guess)."""
    before = timedelta(seconds=settings.MPESA_PENDING_TIMEOUT_SECONDS) + timedelta(minutes=5)
    after = timedelta(minutes=2)
    if source == PaybillPayment.Source.PULL:
        return before + PULL_CLOCK_DOUBT, after + PULL_CLOCK_DOUBT
    return before, after


def _prompt_twins(payment: PaybillPayment) -> QuerySet[MpesaPayment]:
    """Prompts of the payment's member for its amount with no receipt, started in the time a
    prompt can be paid in before this payment."""
    paid_at = payment.paid_at or timezone.now()
    before, after = _twin_window(payment.source)
    return (
        MpesaPayment.objects.select_for_update()
        .filter(
            user=payment.user,
            amount=payment.amount,
            receipt_number="",
            initiated_at__range=(paid_at - before, paid_at + after),
        )
        .filter(Q(status__in=OPEN_PROMPT) | Q(status=MpesaPayment.Status.COMPLETED))
        .order_by("pk")
    )


def _as_prompt(payment: PaybillPayment, stk: MpesaPayment, why: str) -> None:
    payment.status = P.STK
    payment.stk_payment = stk
    payment.user = stk.user
    payment.detail = f"Prompt {stk.pk}: {why}; credited there, not here."


def _credit(payment: PaybillPayment, *, by: User | None) -> None:
    """Credit the payment's member, unless this receipt was credited already (then it is
    the same money reaching us another way, which the ledger's constraint also enforces)."""
    assert payment.user is not None
    entry = None
    if not receipt_credited(payment.receipt):
        entry = ledger_credit_payment(
            user=payment.user,
            amount=payment.amount,
            description=f"Paybill payment {payment.receipt}",
            receipt=payment.receipt,
            source=payment,
            created_by=by,
        )
    if entry is None:
        # A prompt's callback with this receipt credited it (maybe a moment ago).
        payment.status = P.STK
        payment.detail = "This receipt was credited already; not again."
        return
    payment.ledger_entry = entry
    payment.status = P.CREDITED
    payment.detail = ""
    _tell_member(payment)


def _tell_member(payment: PaybillPayment) -> None:
    """The same receipt a prompt's payer gets ("received KES …, M-Pesa …, balance …"); the
    message reads a payment's words, which a Paybill payment has under other names."""
    entry = payment.ledger_entry
    assert entry is not None and payment.user is not None
    words = SimpleNamespace(
        user=payment.user,
        amount=payment.amount,
        receipt_number=payment.receipt,
        transaction_date=payment.paid_at,
        completed_at=payment.settled_at,
        payment_purpose=f"Paybill, account {payment.bill_ref or '(none)'}",
    )
    member_message(
        user=payment.user,
        notification_type=EmailNotification.Type.PAYMENT_CONFIRMATION,
        context={"payment": words, "balance": entry.balance_after},
    )


def paybill_twin_of_prompt(stk: MpesaPayment) -> PaybillPayment | None:
    """For a prompt settled without a receipt (by a status query): the Paybill payment that
    already credited the same money, if exactly one fits. Caller holds a transaction."""
    near = Q()
    for source in PaybillPayment.Source.values:
        before, after = _twin_window(source)
        near |= Q(
            source=source, paid_at__range=(stk.initiated_at - after, stk.initiated_at + before)
        )
    found = list(
        PaybillPayment.objects.select_for_update()
        .filter(near, user=stk.user, amount=stk.amount, status=P.CREDITED, stk_payment__isnull=True)
        .order_by("pk")[:2]
    )
    return found[0] if len(found) == 1 else None


def paybill_assign(*, payment: PaybillPayment, member: User, by: User) -> PaybillPayment:
    """Finance credits an unattributed payment to `member`: once, and audited."""
    with transaction.atomic():
        payment = PaybillPayment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != P.UNATTRIBUTED:
            raise PaybillError(
                f"Payment {payment.receipt} is {payment.get_status_display().lower()}: only "
                "unattributed payments can be assigned."
            )
        if not Profile.objects.filter(user=member).exists():
            raise PaybillError(f"{member.get_username()} has no member profile to credit.")
        payment.user, payment.attributed_by, payment.assigned_by = member, By.STAFF, by
        _credit(payment, by=by)
        if payment.status != P.CREDITED:
            raise PaybillError(f"Receipt {payment.receipt} was credited already; not again.")
        payment.detail = f"Assigned by {by.get_username()}."
        payment.settled_at = timezone.now()
        payment.save()
        entry = payment.ledger_entry
        assert entry is not None
        audit_record(
            AuditEvent.PAYBILL_ASSIGNED,
            actor=by,
            target=payment,
            before={"balance": entry.balance_after - entry.amount},
            after={"balance": entry.balance_after},
            details={
                "member": member.get_username(),
                "receipt": payment.receipt,
                "amount": str(payment.amount),
                "account_number": payment.bill_ref,
            },
        )
    return payment


def paybill_not_ours(*, payment: PaybillPayment, by: User, reason: str) -> PaybillPayment:
    """Finance says an unattributed payment is not for us (a wrong account number)."""
    reason = reason.strip()
    if not reason:
        raise PaybillError("Say why it is not ours (for example: paid to the wrong Paybill).")
    with transaction.atomic():
        payment = PaybillPayment.objects.select_for_update().get(pk=payment.pk)
        if payment.status != P.UNATTRIBUTED:
            raise PaybillError(
                f"Payment {payment.receipt} is {payment.get_status_display().lower()}: only "
                "unattributed payments can be marked not ours."
            )
        payment.status = P.NOT_OURS
        payment.detail = f"Not ours ({by.get_username()}): {reason}"[:255]
        payment.assigned_by = by
        payment.save(update_fields=["status", "detail", "assigned_by"])
        audit_record(
            AuditEvent.PAYBILL_NOT_OURS,
            actor=by,
            target=payment,
            details={"receipt": payment.receipt, "amount": str(payment.amount), "reason": reason},
        )
    return payment


def paybill_find_member(text: str) -> User:
    """The member Finance means by an account code, an M-Pesa number or a username."""
    text = text.strip()
    code = account_code_normalise(text)
    profile = None
    if code:
        profile = Profile.objects.select_related("user").filter(account_code=code).first()
    if profile is None:
        try:
            phone = normalise_phone(text)
        except ValidationError:
            phone = ""
        if phone:
            profile = Profile.objects.select_related("user").filter(phone_number=phone).first()
    if profile is not None:
        return profile.user
    user = User.objects.filter(username__iexact=text, profile__isnull=False).first()
    if user is None:
        raise PaybillError(f"No member has the account code, M-Pesa number or username {text!r}.")
    return user
