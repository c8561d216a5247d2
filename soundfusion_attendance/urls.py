from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Sound Fusion admin"
admin.site.site_title = "Sound Fusion"
admin.site.index_title = "Events, crew and payments"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("attendance.urls")),
]
