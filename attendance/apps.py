from django.apps import AppConfig


class AttendanceConfig(AppConfig):
    name = "attendance"
    verbose_name = "Sound Fusion"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import signals  # noqa: F401  (connects the profile-on-user-creation receiver)

        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="sf_schedules")


def _ensure_schedules(sender, using="default", **kwargs):
    from django.db import connections

    from .services.schedules import schedules_ensure

    # `migrate attendance` alone may run before django-celery-beat's tables exist.
    if "django_celery_beat_periodictask" in connections[using].introspection.table_names():
        schedules_ensure()
