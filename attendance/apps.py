from django.apps import AppConfig


class AttendanceConfig(AppConfig):
    name = "attendance"
    verbose_name = "Sound Fusion"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.models import LogEntry
        from django.db.models.signals import post_migrate, pre_save

        from . import signals  # noqa: F401  (connects the profile-on-user-creation receiver)
        from .services.core.audit import audit_mark_access_change
        from .services.crew import replies  # noqa: F401  (reads incoming texts as crew answers)
        from .services.pay import payslip_documents  # noqa: F401  (payslip PDFs for emails)

        pre_save.connect(audit_mark_access_change, sender=LogEntry, dispatch_uid="sf_audit_event")

        post_migrate.connect(_ensure_defaults, sender=self, dispatch_uid="sf_defaults")


def _ensure_defaults(sender, using="default", **kwargs):
    from django.db import connections

    from .services.ops.health import beat_runs_ensure
    from .services.ops.schedules import schedules_ensure
    from .services.people.roles import roles_ensure

    roles_ensure()
    tables = connections[using].introspection.table_names()
    # `migrate attendance` alone may run before django-celery-beat's tables exist, and a
    # migration back to an older state leaves out newer tables.
    if "django_celery_beat_periodictask" in tables:
        schedules_ensure()
    if "attendance_beatrun" in tables:
        beat_runs_ensure()
