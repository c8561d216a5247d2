"""Settings for Sound Fusion, read from the environment.

Every value comes from an environment variable (or a `.env` file beside manage.py) with a
default that makes local development work on a bare machine: SQLite, console email, tasks run
in-process and the local M-Pesa simulator. With DEBUG=False the defaults that are unsafe in
production are refused at start-up, with a message naming the variable to set.
"""

import hashlib
import hmac
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable that must say True or False.

    django-environ reads any unknown word as False, which would turn a typo in
    `SESSION_COOKIE_SECURE=ture` into an insecure production; refuse it instead.
    """
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"true", "1", "yes", "on"}:
        return True
    if value in {"false", "0", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be True or False, not {raw!r}.")


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file that NAME_FILE names (Docker and Kubernetes secrets).

    The file's trailing newline is dropped (`echo key > file` writes one, and a pass key with
    a newline is a wrong pass key); a file that cannot be read stops start-up, naming it.
    """
    path = os.environ.get(f"{name}_FILE", "")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}_FILE={path} cannot be read: {error.strerror}."
            ) from error
    return env.str(name, default=default)


# === Core and security ==================================================================

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production-sound-fusion"  # noqa: S105  (refused when DEBUG=False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a random string of at least 50 characters "
            '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 random characters, "
        "not starting with 'django-insecure-'."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is empty. Set ALLOWED_HOSTS to the comma-separated host names the site "
        "is served on, e.g. ALLOWED_HOSTS=crew.soundfusion.co.ke"
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Where people reach the site; used for links in emails and the default M-Pesa callback.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "soundfusion_attendance.apps.SoundFusionAdminConfig",  # django.contrib.admin, our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "auditlog",
    "django_celery_beat",
    "django_celery_results",
    "attendance",
]

