"""Production settings are checked in a fresh interpreter, as a deployment would load them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "x7Kq9vLp2mN8rT4wZ6bY1cF5hJ3dG0sA-qwErTyUiOpAsDfGhJkLzXcVbNm_1234"
DARAJA = {
    "MPESA_CONSUMER_KEY": "consumer-key",
    "MPESA_CONSUMER_SECRET": "consumer-secret",
    "MPESA_PASS_KEY": "pass-key",
}
# Production's shared cache and broker (settings are only read: nothing connects to it).
SHARED = {"REDIS_URL": "redis://127.0.0.1:6379/9"}


def manage(*args, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DJANGO_", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "MPESA_", "REDIS_", "CELERY_")
        )
    }
    base.update(DARAJA)
    base.update(SHARED)
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="crew.soundfusion.co.ke",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", DEBUG="False", ALLOWED_HOSTS="crew.soundfusion.co.ke")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = manage(
        "check", DEBUG="False", SECRET_KEY="short", ALLOWED_HOSTS="crew.soundfusion.co.ke"
    )
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_production_refuses_empty_allowed_hosts():
    result = manage("check", DEBUG="False", SECRET_KEY=STRONG_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is empty" in result.stderr


def test_production_refuses_a_per_process_cache_or_in_process_tasks_unless_one_box():
    """Several processes (or machines) without Redis would each keep their own locks and run
    tasks inside web requests: refused, unless SINGLE_BOX says it is one machine on purpose."""
    production = {"DEBUG": "False", "SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "crew.example"}
    no_redis = manage("check", **production, REDIS_URL="")
    assert no_redis.returncode != 0
    assert "Production needs REDIS_URL (a cache every process shares)" in no_redis.stderr
    assert "CELERY_BROKER_URL or REDIS_URL (a broker for the workers)" in no_redis.stderr
    assert "SINGLE_BOX=True" in no_redis.stderr
    eager = manage("check", **production, CELERY_TASK_ALWAYS_EAGER="True")
    assert eager.returncode != 0 and "a broker for the workers" in eager.stderr
    one_box = manage("check", **production, REDIS_URL="", SINGLE_BOX="True")
    assert one_box.returncode == 0, one_box.stderr
    shared = manage("check", **production)
    assert shared.returncode == 0, shared.stderr


def test_a_boolean_that_is_not_true_or_false_is_refused():
    result = manage("check", DEBUG="ture")
    assert result.returncode != 0
    assert "DEBUG must be True or False" in result.stderr


def test_development_defaults(settings):
    assert settings.TIME_ZONE == "Africa/Nairobi"
    assert settings.USE_TZ is True
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    assert settings.CELERY_RESULT_BACKEND == "django-db"


def test_the_wsgi_entry_point_leaves_startup_objects_out_of_full_collections():
    # In a fresh interpreter, as gunicorn loads it: tens of thousands of long-lived objects
    # that a full collection would otherwise walk mid-request.
    code = "import gc, soundfusion_attendance.wsgi; print(gc.get_freeze_count())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "soundfusion_attendance.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 10_000


def test_production_refuses_to_start_without_the_daraja_credentials():
    result = manage(
        "check",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="crew.soundfusion.co.ke",
        MPESA_CONSUMER_SECRET="",
        MPESA_PASS_KEY="",
    )
    assert result.returncode != 0
    assert "MPESA_CONSUMER_SECRET, MPESA_PASS_KEY not set" in result.stderr


def test_production_on_the_live_daraja_refuses_the_sandbox_short_code():
    result = manage(
        "check",
        DEBUG="False",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="crew.soundfusion.co.ke",
        MPESA_ENVIRONMENT="production",
    )
    assert result.returncode != 0
    assert "sandbox's 174379" in result.stderr


def test_secrets_may_be_given_as_files(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(STRONG_KEY + "\n")  # as `echo ... > file` writes it
    pass_key_file = tmp_path / "pass_key"
    pass_key_file.write_text("from-a-file\n")
    code = (
        "from django.conf import settings; import django; django.setup(); "
        f"print(repr(settings.SECRET_KEY == {STRONG_KEY!r}), repr(settings.MPESA_PASS_KEY))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "MPESA_"))},
        **DARAJA,
        **SHARED,
        "DJANGO_SETTINGS_MODULE": "soundfusion_attendance.settings",
        "DEBUG": "False",
        "ALLOWED_HOSTS": "crew.soundfusion.co.ke",
        "SECRET_KEY_FILE": str(secret_file),
        "MPESA_PASS_KEY_FILE": str(pass_key_file),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "'from-a-file'"]

    env["SECRET_KEY_FILE"] = str(tmp_path / "missing")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY_FILE=" in result.stderr and "cannot be read" in result.stderr
