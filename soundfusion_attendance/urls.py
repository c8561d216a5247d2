from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from attendance.forms import OutboxPasswordResetForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=OutboxPasswordResetForm),
        name="password_reset",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("attendance.urls")),
]

handler403 = "attendance.views.errors.permission_denied"
handler404 = "attendance.views.errors.not_found"
handler500 = "attendance.views.errors.server_error"
