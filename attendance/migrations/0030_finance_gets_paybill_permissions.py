"""An existing Finance role gets the permissions Paybill payments brought (assigning them,
reversing them, importing statements), once: roles are made only where missing
(services/people/roles.py), so without this an installation that had Finance before would
not have them. An admin who removes them later keeps them removed."""

from django.contrib.auth.management import create_permissions
from django.contrib.contenttypes.management import create_contenttypes
from django.db import migrations

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
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    finance = Group.objects.filter(name="Finance").first()
    if finance is None:
        return  # a new installation: the roles are made after migrate, with these in them
    # Permissions are made after migrate too: make the app's now, so they can be granted.
    config = apps.get_app_config("attendance")
    config.models_module = True
    create_contenttypes(config, apps=apps, verbosity=0)
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    finance.permissions.add(
        *Permission.objects.filter(content_type__app_label="attendance", codename__in=GRANTS)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("attendance", "0029_statement_and_reversals"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
