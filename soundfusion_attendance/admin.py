from django.contrib import admin


class SoundFusionAdminSite(admin.AdminSite):
    site_header = "Sound Fusion admin"
    site_title = "Sound Fusion"
    index_title = "Events, crew and payments"

    def get_app_list(self, request, app_label=None):
        # Django sorts apps by name, which put sign-in records, task results and schedules
        # above the events, crew and payments staff come for, on the index and in the sidebar.
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: app["app_label"] != "attendance")
