"""An existing Finance role gets the permissions Paybill payments brought (assigning them,
reversing them, importing statements), once: roles are made only where missing
(services/people/roles.py), so without this an installation that had Finance before would
not have them. An admin who removes them later keeps them removed."""

from django.db import migrations

from attendance.services.people.roles import role_grant_existing

GRANTS = [
    "view_paybillpayment",
    "assign_paybillpayment",
    "view_paybillnotice",
    "view_reversal",
    "request_reversal",
    "view_reversalresult",
    "view_statementimport",
    "reconcile_statementimport",
    "view_statementrow",
]


def grant(apps, schema_editor):
    role_grant_existing(apps, "Finance", GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("attendance", "0029_statement_and_reversals"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
