import logging
import os
import shutil
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection

from soundfusion_attendance.celery import app as celery_app

# Fixtures shared by several test files (a test file never imports another).
pytest_plugins = ["tests.support.portal_world"]

# In CI (REQUIRE_SERVICES=1) a test that needs PostgreSQL, Redis or Chromium must run: a missing
# service is a failure there, not a skip.
REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def set_celery_eager(eager: bool) -> None:
    # The app reads Django settings with the CELERY_ namespace; only the prefixed key
    # overrides what settings.py decided.
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = eager
    celery_app.conf.CELERY_TASK_EAGER_PROPAGATES = False
    assert celery_app.conf.task_always_eager is eager
    # A window opened by an earlier test's queued task would hide the next callback from
    # in-process tasks (a process never switches modes outside tests).
    from attendance.services.payments import callback_kick

    callback_kick.forget()


def _service_missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _service_missing("needs PostgreSQL: set DATABASE_URL=postgres://...")
    if item.get_closest_marker("redis") and not os.environ.get("REDIS_URL"):
        _service_missing("needs Redis: set REDIS_URL=redis://...")
    if item.get_closest_marker("browser") and not (
        shutil.which("chromium") and shutil.which("chromedriver")
    ):
        _service_missing("needs Debian's chromium and chromium-driver packages")


class _SecretWatch(logging.Handler):
    """Every log record of the test run, checked for secrets (after the app's redaction)."""

    def __init__(self, secrets):
        super().__init__(level=logging.DEBUG)
        self.secrets = [s for s in secrets if s]
        self.leaks: list[str] = []

    def emit(self, record):
        text = f"{record.getMessage()} {record.exc_text or ''}"
        if any(secret in text for secret in self.secrets):
            self.leaks.append(f"{record.name}: {text[:300]}")


@pytest.fixture(autouse=True, scope="session")
def _no_secret_in_any_log_line():
    """Across the whole run, no log line may carry the callback token (or another secret)."""
    from django.conf import settings

    watch = _SecretWatch([settings.MPESA_CALLBACK_TOKEN, settings.SECRET_KEY])
    root = logging.getLogger()
    root.addHandler(watch)
    yield watch
    root.removeHandler(watch)
    assert not watch.leaks, "secrets in log lines:\n" + "\n".join(watch.leaks[:10])


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    # Unit tests run tasks where they are queued; the end-to-end tests start a real worker
    # and switch this off themselves.
    set_celery_eager(True)
    yield


@pytest.fixture(autouse=True)
def _media_in_a_temporary_folder(settings, tmp_path):
    # Export files written by background jobs land in the test's own folder.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _english_unless_the_test_says():
    """A request's language stays active in its thread (Django activates, never resets): the
    next test starts in English whatever the last one's member read."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield


_DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


@pytest.fixture(autouse=True)
def _ledger_invariant(request):
    """After every test that touched the database: the sum of every member's ledger entries
    equals the sum of their balances (and each balance equals its own entries)."""
    if not (
        _DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")
    ):
        yield
        return
    # Set up here, so that this check runs before the database is rolled back or flushed.
    request.getfixturevalue("_django_db_helper")
    yield
    from django.db.models import Sum

    from attendance.models import LedgerEntry, Profile

    by_entries = dict(
        LedgerEntry.objects.values("user_id")
        .annotate(total=Sum("amount"))
        .values_list("user_id", "total")
    )
    balances = dict(Profile.objects.exclude(balance=0).values_list("user_id", "balance"))
    assert {k: v for k, v in by_entries.items() if v} == balances, "ledger != balances"


@pytest.fixture(autouse=True)
def _statutory_rates_as_migrated(request):
    """The rate table's rows, as migration 0037 seeds them, in every test's database: a
    transactional test's flush empties every table, those rows with them, and pay-run
    approval rightly refuses to work out deductions with no rates."""
    if not (
        _DB_FIXTURES & set(request.fixturenames) or request.node.get_closest_marker("django_db")
    ):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    import importlib

    from django.apps import apps

    from attendance.models import StatutoryRates

    if not StatutoryRates.objects.exists():
        importlib.import_module("attendance.migrations.0037_statutory_rates_2026").seed(apps, None)
    yield


@pytest.fixture
def crew(db):
    from tests.support.factories import UserFactory

    return UserFactory(profile__phone_number="0712345678")


@pytest.fixture
def other_crew(db):
    from tests.support.factories import UserFactory

    return UserFactory(profile__phone_number="0722000111")


@pytest.fixture
def staff(db):
    from tests.support.factories import UserFactory

    return UserFactory(is_staff=True, is_superuser=True)


@pytest.fixture
def crew_client(client, crew):
    client.force_login(crew)
    return client


@pytest.fixture
def staff_client(client, staff):
    from tests.support.auth import log_in_staff

    return log_in_staff(client, staff)


@pytest.fixture
def admin_client(client, admin_user):
    # pytest-django's, with the second factor staff need for admin.
    from tests.support.auth import log_in_staff

    return log_in_staff(client, admin_user)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing costs ~0.3 s per user; tests create hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _use_smtp(settings, port):
    from attendance.services.messaging import email as notifications

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    notifications._connections.clear()


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback; Django's SMTP backend points at it."""
    from tests.support.smtp import SmtpServer

    server = SmtpServer().start()
    _use_smtp(settings, server.port)
    yield server
    server.stop()
    from attendance.services.messaging import email as notifications

    notifications._connections.clear()


