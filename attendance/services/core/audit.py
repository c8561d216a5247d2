"""The audit trail: who moved money or access, when, from where, and what changed.

One append-only table, django-auditlog's: it records changes to users' access (staff and
superuser flags, groups, permissions) and to groups' permissions by itself (registered in
settings, AUDITLOG_INCLUDE_TRACKING_MODELS), and the services below add one row per staff action
on money or personal data through `audit_record`. The requester and their address come from
the request (auditlog's middleware); a row written outside a request (a command) has no actor.

Rows are never changed: admin shows them read-only, and on PostgreSQL a trigger refuses UPDATE
and DELETE (migration 0015), except a deleted user's rows losing their actor link.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from django.db import models


class AuditEvent(models.TextChoices):
    PROMPT_REQUESTED = "payment_prompt_requested", "M-Pesa prompt sent for a member"
    PROMPTS_REQUESTED = "payment_prompts_requested", "M-Pesa prompts sent in bulk"
    PAYMENT_CREDITED = "payment_credited_after_review", "Payment credited after review"
    LEDGER_ENTRY_ADDED = "ledger_entry_added", "Ledger entry added by hand"
    PAY_RUN_APPROVED = "pay_run_approved", "Pay run approved"
    PAYOUT_SUBMITTED = "payout_submitted", "Payout submitted"
    PHONE_CHANGED = "phone_changed", "M-Pesa number changed"
    PAYOUT_CLOSED = "payout_closed", "Payout with an unknown outcome closed by hand"
    ACCESS_CHANGED = "access_changed", "Account access changed"
    TWO_FACTOR_ENROLLED = "two_factor_enrolled", "Two-factor login set up"
    TWO_FACTOR_RESET = "two_factor_reset", "Two-factor login reset"
    BACKUP_CODES_RENEWED = "backup_codes_renewed", "Backup codes renewed"
    PERSONAL_DATA_EXPORTED = "personal_data_exported", "Personal data exported"
    # The offer itself goes (the member may offer again): who said no stays here.
    OFFER_DECLINED = "crew_offer_declined", "Offer to work declined"
    PAYBILL_ASSIGNED = "paybill_assigned", "Paybill payment assigned to a member"
    PAYBILL_NOT_OURS = "paybill_not_ours", "Paybill payment marked not ours"
    REVERSAL_REQUESTED = "reversal_requested", "Paybill payment reversal requested"


Action = LogEntry.Action
# What each event did to its target, in auditlog's terms (its admin words them).
_ACTIONS = {
    AuditEvent.PROMPT_REQUESTED: Action.CREATE,
    AuditEvent.PROMPTS_REQUESTED: Action.CREATE,
    AuditEvent.LEDGER_ENTRY_ADDED: Action.CREATE,
    AuditEvent.PERSONAL_DATA_EXPORTED: Action.ACCESS,
}


def audit_record(
    event: AuditEvent,
    *,
    actor: Any,
    target: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> LogEntry:
    """Append one audit row: `event` by `actor` on `target`, with what changed.

    Call it inside the transaction that does the action, so that the row exists exactly when
    the action does.
    """
    before, after = before or {}, after or {}
    changes = {key: [_text(before.get(key)), _text(after.get(key))] for key in {**before, **after}}
    return LogEntry.objects.log_create(
        target,
        force_log=True,
        action=_ACTIONS.get(event, Action.UPDATE),
        changes=changes,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_email=getattr(actor, "email", None) or None,
        additional_data={"event": str(event), **(details or {})},
    )


def audit_mark_access_change(sender: Any, instance: LogEntry, **kwargs: Any) -> None:
    """pre_save of auditlog's own rows (users and groups): name their event."""
    if instance._state.adding and not (instance.additional_data or {}).get("event"):
        instance.additional_data = {
            **(instance.additional_data or {}),
            "event": str(AuditEvent.ACCESS_CHANGED),
        }


def _text(value: Any) -> str:
    return "None" if value is None else str(value)
