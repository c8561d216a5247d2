from django.contrib.admin.apps import AdminConfig


class SoundFusionAdminConfig(AdminConfig):
    default_site = "soundfusion_attendance.admin.SoundFusionAdminSite"