@pytest.fixture
def smtp_worker_env(smtp_server):
    """Environment for worker processes so that they send to the loopback SMTP server."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
    }


@pytest.fixture
def smtp_port_down(settings):
    """A loopback port with no SMTP server on it (yet): start one there with SmtpServer(port)."""
    from tests.support.smtp import free_port

    port = free_port()
    _use_smtp(settings, port)
    return port


@pytest.fixture
def daraja(settings):
    """The local Daraja simulator over real HTTP, with the app pointed at it."""
    from attendance import mpesa
    from attendance.mpesa.simulator import SANDBOX_PASSKEY, DarajaSimulator

    simulator = DarajaSimulator(callback_delay=0.2).start()
    settings.MPESA_BASE_URL = simulator.url
    settings.MPESA_CONSUMER_KEY = "sim-consumer-key"
    settings.MPESA_CONSUMER_SECRET = "sim-consumer-secret"
    settings.MPESA_BUSINESS_SHORT_CODE = "174379"
    settings.MPESA_PASS_KEY = SANDBOX_PASSKEY
    settings.MPESA_READ_TIMEOUT = 2.0
    # Callbacks go nowhere (a closed loopback port) unless a test serves the app.
    from tests.support.smtp import free_port

    settings.MPESA_CALLBACK_URL = f"http://127.0.0.1:{free_port()}/api/payments/callback"
    mpesa._clients.clear()
    yield simulator
    simulator.stop()
    mpesa._clients.clear()


@pytest.fixture
def at_sms(settings):
    """The local Africa's Talking simulator over real HTTP, SMS turned on and pointed at it.
    Reports and replies go nowhere until a test points them at a live server."""
    from attendance.services.messaging import sms as sms
    from attendance.sms.simulator import AfricasTalkingSimulator

    simulator = AfricasTalkingSimulator(report_delay=0.1).start()
    settings.SMS_ENABLED = True
    settings.SMS_DEFAULT_CHANNEL = "sms"
    settings.AT_USERNAME = simulator.state.username
    settings.AT_API_KEY = simulator.state.api_key
    settings.AT_BASE_URL = simulator.url
    settings.SMS_SENDER_ID = ""
    sms._clients.clear()
    yield simulator
    simulator.stop()
    sms._clients.clear()


@pytest.fixture
def wa(settings):
    """The local WhatsApp Cloud API simulator over real HTTP, WhatsApp turned on and pointed
    at it. Statuses and replies go nowhere until a test points them at a live server."""
    from attendance.services.messaging import whatsapp
    from attendance.whatsapp.simulator import WhatsAppSimulator

    simulator = WhatsAppSimulator(status_delay=0.05).start()
    settings.WHATSAPP_ENABLED = True
    settings.WHATSAPP_BASE_URL = simulator.url
    settings.WHATSAPP_PHONE_NUMBER_ID = simulator.state.phone_number_id
    settings.WHATSAPP_ACCESS_TOKEN = simulator.state.access_token
    settings.WHATSAPP_APP_SECRET = simulator.state.app_secret
    settings.WHATSAPP_VERIFY_TOKEN = "test-verify-token"
    whatsapp._clients.clear()
    yield simulator
    simulator.stop()
    whatsapp._clients.clear()


@pytest.fixture
def push_service(settings):
    """The web push service stand-in over real HTTP, with a VAPID key: push is on. Devices are
    `push_service.new_device(scenario)`; what each received, decrypted, is in its log."""
    from attendance.push.keys import new_key_pair
    from attendance.push.simulator import PushServiceSimulator

    simulator = PushServiceSimulator(quiet=True).start()
    settings.VAPID_PRIVATE_KEY = new_key_pair()[0]
    settings.WEBPUSH_ENABLED = True
    yield simulator
    simulator.stop()


@pytest.fixture
def wa_to_live_server(wa, live_server):
    """Statuses and replies from the WhatsApp simulator reach the app over HTTP, signed."""
    wa.state.webhook_url = f"{live_server.url}/api/whatsapp/webhook/"
    return live_server


@pytest.fixture
def sms_to_live_server(at_sms, live_server, settings):
    """Delivery reports and replies from the simulator reach the app over HTTP."""
    base = f"{live_server.url}/api/sms"
    at_sms.state.report_url = f"{base}/delivery/{settings.SMS_CALLBACK_TOKEN}/"
    at_sms.state.incoming_url = f"{base}/incoming/{settings.SMS_CALLBACK_TOKEN}/"
    return live_server


@pytest.fixture
def callbacks_to_live_server(daraja, live_server, settings):
    """Let the simulator's callbacks reach the app over HTTP."""
    settings.MPESA_CALLBACK_URL = f"{live_server.url}/api/payments/callback"
    return live_server


