import os

import pytest
from django.core.cache import cache
from django.db import connection

from soundfusion_attendance.celery import app as celery_app

# In CI (REQUIRE_SERVICES=1) a test that needs PostgreSQL, Redis or Chromium must run: a missing
# service is a failure there, not a skip.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _service_missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _service_missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        _service_missing("needs Redis: set REDIS_URL=redis://...")


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    # Unit tests run tasks where they are queued; the end-to-end tests start a real worker
    # and switch this off themselves.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    yield


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield


@pytest.fixture
def crew(db):
    from tests.factories import UserFactory

    return UserFactory(profile__phone_number="0712345678")


@pytest.fixture
def other_crew(db):
    from tests.factories import UserFactory

    return UserFactory(profile__phone_number="0722000111")


@pytest.fixture
def staff(db):
    from tests.factories import UserFactory

    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def crew_client(client, crew):
    client.force_login(crew)
    return client


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.3 s per user; tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
