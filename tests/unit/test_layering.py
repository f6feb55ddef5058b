"""The import plan, held by reading every module's imports (lazy ones inside functions too).

Layers, lowest first:

- **face** — the package root ``baton``: the core, and ``baton.Client`` (imported on first use);
- **core** — pure data and rules (model, records, states, planner, spec, params, settings,
  errors…): imports only the core;
- **backends** — where state lives: imports only the core and itself;
- **services** — controller, workers, display, the HTTP app and its clients: the core plus
  ``baton.backends.protocol``, never a concrete backend, so an HTTP transport can stand in for
  the database behind them;
- **entry points** — the command line, bench, test tools: anything; only they open a backend.

Nothing imports the command line but ``python -m baton``. A new module must be given a layer
here, which is the point: where it sits is decided, not drifted into.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "baton"

CORE = {
    "baton.model", "baton.records", "baton.states", "baton.planner", "baton.errors", "baton.settings",
    "baton.params", "baton.spec", "baton.yamlload", "baton.diagnose", "baton.builder", "baton.context",
    "baton.faults", "baton.access",
}  # fmt: skip
SERVICES = {"baton.controller", "baton.local", "baton.display", "baton.benchtasks", "baton.client"}
SERVICE_PACKAGES = ("baton.worker", "baton.api", "baton.remote", "baton.ui")
ENTRY_POINTS = {
    "baton.cli",
    "baton.cli_types",
    "baton.__main__",
    "baton.bench",
    "baton.bench_remote",
    "baton.testing",
    "baton.server",
    "baton.cli_server",
    "baton.cli_common",
    "baton.cli_remote",
    "baton.cli_show",
    "baton.cli_dev",
    "baton.dev",
}
PROTOCOL = "baton.backends.protocol"
CONCRETE = {"baton.backends.sqlite", "baton.backends.postgres"}
HOW_TO_OPEN = "open a store with baton.backends.open_backend"


FACE = "baton"
CLIENT = "baton.client"


def layer(module: str) -> str:
    if module == FACE:
        return "face"
    if module in CORE:
        return "core"
    if module == "baton.backends" or module.startswith("baton.backends."):
        return "backends"
    if module in SERVICES or any(module == p or module.startswith(f"{p}.") for p in SERVICE_PACKAGES):
        return "services"
    if module in ENTRY_POINTS:
        return "entry"
    return "unplaced"


ALLOWED = {
    "face": lambda target: layer(target) == "core" or target == CLIENT,
    "core": lambda target: layer(target) == "core",
    "backends": lambda target: layer(target) in ("core", "backends"),
    "services": lambda target: layer(target) in ("core", "services") or target == PROTOCOL,
    "entry": lambda target: True,
}


def package_sources() -> dict[str, str]:
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        sources[name] = path.read_text(encoding="utf-8")
    return sources


def imports(source: str, known: Iterable[str]) -> set[str]:
    """The baton modules ``source`` imports (``from baton import x`` counts as baton.x when x is one)."""
    modules = set(known)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= subs or {node.module}
    return {m for m in found if m == "baton" or m.startswith("baton.")}


def violations(sources: Mapping[str, str]) -> list[str]:
    problems = []
    for module, source in sources.items():
        kind = layer(module)
        if kind == "unplaced":
            problems.append(f"{module} has no layer: add it to tests/unit/test_layering.py")
            continue
        for target in sorted(imports(source, sources)):
            if not ALLOWED[kind](target):
                problems.append(f"{module} ({kind}) imports {target} ({layer(target)})")
            if target in CONCRETE and module != "baton.backends":
                problems.append(f"{module} imports the concrete {target}: {HOW_TO_OPEN}")
            if target == "baton.cli" and module != "baton.__main__":
                problems.append(f"{module} imports the command line")
    return problems


def test_the_package_keeps_its_layers() -> None:
    sources = package_sources()
    assert {"baton.backends.sql", "baton.controller", "baton.worker.loop", "baton.cli"} <= set(sources)
    assert violations(sources) == []


def test_a_backend_importing_the_command_line_is_caught() -> None:
    sources = package_sources()
    sources["baton.backends.sql"] += "\n\ndef _late() -> None:\n    from baton import cli\n"
    assert violations(sources) == [
        "baton.backends.sql (backends) imports baton.cli (entry)",
        "baton.backends.sql imports the command line",
    ]


def test_the_core_importing_a_backend_is_caught() -> None:
    sources = package_sources()
    sources["baton.planner"] += "\nimport baton.backends.sqlite\n"
    assert violations(sources) == [
        "baton.planner (core) imports baton.backends.sqlite (backends)",
        f"baton.planner imports the concrete baton.backends.sqlite: {HOW_TO_OPEN}",
    ]


def test_a_service_typed_against_the_concrete_backend_is_caught() -> None:
    sources = package_sources()
    sources["baton.controller"] += "\nfrom baton.backends.sql import SqlBackend\n"
    sources["baton.worker.loop"] += "\nfrom baton.backends import open_backend\n"
    assert violations(sources) == [
        "baton.controller (services) imports baton.backends.sql (backends)",
        "baton.worker.loop (services) imports baton.backends (backends)",
    ]


def test_the_package_root_may_reach_the_client_and_no_other_service() -> None:
    sources = package_sources()
    assert CLIENT in imports(sources[FACE], sources)
    sources[FACE] += "\nimport baton.controller\n"
    assert violations(sources) == ["baton (face) imports baton.controller (services)"]


def test_a_new_module_must_be_given_a_layer() -> None:
    assert violations({"baton.gadget": "import baton.model\n"}) == [
        "baton.gadget has no layer: add it to tests/unit/test_layering.py"
    ]
