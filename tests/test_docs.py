"""The documents stay true to the code: each periodic task, message type and environment
variable the code has is documented for its reader, links between documents resolve, the
README stays short, and no code comment sends a reader to a file outside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = {
    "readme": ROOT / "README.md",
    "crew": ROOT / "docs" / "crew-and-managers.md",
    "operations": ROOT / "docs" / "operations.md",
    "architecture": ROOT / "docs" / "architecture.md",
    "reference": ROOT / "MPESA_CRM_IMPLEMENTATION.md",
}


def _text(name: str) -> str:
    return DOCS[name].read_text()


def _environment_variables() -> set[str]:
    """Every variable settings.py reads: env("X"), env.int("X"), env_bool("X"), env_secret."""
    settings = (ROOT / "soundfusion_attendance" / "settings.py").read_text()
    return set(re.findall(r'\benv(?:\.\w+|_bool|_secret)?\(\s*"([A-Z][A-Z0-9_]*)"', settings))


def test_the_walk_finds_the_variables_settings_reads():
    found = _environment_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "SMS_CALLBACK_MAX_ATTEMPTS", "AXES_ENABLED"} <= found
    assert len(found) > 100


def test_every_environment_variable_is_in_the_operators_configuration():
    operations = _text("operations")
    missing = sorted(v for v in _environment_variables() if f"`{v}`" not in operations)
    assert missing == []


@pytest.mark.django_db
def test_every_periodic_task_is_in_the_operators_beat_schedule():
    from attendance.services.ops.schedules import PERIODIC_TASKS

    operations = _text("operations")
    missing = [
        task
        for description, (task, every) in PERIODIC_TASKS.items()
        if f"| {description} | {every} s | `{task}` |" not in operations
    ]
    assert missing == []


def test_every_message_type_is_in_the_table_crew_and_managers_read():
    from attendance.models import MessageType
    from attendance.services.messaging.sms import SMS_TYPES

    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(
            r"^\| `(\w+)` \|.*\| ([^|]+) \|$", _text("crew"), flags=re.MULTILINE
        )
    }
    assert sorted(set(MessageType.values) - set(rows)) == []
    # A type that may go by text says so; one that never does does not claim it.
    for value in MessageType.values:
        channel = rows[value].strip()
        assert (channel != "email") == (value in SMS_TYPES), (value, channel)


def test_the_readme_opens_with_the_two_commands_and_stays_short():
    readme = _text("readme")
    lines = readme.splitlines()
    assert 80 <= len(lines) <= 150
    block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]
    assert readme.index("```sh") < readme.index("##")  # before any section
    for name in ("crew", "operations", "architecture", "reference"):
        assert DOCS[name].relative_to(ROOT).as_posix() in readme


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_relative_link_in_the_documents_resolves(name):
    path = DOCS[name]
    broken = [
        target
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
        and not (path.parent / target).exists()
    ]
    assert broken == []


def test_the_documents_name_only_code_paths_that_exist():
    named = set()
    for name in DOCS:
        named |= set(
            re.findall(
                r"`((?:attendance|tests|bench|soundfusion_attendance)/[\w/.-]+)`", _text(name)
            )
        )
    missing = sorted(p for p in named if not (ROOT / p).exists() and "<" not in p)
    assert missing == []


def test_no_code_comment_points_at_files_outside_the_repository():
    outside = re.compile(
        r"\.\./shared|\b(?:DARAJA|AFRICASTALKING|WHATSAPP|WEBPUSH|KENYA_PAYROLL)\.md"
    )
    found = [
        f"{path.relative_to(ROOT)}"
        for folder in ("attendance", "soundfusion_attendance", "tests", "bench", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".html", ".txt", ".js"}
        and path != Path(__file__)
        and outside.search(path.read_text(errors="replace"))
    ]
    assert found == []