MIDDLEWARE = [
    # Request id, metrics and (LOG_REQUESTS) one log line per request: around everything.
    "attendance.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of a visitor not signed in: their cookie, else their browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in member's own language (their profile's); admin always English.
    "attendance.middleware.MemberLanguageMiddleware",
    # A signed-in person's pages are not kept by the browser (Back after logout shows none).
    "attendance.middleware.PrivatePagesMiddleware",
    # request.user.is_verified(): has this session passed the second factor (staff).
    "django_otp.middleware.OTPMiddleware",
    # Who and from where, for the audit trail's rows written during the request.
    "attendance.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy: scripts only from our own static files (no inline script or
# handler anywhere: the admin has none since Django 4, the portal's are files). Inline styles
# stay allowed: the admin's email preview shows each email as written (an srcdoc frame takes
# this policy) and emails can only be styled inline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

ROOT_URLCONF = "soundfusion_attendance.urls"
WSGI_APPLICATION = "soundfusion_attendance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Security -----------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# JSON for the API, a page that says what to do for everyone else.
CSRF_FAILURE_VIEW = "attendance.views.errors.csrf_failure"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Behind a TLS-terminating proxy (nginx, a load balancer) that sets this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Probes ask a node directly over plain HTTP on the private network (the image's
    # HEALTHCHECK, the balancer's readiness check, Prometheus): answered, not redirected.
    SECURE_REDIRECT_EXEMPT = [r"^api/(health|ready|metrics)/$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Auth ---------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "attendance:home"
LOGOUT_REDIRECT_URL = "login"
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # its start-up banner on every command reads like a warning
# Staff two-factor login (django-otp). After each wrong code the next try waits 1, 2, 4, 8 ...
# seconds (times this factor), per device: ten wrong guesses cost over eight minutes.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Sound Fusion")
OTP_TOTP_THROTTLE_FACTOR = env.float("OTP_THROTTLE_FACTOR", default=1.0)
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# The proxies in front of the app (nginx on this host); only their X-Forwarded-For is believed
# for the address in the audit trail and on stored callbacks.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
# /api/ready/ names queues, their depths and ages: only for the internal networks (the load
# balancer, the operators' hosts) or whoever sends `Authorization: Bearer READINESS_TOKEN`.
READINESS_NETWORKS = env.list("READINESS_NETWORKS", default=["127.0.0.0/8", "::1/128"])
READINESS_TOKEN = env.str("READINESS_TOKEN", default="")

# --- Audit trail (django-auditlog) ---------------------------------------------------------
# Access changes are recorded by auditlog itself; money actions by attendance.services.core.audit.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {
        "model": "auth.user",
        "include_fields": ["username", "is_active", "is_staff", "is_superuser"],
        "m2m_fields": ["groups", "user_permissions"],
    },
    {"model": "auth.group", "include_fields": ["name"], "m2m_fields": ["permissions"]},
    # The law as the payroll applies it, and how each member is engaged: who changed what.
    "attendance.statutoryrates",
    "attendance.payeband",
    "attendance.statutoryprofile",
)

# --- Locale -------------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
# The crew portal and crew messages speak English or Kiswahili, as each member chooses on their
# Account page (attendance.middleware.MemberLanguageMiddleware); admin stays English.
LANGUAGES = [("en-gb", "English"), ("sw", "Kiswahili")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "sf_language"
LANGUAGE_COOKIE_SECURE = not DEBUG
# Our own date and time formats (24-hour, "5 Dec 2026, 19:02"): soundfusion_attendance/formats.
FORMAT_MODULE_PATH = ["soundfusion_attendance.formats"]
TIME_ZONE = "Africa/Nairobi"
USE_I18N = True
USE_TZ = True

# === Infrastructure: database, cache, tasks, email, files, logs, health ====================

# --- Database -----------------------------------------------------------------------------
_DATABASE_URL = env_secret("DATABASE_URL")
if not _DATABASE_URL:
    # The demo's SQLite file. Only then: a container's code directory is read-only.
    VAR_DIR.mkdir(exist_ok=True)
    _DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(_DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The dev server, the simulator's callbacks and in-process tasks write at the same time.
    # A busy timeout alone is not enough: a transaction that reads first and writes later
    # cannot wait for the write lock once another writer has committed ("database is
    # locked" at once). IMMEDIATE takes the lock at BEGIN, where the timeout applies; WAL
    # lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # On: a persistent connection cut by a database restart or a pooler is noticed before a
    # request uses it, instead of that request answering 500 (2 of 906 prompts did). The cost
    # is one round trip when a request first touches the database.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("CONN_HEALTH_CHECKS", True)
    # Behind PgBouncer in transaction pooling, server-side cursors (QuerySet.iterator) break:
    # set this. Our exports fetch in chunks by id and stream either way.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
        "DISABLE_SERVER_SIDE_CURSORS", False
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: shared by every process when Redis is there -----------------------------------
REDIS_URL = env_secret("REDIS_URL")
# A Sentinel-managed Redis: "host:port,host:port" of the Sentinels and the name they know the
# master by. REDIS_URL then gives only the database and password (its host is not used).
REDIS_SENTINELS = [
    (host, int(port or 26379))
    for host, _, port in (item.partition(":") for item in env.list("REDIS_SENTINELS", default=[]))
]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="mymaster")
REDIS_SENTINEL_PASSWORD = env_secret("REDIS_SENTINEL_PASSWORD")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sf"),
        }
    }
    if REDIS_SENTINELS:
        CACHES["default"]["OPTIONS"] = {"pool_class": "attendance.redis_client.SentinelPool"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL", default=REDIS_URL)
if REDIS_SENTINELS and CELERY_BROKER_URL == REDIS_URL:
    # kombu's Sentinel transport: one sentinel:// URL per Sentinel, the master by name
    # (CELERY_BROKER_TRANSPORT_OPTIONS below), the password and database from REDIS_URL.
    _redis = urlparse(REDIS_URL or "redis://")
    _password = f":{_redis.password}@" if _redis.password else ""
    CELERY_BROKER_URL = ";".join(
        f"sentinel://{_password}{host}:{port}{_redis.path or '/0'}"
        for host, port in REDIS_SENTINELS
    )
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="django-db")
# Without a broker (plain `make run`), tasks run in the web process when they are queued;
# with one, a worker runs them.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
if not CELERY_BROKER_URL:
    # With a host part: a bare "memory://" makes kombu warn "No hostname was supplied".
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
# Production is several processes (web workers, Celery workers, beat), often on several
# machines. Without Redis each process keeps its own cache, so the locks that keep the
# reconciler, alerts and the Daraja token single become per process; without a broker tasks
# run inside web requests. Refused, as a weak SECRET_KEY is, unless the operator says this is
# one box on purpose (SINGLE_BOX=True: the demo's shape, in production).
SINGLE_BOX = env_bool("SINGLE_BOX", False)
if not DEBUG and not SINGLE_BOX:
    _missing = [
        what
        for what, ok in (
            ("REDIS_URL (a cache every process shares)", REDIS_URL),
            (
                "CELERY_BROKER_URL or REDIS_URL (a broker for the workers)",
                not CELERY_TASK_ALWAYS_EAGER,
            ),
        )
        if not ok
    ]
    if _missing:
        raise ImproperlyConfigured(
            "Production needs " + " and ".join(_missing) + ". Set them, or set SINGLE_BOX=True "
            "if this really is one machine running one process of everything."
        )
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="default")
# Queues by purpose (money, messages, background, default): soundfusion_attendance/queues.py.
CELERY_TASK_ROUTES = ("soundfusion_attendance.queues.route_by_purpose",)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_TASK_TIME_LIMIT = 300
CELERY_RESULT_EXTENDED = True
CELERY_RESULT_EXPIRES = 7 * 24 * 3600
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that is down must not hang a web request for long: fail fast, the periodic
# sweepers pick up whatever was not queued.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
}
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    if REDIS_SENTINEL_PASSWORD:
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"password": REDIS_SENTINEL_PASSWORD}

