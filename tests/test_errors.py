"""One error vocabulary (issue 27): every refusal a service gives derives from ServiceError,
which admin and the JSON API each turn into what their user reads in one place."""

import importlib
import inspect
import pkgutil

import pytest

import attendance.services
from attendance.services.core.errors import ServiceError
from attendance.services.core.inbox import Unreadable
from attendance.services.core.outbox import PermanentError, TemporaryError

# Not refusals to a person: how a provider answered a send (the outbox decides what next),
# and a body that is not of an inbox's kind (kept, marked malformed).
NOT_REFUSALS = {TemporaryError, PermanentError, Unreadable}


def _service_exceptions():
    for module_info in pkgutil.walk_packages(attendance.services.__path__, "attendance.services."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception) and value.__module__ == module.__name__:
                yield value


def test_every_service_error_is_a_service_error():
    found = set(_service_exceptions()) - NOT_REFUSALS
    assert len(found) >= 10
    assert sorted(e.__name__ for e in found if not issubclass(e, ServiceError)) == []


@pytest.mark.django_db
def test_the_api_answers_a_refusal_with_its_code_words_status_and_details(client, crew):
    client.force_login(crew)
    response = client.post(
        "/api/mpesa/request-payment/",
        {"amount": 0},
        content_type="application/json",
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    body = response.json()
    assert response.status_code == 400, body
    assert body["success"] is False and body["error"]["code"] != "server_error"
    assert body["error"]["message"]  # in the member's words


@pytest.mark.django_db
def test_the_admin_site_shows_a_refusal_once_and_returns_to_the_page(rf, admin_user):
    from django.contrib.messages import get_messages
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.db import SessionStore

    from soundfusion_attendance.admin import SoundFusionAdminSite

    def refuses(request):
        raise ServiceError("That pay run is approved already.")

    view = SoundFusionAdminSite(name="probe").admin_view(refuses)
    request = rf.post("/admin/attendance/payrun/7/approve/?from=list")
    request.user = admin_user
    request.user.is_verified = lambda: True
    request.session = SessionStore()
    request._dont_enforce_csrf_checks = True
    request._messages = FallbackStorage(request)
    response = view(request)
    assert (response.status_code, response["Location"]) == (
        302,
        "/admin/attendance/payrun/7/approve/?from=list",
    )
    assert [m.message for m in get_messages(request)] == ["That pay run is approved already."]
