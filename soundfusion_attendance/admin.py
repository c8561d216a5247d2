from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth.models import AbstractBaseUser
from django.shortcuts import redirect
from django.urls import path, reverse

from attendance.services.core.errors import ServiceError
from attendance.services.people.two_factor import staff_needs_second_factor

# Apps office staff use every day, in this order; everything else (sign-in records, task
# results, schedules) is folded into one "System" entry at the end.
DAILY_APPS = ("attendance", "auth", "auditlog")


class NamedAutocompleteJsonView(AutocompleteJsonView):
    """Member pickers say who each account is: "Collins Omondi (omondi)", not "omondi"."""

    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        if isinstance(obj, AbstractBaseUser):
            full = obj.get_full_name()  # type: ignore[attr-defined]
            username = obj.get_username()
            result["text"] = f"{full} ({username})" if full else username
        return result


class SoundFusionAdminSite(admin.AdminSite):
    site_header = "Sound Fusion admin"
    site_title = "Sound Fusion"
    index_title = "Events, crew and payments"
    # No navigation sidebar: beside the filter column it left lists 616 px of a 1280 px
    # window, and key columns (status, balance, the buttons) scrolled out of sight. The
    # breadcrumbs and the index (Home) lead everywhere it did.
    enable_nav_sidebar = False

    def admin_view(self, view, cacheable=False):
        """Every admin view, with a service's refusal turned into what staff read, here once:
        its message, back on the page they were on (a change form's transaction is rolled
        back by then, so nothing of it was saved). Views that have something to add (which
        member of a batch) still catch it themselves."""
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def refusals_shown(request, *args, **kwargs):
            try:
                return inner(request, *args, **kwargs)
            except ServiceError as refused:
                messages.error(request, refused.message)
                if request.method == "POST":
                    return redirect(request.get_full_path())
                return redirect(reverse("admin:index"))

        return refusals_shown

    def has_permission(self, request):
        # Staff reach admin only with a second factor verified in this session, however they
        # logged in (here or on the crew portal); every admin view and admin JSON asks this.
        return super().has_permission(request) and request.user.is_verified()

    def login(self, request, extra_context=None):
        user = request.user
        if request.method == "GET" and staff_needs_second_factor(user):
            return self._second_step(request)
        response = super().login(request, extra_context)
        if request.method == "POST" and staff_needs_second_factor(request.user):
            return self._second_step(request)  # the password was right: the code next
        return response

    def _second_step(self, request):
        target = request.POST.get("next") or request.GET.get("next") or reverse("admin:index")
        return redirect(f"{reverse('admin:two_factor')}?{urlencode({'next': target})}")

    def index(self, request, extra_context=None):
        from attendance.services.ops.dashboard import dashboard_figures

        user = request.user
        if user.has_perm("attendance.view_dashboard"):
            # Each section only for those who may see the lists behind it.
            extra_context = {
                **(extra_context or {}),
                "dashboard": dashboard_figures(
                    money=user.has_perm("attendance.view_mpesapayment"),
                    crew=user.has_perm("attendance.view_event"),
                    email=user.has_perm("attendance.view_emailnotification"),
                ),
            }
        return super().index(request, extra_context)

    def autocomplete_view(self, request):
        return NamedAutocompleteJsonView.as_view(admin_site=self)(request)

    def get_urls(self):
        from attendance.views import two_factor

        return [
            path("two-factor/", two_factor.verify, name="two_factor"),
            path("two-factor/set-up/", two_factor.enrol, name="two_factor_enrol"),
            path(
                "two-factor/backup-codes/",
                self.admin_view(two_factor.backup_codes),
                name="two_factor_backup_codes",
            ),
            *super().get_urls(),
        ]

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