# --- Email --------------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=15)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Sound Fusion <crew@soundfusion.local>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files -------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Uploaded and generated files (exports) -------------------------------------------------
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
MEDIA_URL = "media/"  # never served directly: downloads go through a view that checks who asks
# Several machines: a worker writes an export and any web node serves it, so the files live
# in S3-compatible object storage (AWS S3, MinIO, Ceph, R2...), in a private bucket. Downloads
# still go through the view that checks who asks, which streams the object (no public URL).
STORAGE_BUCKET = env.str("STORAGE_BUCKET", default="")
if STORAGE_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": STORAGE_BUCKET,
            "endpoint_url": env.str("STORAGE_ENDPOINT_URL", default="") or None,
            "region_name": env.str("STORAGE_REGION", default="") or None,
            # Empty: boto3 finds credentials itself (an instance role, ~/.aws).
            "access_key": env_secret("STORAGE_ACCESS_KEY") or None,
            "secret_key": env_secret("STORAGE_SECRET_KEY") or None,
            "location": env.str("STORAGE_PREFIX", default=""),
            "default_acl": "private",
            # A second export of the same name never replaces the first.
            "file_overwrite": False,
            # Signed links, should anything ask for one, last five minutes.
            "querystring_auth": True,
            "querystring_expire": 300,
        },
    }

# --- Logging ------------------------------------------------------------------------------
# Which machine (or container) this process runs on, in every JSON log line and metric.
NODE_NAME = env.str("NODE_NAME", default=socket.gethostname())
# Installs the redaction of tokens, secrets and phone numbers for every logger (logs.py).
LOGGING_CONFIG = "soundfusion_attendance.logs.configure"
# LOG_FORMAT=json: one JSON object per line, with the node and the request or task id, for a
# log store that gathers every machine's lines; plus one line per request and per task.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOG_REQUESTS = env_bool("LOG_REQUESTS", LOG_FORMAT == "json")
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "soundfusion_attendance.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "soundfusion_attendance.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO ("Deleted 0 failed login attempts"): noise.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # WeasyPrint logs seven INFO "steps" per PDF: a pay run's payslip emails would bury the
        # workers' own lines.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
# Workers log through this configuration too (JSON lines included), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
if CELERY_TASK_ALWAYS_EAGER or LOG_FORMAT == "json":
    # In-process tasks (the demo): a "Task ... succeeded" line per email is noise there;
    # with JSON lines each task has its own line (soundfusion_attendance/observability.py).
    LOGGING["loggers"]["celery.app.trace"] = {"level": "WARNING"}

# Prometheus metrics (attendance/metrics.py): /api/metrics/ on web nodes, for the same
# networks and token as readiness; a machine with only workers serves them on METRICS_PORT.
METRICS_PORT = env.int("METRICS_PORT", default=0)
METRICS_BIND = env.str("METRICS_BIND", default="127.0.0.1")

# --- Error reporting (Sentry) ------------------------------------------------------------
# Off unless SENTRY_DSN is set. Events are scrubbed of phone numbers, tokens and passwords
# before they leave (soundfusion_attendance/observability.py); the beat jobs become monitors.
SENTRY_DSN = env_secret("SENTRY_DSN")
if SENTRY_DSN:
    from soundfusion_attendance.observability import sentry_init

    sentry_init(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default="development" if DEBUG else "production"),
        release=env.str("SENTRY_RELEASE", default=""),
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# --- Readiness (/api/ready/) and alerts -----------------------------------------------------
# A periodic job is late once it missed two runs and this much more.
READY_BEAT_GRACE_SECONDS = env.int("READY_BEAT_GRACE_SECONDS", default=120)
# Tasks waiting in the broker beyond this: the workers are not keeping up (or are stopped).
READY_MAX_QUEUE_DEPTH = env.int("READY_MAX_QUEUE_DEPTH", default=5000)
# An email due this long ago and still unsent: delivery is stuck.
READY_MAX_EMAIL_WAIT_SECONDS = env.int("READY_MAX_EMAIL_WAIT_SECONDS", default=1800)
# A payment open this long past MPESA_PENDING_TIMEOUT_SECONDS: the reconciler is not running.
READY_PAYMENT_GRACE_SECONDS = env.int("READY_PAYMENT_GRACE_SECONDS", default=300)
# Alerts by email: each kind at most once per interval, to staff with the permission
# "Receives operations alerts by email", superusers, and these addresses.
ALERT_INTERVAL_SECONDS = env.int("ALERT_INTERVAL_SECONDS", default=3600)
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# The share of the last hour's payments that did not go through, once there are enough.
ALERT_PAYMENT_FAILURE_RATE = env.float("ALERT_PAYMENT_FAILURE_RATE", default=0.5)
ALERT_PAYMENT_MIN_COUNT = env.int("ALERT_PAYMENT_MIN_COUNT", default=10)
# Daraja errors and rate-limit answers within the window.
ALERT_DARAJA_PROBLEMS = env.int("ALERT_DARAJA_PROBLEMS", default=10)
ALERT_DARAJA_WINDOW_MINUTES = env.int("ALERT_DARAJA_WINDOW_MINUTES", default=15)
# Emails failed in the last hour plus those being retried.
ALERT_EMAIL_FAILURES = env.int("ALERT_EMAIL_FAILURES", default=5)

