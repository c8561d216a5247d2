"""The deployment artefacts agree with the code (issue 30). No image can be built here (no
registry is reachable), so what can be checked is checked: every compose service built from our
image runs a role the entrypoint knows, every variable compose or a unit sets is one the
settings (or the entrypoint and gunicorn's config) read, the Dockerfile ends in the entrypoint
with a health check on the liveness URL, and the entrypoint's roles start on this host."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "soundfusion_attendance" / "deploy"
ENTRYPOINT = DEPLOY / "entrypoint"
ROLES = {"web", "worker", "beat", "migrate", "manage"}
PURPOSES = {"money", "messages", "background", "default"}


def _read_by_code() -> set[str]:
    """Every environment variable the code reads: env.X("NAME"), env_secret("NAME"),
    env_bool("NAME"), os.environ.get("NAME") / os.environ["NAME"] and ${NAME in the scripts."""
    names: set[str] = set()
    sources = [
        ROOT / "soundfusion_attendance" / "settings.py",
        DEPLOY / "gunicorn.conf.py",
        ROOT / "soundfusion_attendance" / "queues.py",
    ]
    pattern = re.compile(
        r"""(?:env\.\w+|env_secret|env_bool|env|os\.environ\.get|os\.getenv)\(\s*["']([A-Z0-9_]+)["']"""
        r"""|os\.environ\[["']([A-Z0-9_]+)["']\]"""
    )
    for source in sources:
        for match in pattern.finditer(source.read_text()):
            names.add(match.group(1) or match.group(2))
    names |= set(re.findall(r"\$\{([A-Z0-9_]+)", ENTRYPOINT.read_text()))
    return names


def _our_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("soundfusion")
    }


def test_every_compose_service_of_ours_runs_a_known_role_with_known_settings():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ours = _our_services(compose)
    assert {"migrate", "web1", "web2", "beat"} <= set(ours)
    read = _read_by_code()
    roles = []
    for name, service in ours.items():
        command = service["command"]
        role, args = command[0], command[1:]
        assert role in ROLES, (name, role)
        if role == "worker":
            assert set(args) <= PURPOSES, (name, args)
        roles.append(role)
        unknown = sorted(set(service.get("environment", {})) - read)
        assert unknown == [], f"{name} sets variables nothing reads: {unknown}"
    assert roles.count("beat") == 1  # exactly one beat
    assert roles.count("web") >= 2
    # Every purpose has a worker.
    served = {p for s in ours.values() if s["command"][0] == "worker" for p in s["command"][1:]}
    assert served == PURPOSES
    # The third-party services the topology needs are there.
    assert {"postgres", "redis", "minio", "nginx"} <= set(compose["services"])


def test_the_systemd_units_use_the_entrypoint_and_known_roles():
    read = _read_by_code()
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert len(units) == 4
    for unit in units:
        text = unit.read_text()
        exec_start = re.search(r"^ExecStart=(.+)$", text, re.M).group(1)
        assert "/soundfusion_attendance/deploy/entrypoint" in exec_start
        role = re.search(r"entrypoint (\w+)", exec_start).group(1)
        assert role in ROLES
        for name in re.findall(r"^Environment=([A-Z_]+)=", text, re.M):
            assert name in read, (unit.name, name)


def test_the_dockerfile_is_multi_stage_non_root_with_static_files_and_a_health_check():
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^USER soundfusion$", text, re.M)
    assert "collectstatic" in text
    assert "HEALTHCHECK" in text and "/api/health/" in text
    assert 'ENTRYPOINT ["/app/soundfusion_attendance/deploy/entrypoint"]' in text
    # The health check's URL is the liveness view.
    from django.urls import resolve

    assert resolve("/api/health/").url_name == "health"


def _entrypoint(*args, **env):
    return subprocess.run(
        [str(ENTRYPOINT), *args],
        env={**os.environ, "PYTHON": str(Path(os.sys.executable)), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_entrypoint_refuses_an_unknown_role_or_purpose():
    result = _entrypoint("dance")
    assert result.returncode == 64 and "usage" in result.stderr
    result = _entrypoint("worker", "payroll")
    assert result.returncode != 0 and "unknown purpose payroll" in result.stderr


def test_the_entrypoint_runs_manage_commands_from_any_directory(tmp_path):
    result = subprocess.run(
        [str(ENTRYPOINT), "manage", "check"],
        env={**os.environ, "PYTHON": os.sys.executable},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_probes_on_plain_http_are_answered_not_redirected_to_https(client, settings):
    """The image's HEALTHCHECK and the balancer ask a node over plain HTTP: a redirect to
    https://127.0.0.1:8000 would fail them. Everything else is still redirected."""
    import re as regex

    from soundfusion_attendance import settings as configured

    exempt = getattr(configured, "SECURE_REDIRECT_EXEMPT", None)
    if exempt is None:  # this process runs with DEBUG: read what production sets
        text = (ROOT / "soundfusion_attendance" / "settings.py").read_text()
        exempt = [regex.search(r'SECURE_REDIRECT_EXEMPT = \[r"([^"]+)"\]', text).group(1)]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = exempt
    assert client.get("/api/health/").status_code == 200
    assert client.get("/api/metrics/").status_code == 200  # from loopback
    assert client.get("/login/").status_code == 301
