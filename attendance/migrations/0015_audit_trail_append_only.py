"""The audit trail is append-only on PostgreSQL: UPDATE and DELETE are refused by a trigger.

One change is let through: a deleted user's rows losing their actor (the foreign key's SET
NULL); the actor's email stays on the row. Pruning old rows is a deliberate operator act:
`ALTER TABLE auditlog_logentry DISABLE TRIGGER audit_append_only` first.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit trail rows cannot be changed or deleted (%% of row %%)', TG_OP, OLD.id;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON auditlog_logentry
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS audit_append_only ON auditlog_logentry;
DROP FUNCTION IF EXISTS audit_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("attendance", "0014_email_queued_at"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(forward, backward)]