# === Each domain, bottom up ==============================================================

# --- Attendance rules ---------------------------------------------------------------------
# Minutes after the call time that still count as on time.
ATTENDANCE_GRACE_MINUTES = env.int("ATTENDANCE_GRACE_MINUTES", default=15)
# Crew may check themselves in from this long before their call time ...
CHECKIN_OPENS_MINUTES_BEFORE = env.int("CHECKIN_OPENS_MINUTES_BEFORE", default=60)
# ... until this long after it.
CHECKIN_CLOSES_MINUTES_AFTER = env.int("CHECKIN_CLOSES_MINUTES_AFTER", default=240)
# Check-out is possible until this long after the event's end.
CHECKOUT_CLOSES_HOURS_AFTER_END = env.int("CHECKOUT_CLOSES_HOURS_AFTER_END", default=12)
# A check-in made at the venue with no signal counts if it reaches us within this long.
OFFLINE_CHECK_IN_MAX_HOURS = env.int("OFFLINE_CHECK_IN_MAX_HOURS", default=12)

# --- Event crew ---------------------------------------------------------------------------
# Confirm/decline links in invitations stop working after this many days (and at the latest
# when the event starts).
CREW_ANSWER_LINK_MAX_AGE_DAYS = env.int("CREW_ANSWER_LINK_MAX_AGE_DAYS", default=14)
# Reminders go out the day before an event, from this local hour on (the job runs hourly).
CREW_REMINDER_HOUR = env.int("CREW_REMINDER_HOUR", default=9)
# Domain part of calendar entry ids; keep it stable so re-sent invitations update entries.
CREW_CALENDAR_DOMAIN = env.str("CREW_CALENDAR_DOMAIN", default="soundfusion.co.ke")
# Crew may dispute a timesheet line for this many days after it is worked out.
PAY_DISPUTE_WINDOW_DAYS = env.int("PAY_DISPUTE_WINDOW_DAYS", default=3)

# --- Email outbox -------------------------------------------------------------------------
NOTIFICATION_MAX_ATTEMPTS = env.int("NOTIFICATION_MAX_ATTEMPTS", default=5)
# First retry after this many seconds, doubling each time (capped at an hour).
NOTIFICATION_RETRY_BASE_SECONDS = env.float("NOTIFICATION_RETRY_BASE_SECONDS", default=30)
# A notification "sending" for longer than this belongs to a worker that died.
NOTIFICATION_STALE_CLAIM_SECONDS = env.int("NOTIFICATION_STALE_CLAIM_SECONDS", default=600)
# A queued row whose task was queued longer ago than this is queued again by the sweeper.
NOTIFICATION_REQUEUE_AFTER_SECONDS = env.int("NOTIFICATION_REQUEUE_AFTER_SECONDS", default=120)
# Ids per delivery task: amortises the broker round trip over several emails.
NOTIFICATION_BATCH_SIZE = env.int("NOTIFICATION_BATCH_SIZE", default=25)

# --- SMS (Africa's Talking) ------------------------------------------------------------------
# Off until the company turns it on; then crew get texts unless they choose email on their
# Account page (SMS_DEFAULT_CHANNEL). Staff alerts always go by email.
SMS_ENABLED = env_bool("SMS_ENABLED", False)
SMS_DEFAULT_CHANNEL = env.str("SMS_DEFAULT_CHANNEL", default="sms")
if SMS_DEFAULT_CHANNEL not in {"email", "sms", "both"}:
    raise ImproperlyConfigured("SMS_DEFAULT_CHANNEL must be 'email', 'sms' or 'both'.")
