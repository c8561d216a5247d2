from django.contrib import admin

# Apps office staff use every day, in this order; everything else (sign-in records, task
# results, schedules) is folded into one "System" entry at the end.
DAILY_APPS = ("attendance", "auth")


class SoundFusionAdminSite(admin.AdminSite):
    site_header = "Sound Fusion admin"
    site_title = "Sound Fusion"
    index_title = "Events, crew and payments"

    def get_app_list(self, request, app_label=None):
        # Django sorts apps by name, which put sign-in records, task results and schedules
        # above the events, crew and payments staff come for, on the index and in the sidebar.
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        daily = sorted(
            (app for app in apps if app["app_label"] in DAILY_APPS),
            key=lambda app: DAILY_APPS.index(app["app_label"]),
        )
        system = [app for app in apps if app["app_label"] not in DAILY_APPS]
        if system:
            daily.append(
                {
                    "name": "System (administrators)",
                    "app_label": "system",
                    "app_url": system[0]["app_url"],
                    "has_module_perms": True,
                    "models": [
                        {**model, "name": f"{model['name']} ({app['name']})"}
                        for app in system
                        for model in app["models"]
                    ],
                }
            )
        return daily
