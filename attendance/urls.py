from django.urls import path, re_path

from .views import api, app, crew, health, pay, portal, showday, sms, webhooks

app_name = "attendance"

urlpatterns = [
    # Safaricom's callbacks first: patterns are tried in order and this is the busiest URL.
    path(
        "api/payments/callback/<str:token>/", webhooks.mpesa_callback, name="api_payments_callback"
    ),
    # The same endpoint with "mpesa" in the path; Daraja advises against that word in
    # callback URLs, so new pushes use the one above.
    path("api/mpesa/callback/<str:token>/", webhooks.mpesa_callback, name="api_mpesa_callback"),
    path("", portal.home, name="home"),
    path("manifest.webmanifest", app.manifest, name="manifest"),
    path("sw.js", app.service_worker, name="service_worker"),
    path("offline/", app.offline, name="offline"),
    path("events/<int:event_id>/", portal.event_detail, name="event_detail"),
    path("events/<int:event_id>/check-in/", portal.check_in, name="check_in"),
    path(
        "events/<int:event_id>/at-venue/<str:code>/",
        portal.venue_check_in,
        name="venue_check_in",
    ),
    path(
        "events/<int:event_id>/check-in/sent-later/",
        portal.check_in_sent_later,
        name="check_in_sent_later",
    ),
    path("events/<int:event_id>/check-out/", portal.check_out, name="check_out"),
    path("events/<int:event_id>/coming/", showday.coming, name="coming"),
    path("events/<int:event_id>/call-sheet/", showday.call_sheet, name="call_sheet"),
    path("wall/<str:token>/", showday.arrivals_wall, name="arrivals_wall"),
    path("wall/<str:token>.json", showday.arrivals_wall_json, name="arrivals_wall_json"),
    path("attendance/", portal.history, name="history"),
    path("balance/", portal.ledger, name="ledger"),
    path("account/", portal.account, name="account"),
    path("calendar/<str:token>.ics", portal.calendar, name="calendar_feed"),
    path("pay/", pay.my_pay, name="my_pay"),
    path("pay/lines/<int:line_id>/dispute/", pay.dispute, name="pay_dispute"),
    path("pay/runs/<int:run_id>/", pay.payslip, name="payslip"),
    path("pay/runs/<int:run_id>/pdf/", pay.payslip_pdf, name="payslip_pdf"),
    path("crew/assignments/", crew.assignments, name="crew_assignments"),
    path("crew/availability/", crew.availability, name="availability"),
    path("crew/open-roles/", crew.open_roles, name="open_roles"),
    path("crew/<int:crew_id>/replace/", crew.ask_replacement, name="crew_ask_replacement"),
    path("crew/<int:crew_id>/confirm/", crew.confirm, name="crew_confirm"),
    path("crew/<int:crew_id>/decline/", crew.decline, name="crew_decline"),
    path("crew/<int:crew_id>/leave/", crew.leave_waiting, name="crew_leave_waiting"),
    path("crew/<int:crew_id>/answer/<str:token>/", crew.answer, name="crew_answer"),
    path("crew/<int:crew_id>/answer/<str:token>/now/", crew.answer_now, name="crew_answer_now"),
    path("account/push/", app.push_subscription, name="push_subscription"),
    path("api/payouts/<str:kind>/<str:token>/", webhooks.payout_result, name="api_payout_result"),
    path("api/paybill/<str:kind>/<str:token>/", webhooks.paybill, name="api_paybill"),
    path(
        "api/reversals/<str:kind>/<str:token>/",
        webhooks.reversal_result,
        name="api_reversal_result",
    ),
    path("api/sms/<str:kind>/<str:token>/", webhooks.sms_callback, name="api_sms_callback"),
    path("api/whatsapp/webhook/", webhooks.whatsapp_webhook, name="api_whatsapp_webhook"),
    path("api/health/", health.health, name="health"),
    path("api/ready/", health.ready, name="ready"),
    path("api/metrics/", health.metrics, name="metrics"),
    path("api/mpesa/request-payment/", api.request_payment, name="api_request_payment"),
    path("api/mpesa/payment-status/", api.payment_status, name="api_payment_status"),
    # Last: SMS invitations' short links. Upper case and digits only, so no page's path
    # (all lower case) can ever be taken for one.
    re_path(r"^(?P<code>[2-9A-HJ-NP-Z]{10})/$", sms.short_link, name="crew_short_link"),
]
