"""The layout holds: no import circle in attendance/, no import from a lower layer to a higher
one, and the provider clients behind the services. Every import counts, those inside functions
too (a "lazy" import is still a dependency).

Layers, lowest first:
0. models, phone numbers, calendar files, the provider clients (attendance.mpesa for Daraja,
   attendance.sms for Africa's Talking): no services;
1. services: the only writers, grouped by domain in packages, themselves in an order (lowest
   first, `SERVICE_PACKAGES`): a package imports only packages below it, so none imports one
   that imports it back;
2. what people and machines call: views, admin, tasks, forms, commands, template tags.

Run alone: `python -m pytest tests/test_architecture.py -q`.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "attendance"
BASE = (
    "attendance.models",
    "attendance.mpesa",
    "attendance.sms",
    "attendance.phones",
    "attendance.ics",
    "attendance.wording",
    "attendance.simulators",
    "attendance.whatsapp",
    "attendance.push",
    "attendance.account_codes",
    "attendance.venue_codes",
    "attendance.venue_location",
    "attendance.redis_client",
    "attendance.metrics",
)
SERVICES = ("attendance.services",)
# The service packages, lowest first. `ledger` and `attendance` are single modules at the
# bottom of the domains; `core` (outbox, inbox, queueing, pacing, audit) knows no domain.
SERVICE_PACKAGES = (
    "core",
    "ledger",
    "attendance",
    "messaging",
    "people",
    "pay",
    "crew",
    "payments",
    "payouts",
    "jobs",
    "ops",
)
# The packages build the clients; their modules are wire detail.
CLIENT = ("attendance.mpesa", "attendance.sms")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path for path in APP.rglob("*.py") if "migrations" not in path.parts
    }


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # `from package import submodule` depends on the submodule.
            targets = [
                f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `attendance.models.X` -> the module
                target = target.rpartition(".")[0]
            if target.startswith("attendance") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    if module.startswith(BASE):
        return 0
    if module.startswith(SERVICES):
        return 1
    return 2


def test_there_is_no_import_circle_in_the_app():
    graph = _graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            # A package's __init__ re-exporting its own modules is not a circle.
            real = {m for m in component if not any(o.startswith(m + ".") for o in component)}
            if len(component) > 1 and len(real) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert circles == []


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_the_daraja_client_is_used_only_by_services():
    outside = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if target.startswith(CLIENT)
        and not target.endswith(".simulator")  # the local stand-in, run by commands
        and not module.startswith((*SERVICES, *CLIENT))
    ]
    assert outside == []


def test_the_daraja_client_knows_nothing_of_models_or_services():
    reaching_up = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.startswith(CLIENT)
        for target in targets
        if target.startswith(("attendance.models", *SERVICES))
    ]
    assert reaching_up == []


def test_the_walk_sees_the_imports_it_judges():
    # Guards the guard: a lazy import inside a function and a relative one are both found.
    graph = _graph()
    assert "attendance.services.payments.settlement" in graph["attendance.services.payments.inbox"]
    assert "attendance.mpesa.client" in graph["attendance.services.payments.prompts"]
    assert "attendance.services.people.roles" in graph["attendance.apps"]  # imported in a function


def _service_package(module: str) -> str | None:
    if not module.startswith("attendance.services."):
        return None
    return module.split(".")[2]


def test_every_service_module_is_in_a_known_package():
    unplaced = sorted(
        module
        for module in _modules()
        if (package := _service_package(module)) and package not in SERVICE_PACKAGES
    )
    assert unplaced == []


def test_service_packages_import_only_packages_below_them():
    order = {package: rank for rank, package in enumerate(SERVICE_PACKAGES)}
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if (package := _service_package(module)) in order
        for target in targets
        if (other := _service_package(target)) in order
        and other != package
        and order[other] > order[package]
    )
    assert upward == []


def test_no_test_module_is_imported_by_another():
    """Shared helpers live in tests/support/; a test module is never a library."""
    imported = sorted(
        f"{path.name} imports {target}"
        for path in (ROOT / "tests").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom | ast.Import)
        for target in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
        )
        if target.startswith("tests.test_")
    )
    assert imported == []