AT_USERNAME = env.str("AT_USERNAME", default="sandbox")
AT_API_KEY = env_secret("AT_API_KEY")
# Empty: the SDK's own host for the username (sandbox or live). Set for the local simulator.
AT_BASE_URL = env.str("AT_BASE_URL", default="").rstrip("/")
# A registered alphanumeric sender ID; empty uses Africa's Talking's default sender.
SMS_SENDER_ID = env.str("SMS_SENDER_ID", default="")
SMS_CONNECT_TIMEOUT = env.float("SMS_CONNECT_TIMEOUT", default=3.05)
SMS_READ_TIMEOUT = env.float("SMS_READ_TIMEOUT", default=9.05)
SMS_MAX_ATTEMPTS = env.int("SMS_MAX_ATTEMPTS", default=5)
# The unguessable part of the delivery-report and incoming-message URLs (set both on AT's
# dashboard: {SITE_URL}/api/sms/delivery/<token>/ and /api/sms/incoming/<token>/).
SMS_CALLBACK_TOKEN = (
    env_secret("SMS_CALLBACK_TOKEN")
    or hmac.new(SECRET_KEY.encode(), b"sms-callback-url", hashlib.sha256).hexdigest()[:40]
)
# Invitations say "or reply YES 4821" only when AT sends our shortcode's messages to us.
SMS_REPLIES_ENABLED = env_bool("SMS_REPLIES_ENABLED", False)
SMS_CALLBACK_MAX_BYTES = env.int("SMS_CALLBACK_MAX_BYTES", default=8192)
# Failed processing attempts before an SMS callback is quarantined for a person.
SMS_CALLBACK_MAX_ATTEMPTS = env.int("SMS_CALLBACK_MAX_ATTEMPTS", default=5)
if SMS_ENABLED and not DEBUG and not AT_API_KEY:
    raise ImproperlyConfigured(
        "SMS_ENABLED needs AT_API_KEY (or AT_API_KEY_FILE): the Africa's Talking API key."
    )

# --- WhatsApp (Meta's WhatsApp Business Cloud API) --------------------------------------------
# Off until the company has a WhatsApp Business number with approved templates; then members
# who choose WhatsApp on their Account page get their messages there (SMS, then email, when
# WhatsApp cannot reach them). See MPESA_CRM_IMPLEMENTATION.md, "WhatsApp go-live".
WHATSAPP_ENABLED = env_bool("WHATSAPP_ENABLED", False)
WHATSAPP_BASE_URL = env.str("WHATSAPP_BASE_URL", default="https://graph.facebook.com").rstrip("/")
# Pinned: webhook bodies also depend on the version the app is subscribed with.
WHATSAPP_GRAPH_VERSION = env.str("WHATSAPP_GRAPH_VERSION", default="v24.0")
WHATSAPP_PHONE_NUMBER_ID = env.str("WHATSAPP_PHONE_NUMBER_ID", default="")
WHATSAPP_WABA_ID = env.str("WHATSAPP_WABA_ID", default="")
# A system user's token (long-lived), not a user token from the App Dashboard (hours).
WHATSAPP_ACCESS_TOKEN = env_secret("WHATSAPP_ACCESS_TOKEN")
# Keys the X-Hub-Signature-256 HMAC of every webhook POST (App Dashboard, Settings, Basic).
WHATSAPP_APP_SECRET = env_secret("WHATSAPP_APP_SECRET")
# Typed into the App Dashboard's "Verify token" field; used only by the GET handshake.
WHATSAPP_VERIFY_TOKEN = env_secret("WHATSAPP_VERIFY_TOKEN")
WHATSAPP_CONNECT_TIMEOUT = env.float("WHATSAPP_CONNECT_TIMEOUT", default=3.05)
WHATSAPP_READ_TIMEOUT = env.float("WHATSAPP_READ_TIMEOUT", default=10.05)
WHATSAPP_MAX_ATTEMPTS = env.int("WHATSAPP_MAX_ATTEMPTS", default=5)
# Meta batches up to 1,000 updates in one POST.
WHATSAPP_WEBHOOK_MAX_BYTES = env.int("WHATSAPP_WEBHOOK_MAX_BYTES", default=1_048_576)
WHATSAPP_WEBHOOK_MAX_ATTEMPTS = env.int("WHATSAPP_WEBHOOK_MAX_ATTEMPTS", default=5)
if WHATSAPP_ENABLED and not DEBUG:
    _missing = [
        name
        for name in (
            "WHATSAPP_PHONE_NUMBER_ID",
            "WHATSAPP_ACCESS_TOKEN",
            "WHATSAPP_APP_SECRET",
            "WHATSAPP_VERIFY_TOKEN",
        )
        if not globals()[name]
    ]
    if _missing:
        raise ImproperlyConfigured(f"WHATSAPP_ENABLED needs {', '.join(_missing)}.")

