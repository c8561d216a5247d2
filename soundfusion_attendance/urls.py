from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.decorators.cache import cache_page

from attendance.forms import OutboxPasswordResetForm
from attendance.views import app

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=OutboxPasswordResetForm),
        name="password_reset",
    ),
    # Before Django's own: logging out also empties the browser's caches of the site.
    path("accounts/logout/", app.LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The portal scripts' words in the member's language (the URL names the language, so a
    # browser's cached copy never answers for another).
    path(
        "jsi18n/",
        cache_page(3600)(app.javascript_catalog),
        name="javascript-catalog",
    ),
    path("", include("attendance.urls")),
]

handler403 = "attendance.views.errors.permission_denied"
handler404 = "attendance.views.errors.not_found"
handler500 = "attendance.views.errors.server_error"
