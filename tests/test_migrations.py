"""Every model change ships with its migration."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:  # --check exits 1 when a migration would be written
        pytest.fail(f"makemigrations found changes without a migration:\n{out.getvalue()}")


@pytest.mark.django_db(transaction=True)
def test_payments_that_ended_before_m_pesa_could_say_keep_their_meaning_under_the_new_codes():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("attendance", "0009_callback_quarantine_and_prompt_limits")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    User = old.get_model("auth", "User")
    Payment = old.get_model("attendance", "MpesaPayment")
    user = User.objects.create(username="payer")
    rows = {
        # (status, settled_via, old code) -> the code it must become
        ("failed", "push", "timeout"): "push_unanswered",
        ("failed", "push", "connection_lost"): "push_unanswered",
        ("failed", "push", "unreachable"): "push_not_sent",
        ("failed", "push", "500.003.1001"): "push_refused",
        ("failed", "timeout", "timeout"): "expired",
        ("failed", "callback", "1037"): "1037",
        ("cancelled", "callback", "1032"): "1032",
    }
    ids = {}
    for n, (status, via, code) in enumerate(rows):
        ids[(status, via, code)] = Payment.objects.create(
            user=user,
            phone_number=f"25471100{n:04d}",
            amount=100,
            payment_purpose="x",
            account_reference="x",
            transaction_desc="x",
            status=status,
            settled_via=via,
            result_code=code,
        ).pk

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from attendance.models import MpesaPayment

    now = dict(MpesaPayment.objects.values_list("pk", "result_code"))
    assert {key: now[pk] for key, pk in ids.items()} == rows


@pytest.mark.django_db(transaction=True)
def test_sms_rows_that_were_failing_are_quarantined_not_unmatched_after_the_one_inbox():
    """Before the one inbox, an SMS callback whose processing failed five times was labelled
    "unmatched" (an operator filtering for unmatched saw failures); STK callbacks still due
    another look were "unmatched" too. The migration gives each its true status."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("attendance", "0025_seams_and_screens")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    SmsCallback = old.get_model("attendance", "SmsCallback")
    MpesaCallback = old.get_model("attendance", "MpesaCallback")
    rows = {
        "failing": SmsCallback.objects.create(
            kind="report", raw_body="x", status="unmatched", attempts=5, detail="KeyError: 'id'"
        ),
        "no such message": SmsCallback.objects.create(
            kind="report",
            raw_body="x",
            status="unmatched",
            attempts=5,
            detail="Names no message of ours: kept.",
        ),
        "stranger": SmsCallback.objects.create(
            kind="incoming",
            raw_body="x",
            status="unmatched",
            attempts=1,
            detail="From a number that is no member's: kept for staff.",
        ),
    }
    stk = {
        "first look": MpesaCallback.objects.create(raw_body="x", status="unmatched", attempts=1),
        "every look": MpesaCallback.objects.create(raw_body="x", status="unmatched", attempts=3),
    }

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from attendance.models import MpesaCallback as Callback
    from attendance.models import SmsCallback as Sms

    assert {k: Sms.objects.get(pk=r.pk).status for k, r in rows.items()} == {
        "failing": "quarantined",
        "no such message": "unmatched",
        "stranger": "unmatched",
    }
    assert {k: Callback.objects.get(pk=r.pk).status for k, r in stk.items()} == {
        "first look": "waiting",
        "every look": "unmatched",
    }


@pytest.mark.django_db(transaction=True)
def test_prompt_credits_carry_their_receipt_so_the_same_money_is_never_credited_again():
    """Before Paybill payments, a prompt's ledger credit had no receipt of its own; the
    migration gives each its prompt's, which the ledger then refuses to credit twice."""
    from django.db import IntegrityError, connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("attendance", "0027_account_codes")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    User = old.get_model("auth", "User")
    Payment = old.get_model("attendance", "MpesaPayment")
    Entry = old.get_model("attendance", "LedgerEntry")
    user = User.objects.create(username="payer")
    entry = Entry.objects.create(
        user=user, kind="payment", amount=-100, balance_after=-100, description="M-Pesa"
    )
    Payment.objects.create(
        user=user,
        phone_number="254711000001",
        amount=100,
        payment_purpose="x",
        account_reference="x",
        transaction_desc="x",
        status="completed",
        receipt_number="SKM0000001",
        ledger_entry=entry,
    )
    unpaid = Entry.objects.create(
        user=user, kind="charge", amount=100, balance_after=0, description="A charge"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from attendance.models import LedgerEntry

    assert LedgerEntry.objects.get(pk=entry.pk).receipt == "SKM0000001"
    assert LedgerEntry.objects.get(pk=unpaid.pk).receipt == ""
    with pytest.raises(IntegrityError):
        LedgerEntry.objects.create(
            user_id=user.pk,
            kind="payment",
            amount=-100,
            balance_after=-200,
            description="the same money again",
            receipt="SKM0000001",
        )


@pytest.mark.django_db(transaction=True)
def test_an_existing_finance_role_gets_the_paybill_permissions_once():
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("attendance", "0029_statement_and_reversals")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old.get_model("auth", "Group").objects.filter(name="Finance").delete()
    old.get_model("auth", "Group").objects.create(name="Finance")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    granted = set(Group.objects.get(name="Finance").permissions.values_list("codename", flat=True))
    assert {"assign_paybillpayment", "request_reversal", "reconcile_statementimport"} <= granted
    # ... and, by 0037, the statutory rate table and profiles.
    assert {"change_statutoryrates", "add_payeband", "change_statutoryprofile"} <= granted