# --- Web push (the app's notifications) -----------------------------------------------------
# The VAPID private key, base64url of its 32 raw bytes: `python manage.py vapid_keys` makes a
# pair. Made once and kept: a new key makes every member's phone subscribe again.
VAPID_PRIVATE_KEY = env_secret("VAPID_PRIVATE_KEY")
# How a push service's operator reaches us (RFC 8292: mailto: or https:).
VAPID_SUBJECT = env.str("VAPID_SUBJECT", default="mailto:crew@soundfusion.co.ke")
WEBPUSH_ENABLED = bool(VAPID_PRIVATE_KEY)
WEBPUSH_TIMEOUT = env.float("WEBPUSH_TIMEOUT", default=10.0)
WEBPUSH_MAX_ATTEMPTS = env.int("WEBPUSH_MAX_ATTEMPTS", default=5)
# How long a push service keeps a notification for a phone that is off (seconds).
WEBPUSH_TTL_SECONDS = env.int("WEBPUSH_TTL_SECONDS", default=6 * 3600)

# --- M-Pesa (Daraja) ----------------------------------------------------------------------
MPESA_ENVIRONMENT = env.str("MPESA_ENVIRONMENT", default="sandbox")
if MPESA_ENVIRONMENT not in {"sandbox", "production"}:
    raise ImproperlyConfigured("MPESA_ENVIRONMENT must be 'sandbox' or 'production'.")