def _chromium(width: int, *, phone: bool):
    """Debian's headless Chromium: a phone (touch, `width` CSS px wide) or a desktop window."""
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="sf-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        # This machine has no internet: without these Chromium keeps dialling Google.
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    if phone:
        options.add_experimental_option(
            "mobileEmulation",
            {"deviceMetrics": {"width": width, "height": 812, "pixelRatio": 2, "touch": True}},
        )
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    if not phone:
        driver.set_window_size(width, 900)
        # The window's frame takes a few pixels: size the viewport itself to `width`.
        inner = driver.execute_script("return window.innerWidth")
        driver.set_window_size(width + (width - inner), 900)
    driver.implicitly_wait(5)
    driver.sf_profile = profile
    return driver


def _quit(driver):
    driver.quit()
    shutil.rmtree(driver.sf_profile, ignore_errors=True)


@pytest.fixture
def browser():
    """Headless Chromium laid out as a phone (375 px wide, touch)."""
    from tests.support.browser import PHONE_WIDTH

    driver = _chromium(PHONE_WIDTH, phone=True)
    yield driver
    _quit(driver)


@pytest.fixture
def desktop_browser():
    """Headless Chromium as an office screen, 1280 px wide."""
    from tests.support.browser import DESKTOP_WIDTH

    driver = _chromium(DESKTOP_WIDTH, phone=False)
    yield driver
    _quit(driver)


@pytest.fixture
def make_browser():
    """`make_browser(width, phone=...)` for tests that look at several widths."""
    drivers = []

    def make(width: int, *, phone: bool):
        drivers.append(_chromium(width, phone=phone))
        return drivers[-1]

    make.drivers = drivers
    yield make
    for driver in drivers:
        _quit(driver)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test leaves a screenshot and the page's HTML in test-artifacts/."""
    report = yield
    if report.when == "call" and report.failed:
        drivers = [
            item.funcargs[name]
            for name in ("browser", "desktop_browser")
            if name in getattr(item, "funcargs", {})
        ]
        if "make_browser" in getattr(item, "funcargs", {}):
            drivers += getattr(item.funcargs["make_browser"], "drivers", [])
        from tests.support.browser import ARTIFACTS

        for n, driver in enumerate(drivers):
            ARTIFACTS.mkdir(exist_ok=True)
            stem = ARTIFACTS / f"FAILED-{item.name[:80]}-{n}"
            try:
                driver.save_screenshot(f"{stem}.png")
                Path(f"{stem}.html").write_text(driver.page_source)
                report.sections.append(("browser", f"at {driver.current_url}; saved {stem}.png"))
            except Exception as error:  # the browser itself may be what failed
                report.sections.append(("browser", f"no screenshot: {error!r}"))
    return report


B2C_INITIATOR_PASSWORD = "Sim#Initiator1"


@pytest.fixture
def b2c(settings, live_server):
    """The Daraja simulator's B2C side over real HTTP, its results POSTed to the live server."""
    from attendance import mpesa
    from attendance.mpesa.simulator import DarajaSimulator

    simulator = DarajaSimulator(callback_delay=0.1).start()
    simulator.state.b2c.slow_answer_seconds = 2.5
    settings.MPESA_BASE_URL = simulator.url
    settings.MPESA_CONSUMER_KEY = settings.MPESA_B2C_CONSUMER_KEY = "sim-consumer-key"
    settings.MPESA_CONSUMER_SECRET = settings.MPESA_B2C_CONSUMER_SECRET = "sim-consumer-secret"
    settings.MPESA_B2C_INITIATOR_NAME = "sim-initiator"
    settings.MPESA_B2C_INITIATOR_PASSWORD = B2C_INITIATOR_PASSWORD
    settings.MPESA_B2C_CERTIFICATE = simulator.state.b2c.certificate.decode()
    settings.MPESA_B2C_RESULT_URL = f"{live_server.url}/api/payouts"
    settings.MPESA_READ_TIMEOUT = 1.0
    settings.PAYOUT_FLOAT_WAIT_SECONDS = 5
    mpesa._clients.clear()
    mpesa._initiators.clear()
    yield simulator
    simulator.stop()
    mpesa._clients.clear()
    mpesa._initiators.clear()
