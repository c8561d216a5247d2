from django.urls import path

from .views import portal

app_name = "attendance"

urlpatterns = [
    path("", portal.home, name="home"),
    path("events/<int:event_id>/", portal.event_detail, name="event_detail"),
    path("events/<int:event_id>/check-in/", portal.check_in, name="check_in"),
    path("events/<int:event_id>/check-out/", portal.check_out, name="check_out"),
    path("attendance/", portal.history, name="history"),
    path("balance/", portal.ledger, name="ledger"),
]
