"""Payments that ended before M-Pesa could say get codes of our own (services/payments/outcomes.py).

Before, a failed push stored the Daraja client's transport code ("timeout", "connection_lost",
...) or Daraja's errorCode, and an expired payment stored "timeout" too. Existing rows keep
meaning what they meant; the client's or Daraja's code is already in result_description.
"""

from django.db import migrations
from django.db.models import Q

UNANSWERED = ["timeout", "connection_lost", "http_error", "internal_error"]
NOT_SENT = ["unreachable", "unavailable", "invalid_request"]


def forwards(apps, schema_editor):
    Payment = apps.get_model("attendance", "MpesaPayment")
    pushed = Payment.objects.filter(status="failed", settled_via="push")
    pushed.filter(result_code__in=UNANSWERED).update(result_code="push_unanswered")
    pushed.filter(result_code__in=NOT_SENT).update(result_code="push_not_sent")
    pushed.exclude(
        Q(result_code__in=["push_unanswered", "push_not_sent"]) | Q(result_code__regex=r"^\d+$")
    ).update(result_code="push_refused")
    Payment.objects.filter(settled_via="timeout", result_code="timeout").update(
        result_code="expired"
    )


def backwards(apps, schema_editor):
    Payment = apps.get_model("attendance", "MpesaPayment")
    Payment.objects.filter(result_code="push_unanswered").update(result_code="timeout")
    Payment.objects.filter(result_code="push_not_sent").update(result_code="unreachable")
    Payment.objects.filter(result_code="push_refused").update(result_code="daraja_error")
    Payment.objects.filter(result_code="expired").update(result_code="timeout")


class Migration(migrations.Migration):
    dependencies = [("attendance", "0009_callback_quarantine_and_prompt_limits")]
    operations = [migrations.RunPython(forwards, backwards)]