MPESA_BASE_URL = env.str("MPESA_BASE_URL", default="").rstrip("/")
MPESA_CONSUMER_KEY = env_secret("MPESA_CONSUMER_KEY")
MPESA_CONSUMER_SECRET = env_secret("MPESA_CONSUMER_SECRET")
MPESA_BUSINESS_SHORT_CODE = env.str("MPESA_BUSINESS_SHORT_CODE", default="174379")
MPESA_PASS_KEY = env_secret("MPESA_PASS_KEY")
# Public base of the callback endpoint; the secret token is appended. Daraja's docs advise
# against the words "mpesa" and "safaricom" in callback URLs, hence /api/payments/callback.
MPESA_CALLBACK_URL = env.str(
    "MPESA_CALLBACK_URL", default=f"{SITE_URL}/api/payments/callback"
).rstrip("/")
# The unguessable part of the callback URL. Derived from SECRET_KEY unless set.
MPESA_CALLBACK_TOKEN = (
    env_secret("MPESA_CALLBACK_TOKEN")
    or hmac.new(SECRET_KEY.encode(), b"mpesa-callback-url", hashlib.sha256).hexdigest()[:40]
)
if not DEBUG:
    # Without them every prompt fails at the customer's expense of a wasted tap; better that
    # the deploy fails, naming what to set (each may also be given as <NAME>_FILE).
    _missing = [
        name
        for name, value in (
            ("MPESA_CONSUMER_KEY", MPESA_CONSUMER_KEY),
            ("MPESA_CONSUMER_SECRET", MPESA_CONSUMER_SECRET),
            ("MPESA_PASS_KEY", MPESA_PASS_KEY),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"{', '.join(_missing)} not set: production needs the Daraja credentials "
            "(from the Daraja portal; each may be given as <NAME>_FILE, a file holding it)."
        )
    if MPESA_ENVIRONMENT == "production" and MPESA_BUSINESS_SHORT_CODE == "174379":
        raise ImproperlyConfigured(
            "MPESA_BUSINESS_SHORT_CODE is the sandbox's 174379: set the company's paybill or "
            "till for MPESA_ENVIRONMENT=production."
        )
MPESA_TRANSACTION_TYPE = env.str("MPESA_TRANSACTION_TYPE", default="CustomerPayBillOnline")
if MPESA_TRANSACTION_TYPE not in {"CustomerPayBillOnline", "CustomerBuyGoodsOnline"}:
    raise ImproperlyConfigured(
        "MPESA_TRANSACTION_TYPE must be CustomerPayBillOnline or CustomerBuyGoodsOnline."
    )
MPESA_TILL_NUMBER = env.str("MPESA_TILL_NUMBER", default="")  # PartyB for buy-goods
MPESA_CONNECT_TIMEOUT = env.float("MPESA_CONNECT_TIMEOUT", default=3.05)
MPESA_READ_TIMEOUT = env.float("MPESA_READ_TIMEOUT", default=15.0)
# Reconciliation: ask Daraja about payments pending longer than this ...
MPESA_QUERY_AFTER_SECONDS = env.int("MPESA_QUERY_AFTER_SECONDS", default=90)
# ... and give up on those with no answer after this long (a late callback still completes).
MPESA_PENDING_TIMEOUT_SECONDS = env.int("MPESA_PENDING_TIMEOUT_SECONDS", default=900)
# The reconciler asks this many at once, at most this many a second (under Daraja's limits).
MPESA_RECONCILE_CONCURRENCY = env.int("MPESA_RECONCILE_CONCURRENCY", default=8)
MPESA_RECONCILE_PER_SECOND = env.float("MPESA_RECONCILE_PER_SECOND", default=20.0)
# Callbacks larger than this are kept (truncated) and refused as malformed.
MPESA_CALLBACK_MAX_BYTES = env.int("MPESA_CALLBACK_MAX_BYTES", default=64 * 1024)
# A stored callback whose processing fails this many times is quarantined for a person.
MPESA_CALLBACK_MAX_ATTEMPTS = env.int("MPESA_CALLBACK_MAX_ATTEMPTS", default=5)
# Prompts (STK pushes) per requester and per phone number within the window. Staff who may
# collect payments are not limited per requester (a bulk request prompts every member), but
# no phone is prompted more often than the per-phone limit, whoever asks.
MPESA_PROMPT_LIMIT_WINDOW_SECONDS = env.int("MPESA_PROMPT_LIMIT_WINDOW_SECONDS", default=600)
MPESA_PROMPT_LIMIT_PER_REQUESTER = env.int("MPESA_PROMPT_LIMIT_PER_REQUESTER", default=5)
MPESA_PROMPT_LIMIT_PER_PHONE = env.int("MPESA_PROMPT_LIMIT_PER_PHONE", default=3)
# Background jobs that call Daraja (bulk prompts, status checks): this many at once, at most
# this many starts a second; a spike-arrest answer halves the pace.
MPESA_BULK_CONCURRENCY = env.int("MPESA_BULK_CONCURRENCY", default=4)
MPESA_BULK_PER_SECOND = env.float("MPESA_BULK_PER_SECOND", default=5.0)
# The whole deployment's Daraja rate: calls a second per Daraja app and API family (STK push,
# STK query, B2C, Transaction Status, Account Balance, C2B, reversal), shared in Redis by every
# job, reconciler and request on every node (attendance/mpesa/rate.py). DARAJA_RATES sets a
# family apart, e.g. "stk_push=10,transaction_status=2".
DARAJA_RATE_PER_SECOND = env.float("DARAJA_RATE_PER_SECOND", default=20.0)
DARAJA_RATES = {
    family: float(value) for family, value in env.dict("DARAJA_RATES", default={}).items()
}

# --- M-Pesa Paybill payments from the SIM menu (C2B) and Pull Transactions --------------
# The Paybill members pay from the SIM menu, with their account code as the account number.
# Empty: not offered (no "Pay by Paybill" line) and nothing registered.
MPESA_C2B_SHORT_CODE = env.str("MPESA_C2B_SHORT_CODE", default="")
# v1 (MSISDN hashed) or v2 (masked): whichever C2B product the Daraja app has.
MPESA_C2B_API_VERSION = env.str("MPESA_C2B_API_VERSION", default="v2")
if MPESA_C2B_API_VERSION not in {"v1", "v2"}:
    raise ImproperlyConfigured("MPESA_C2B_API_VERSION must be v1 or v2.")
# What M-Pesa does when our validation URL does not answer in time: Completed or Cancelled.
MPESA_C2B_RESPONSE_TYPE = env.str("MPESA_C2B_RESPONSE_TYPE", default="Completed")
if MPESA_C2B_RESPONSE_TYPE not in {"Completed", "Cancelled"}:
    raise ImproperlyConfigured("MPESA_C2B_RESPONSE_TYPE must be Completed or Cancelled.")
# Public base of the confirmation and validation URLs; the token is appended. No "mpesa",
# "safaricom", "query" (and a few more words) anywhere in it: Daraja refuses them.
MPESA_C2B_URL = env.str("MPESA_C2B_URL", default=f"{SITE_URL}/api/paybill").rstrip("/")
MPESA_C2B_TOKEN = (
    env_secret("MPESA_C2B_TOKEN")
    or hmac.new(SECRET_KEY.encode(), b"mpesa-c2b-url", hashlib.sha256).hexdigest()[:40]
)
# With validation enabled by Safaricom: refuse an account number that names no member
# (C2B00012). Off: accept it and keep the payment for Finance's unattributed queue.
MPESA_C2B_REJECT_UNKNOWN = env_bool("MPESA_C2B_REJECT_UNKNOWN", False)
# Pull Transactions (production shortcodes only): ask for the last hours' payments to find
# those whose confirmation never came. Needs a one-time registration (manage.py
# paybill_register --pull) with the number in the shortcode's KYC.
MPESA_PULL_ENABLED = env_bool("MPESA_PULL_ENABLED", False)
MPESA_PULL_HOURS = env.int("MPESA_PULL_HOURS", default=3)
if not 1 <= MPESA_PULL_HOURS <= 47:
    raise ImproperlyConfigured("MPESA_PULL_HOURS must be 1 to 47 (Pull keeps 48 hours).")
MPESA_PULL_NOMINATED_NUMBER = env.str("MPESA_PULL_NOMINATED_NUMBER", default="")

# Reversals of Paybill payments: the API operator with the "Org Reversals Initiator" role
# (the B2C operator when unset; the SecurityCredential uses MPESA_B2C_CERTIFICATE).
MPESA_REVERSAL_INITIATOR_NAME = env.str("MPESA_REVERSAL_INITIATOR_NAME", default="")
MPESA_REVERSAL_INITIATOR_PASSWORD = env_secret("MPESA_REVERSAL_INITIATOR_PASSWORD")
# Public base of the reversal result and timeout URLs; the token is appended.
MPESA_REVERSAL_RESULT_URL = env.str(
    "MPESA_REVERSAL_RESULT_URL", default=f"{SITE_URL}/api/reversals"
).rstrip("/")
MPESA_REVERSAL_RESULT_TOKEN = (
    env_secret("MPESA_REVERSAL_RESULT_TOKEN")
    or hmac.new(SECRET_KEY.encode(), b"mpesa-reversal-url", hashlib.sha256).hexdigest()[:40]
)

# --- M-Pesa B2C payouts ------------------------------------------------------------------
# Production B2C usually has its own Daraja app and shortcode; each defaults to the STK one.
MPESA_B2C_SHORT_CODE = env.str("MPESA_B2C_SHORT_CODE", default="600997")
MPESA_B2C_CONSUMER_KEY = env_secret("MPESA_B2C_CONSUMER_KEY") or MPESA_CONSUMER_KEY
MPESA_B2C_CONSUMER_SECRET = env_secret("MPESA_B2C_CONSUMER_SECRET") or MPESA_CONSUMER_SECRET
# The API operator ("ORG B2C API initiator") and the password the SecurityCredential is
# made from, with Safaricom's certificate for the environment: a path or the PEM itself.
MPESA_B2C_INITIATOR_NAME = env.str("MPESA_B2C_INITIATOR_NAME", default="")
MPESA_B2C_INITIATOR_PASSWORD = env_secret("MPESA_B2C_INITIATOR_PASSWORD")
MPESA_B2C_CERTIFICATE = env_secret("MPESA_B2C_CERTIFICATE")
MPESA_B2C_COMMAND_ID = env.str("MPESA_B2C_COMMAND_ID", default="BusinessPayment")
# Public base of the result URLs (result, timeout, status, balance); the token is appended.
MPESA_B2C_RESULT_URL = env.str("MPESA_B2C_RESULT_URL", default=f"{SITE_URL}/api/payouts").rstrip(
    "/"
)
MPESA_B2C_RESULT_TOKEN = (
    env_secret("MPESA_B2C_RESULT_TOKEN")
    or hmac.new(SECRET_KEY.encode(), b"mpesa-b2c-result-url", hashlib.sha256).hexdigest()[:40]
)
# Ask Transaction Status about a payout with no result this long after its POST; flag it for
# a person after this many questions without an answer that settles it.
PAYOUT_QUERY_AFTER_SECONDS = env.int("PAYOUT_QUERY_AFTER_SECONDS", default=180)
PAYOUT_REVIEW_AFTER_CHECKS = env.int("PAYOUT_REVIEW_AFTER_CHECKS", default=6)
# How long submitting a pay run waits for Account Balance's answer (the float check).
PAYOUT_FLOAT_WAIT_SECONDS = env.int("PAYOUT_FLOAT_WAIT_SECONDS", default=30)
PAYOUT_MAX_BYTES = env.int("PAYOUT_MAX_BYTES", default=65536)
# A stored payout result whose processing fails this many times is quarantined for a person.
PAYOUT_RESULT_MAX_ATTEMPTS = env.int("PAYOUT_RESULT_MAX_ATTEMPTS", default=5)
# A payout to a number changed this recently waits for a second Finance approval.
PAYOUT_NEW_NUMBER_HOLD_DAYS = env.int("PAYOUT_NEW_NUMBER_HOLD_DAYS", default=7)

# --- Background jobs ----------------------------------------------------------------------
# A second press of the same bulk action (same person, kind and targets) within this many
# seconds lands on the job the first press started.
JOB_REPEAT_WINDOW_SECONDS = env.int("JOB_REPEAT_WINDOW_SECONDS", default=60)
