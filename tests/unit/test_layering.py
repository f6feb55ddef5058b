"""The import plan, held by reading every module's imports (lazy ones inside functions too).

The tree carries the layers, so the rules are prefixes. Lowest first:

- **core** — ``errors``, ``settings``, ``access``, ``faults``, ``clock``, ``graphs.*`` (the graph
  language) and ``engine.*`` (the pure rules): imports only the core;
- **store** — ``store.*``, where state lives: the core and itself;
- **wire** — ``wire.*``, the bodies both sides of HTTP share: the core, the store's seam
  (``store.protocol``, ``store.records``) and itself;
- **services** — ``controller``, ``worker``, ``server``, ``client``, ``local``: the core, the
  wire, the store's seam and each other — never a concrete store, so an HTTP transport can stand
  in for the database behind them;
- **entry points** — ``cli``, ``bench``, ``testing``, ``__main__``: anything; they open stores;
- **face** — ``baton``, ``baton.builder``, ``baton.context``: what users import (the core, the
  client, the task context).

Besides: the client and the worker never import the server; nothing imports the command line
but ``python -m baton``; the packages import one another without a cycle; and importing the
client or the wire bodies leaves FastAPI and Starlette unloaded. A new top-level name must be
given a layer here, which is the point: where it sits is decided, not drifted into.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "baton"

LAYERS = {
    "core": ("errors", "settings", "access", "faults", "clock", "graphs", "engine"),
    "store": ("store",),
    "wire": ("wire",),
    "services": ("controller", "worker", "server", "client", "local"),
    "entry": ("cli", "bench", "testing", "__main__"),
    "face": ("builder", "context"),
}
SEAM = ("baton.store.protocol", "baton.store.records")
FACE_REACHES = ("baton.client", "baton.client.api", "baton.worker.context", "baton.graphs.builder")
ALLOWED = {
    "core": ("core",),
    "store": ("core", "store"),
    "wire": ("core", "wire"),
    "services": ("core", "wire", "services"),
    "entry": ("core", "store", "wire", "services", "entry", "face"),
    "face": ("core",),
}
NEVER = {"baton.client": "baton.server", "baton.worker": "baton.server"}
HOW_TO_OPEN = "only entry points open a store (baton.store.open_store)"


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer(module: str) -> str:
    if module == "baton":
        return "face"
    for kind, names in LAYERS.items():
        if any(within(module, f"baton.{name}") for name in names):
            return kind
    return "unplaced"


def may_import(module: str, target: str) -> bool:
    kind, reached = layer(module), layer(target)
    if reached in ALLOWED[kind]:
        return True
    if target in SEAM:
        return kind in ("wire", "services")
    return kind == "face" and target in FACE_REACHES


def package_sources() -> dict[str, str]:
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        sources[name] = path.read_text(encoding="utf-8")
    return sources


@functools.cache
def import_statements(source: str, typing_too: bool) -> tuple[ast.Import | ast.ImportFrom, ...]:
    """A module's import statements (without ``typing_too``, not those under ``if TYPE_CHECKING:``),
    found once per test process: each test reads the whole package's imports again, a few seconds
    of walking trees on a busy machine, and a source's statements depend on its text alone."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    if not typing_too:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(inner) for child in node.body for inner in ast.walk(child)}
    return tuple(node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom) and
                 id(node) not in skipped)  # fmt: skip


def imports(source: str, known: Iterable[str], typing_too: bool = True) -> set[str]:
    """The baton modules ``source`` imports (``from baton import x`` counts as baton.x when x is
    one); without ``typing_too``, those under ``if TYPE_CHECKING:`` are left out."""
    modules = set(known)
    found = set()
    for node in import_statements(source, typing_too):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif node.module and node.level == 0:
            subs = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= subs or {node.module}
    return {m for m in found if m == "baton" or m.startswith("baton.")}


def violations(sources: Mapping[str, str]) -> list[str]:
    problems = []
    for module, source in sources.items():
        if layer(module) == "unplaced":
            problems.append(f"{module} has no layer: add it to tests/unit/test_layering.py")
            continue
        for target in sorted(imports(source, sources)):
            if not may_import(module, target):
                problems.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
            if layer(target) == "store" and target not in SEAM and layer(module) in ("services", "wire"):
                problems.append(f"{module} imports {target}: {HOW_TO_OPEN}")
            if within(target, "baton.cli") and not within(module, "baton.cli") and module != "baton.__main__":
                problems.append(f"{module} imports the command line")
            for side, server in NEVER.items():
                if within(module, side) and within(target, server):
                    problems.append(f"{module} imports {target}: {side} never imports {server}")
    return problems


def package_of(module: str, packages: set[str]) -> str:
    return module if module in packages else module.rsplit(".", 1)[0]


def package_cycles(sources: Mapping[str, str]) -> list[list[str]]:
    """Cycles between packages: each module stands for its package, and an import of a package's
    own ancestors does not count (a subpackage may use its parent's modules; the parent's
    modules importing one another is a module cycle, checked on its own)."""
    packages = {name for name in sources if (PACKAGE.parent / name.replace(".", "/")).is_dir()}
    edges: dict[str, set[str]] = {p: set() for p in packages}
    for module, source in sources.items():
        here = package_of(module, packages)
        for target in imports(source, sources):
            there = package_of(target, packages)
            if there != here and not within(here, there):
                edges[here].add(there)
    return strongly_connected(edges)


def module_cycles(sources: Mapping[str, str]) -> list[list[str]]:
    """Cycles between modules, from every import but those made only for type checking (a
    package's ``__init__`` re-exporting its own modules is not one)."""
    edges = {
        module: {t for t in imports(source, sources, typing_too=False) if t in sources and not within(module, t)}
        for module, source in sources.items()
    }
    return strongly_connected(edges)


def strongly_connected(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_package_keeps_its_layers() -> None:
    sources = package_sources()
    assert {"baton.store.sql", "baton.controller.loop", "baton.worker.loop", "baton.cli.main"} <= set(sources)
    assert violations(sources) == []


def test_the_top_level_is_packages_and_a_few_modules() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules


def test_no_cycle_between_packages_or_modules() -> None:
    sources = package_sources()
    assert package_cycles(sources) == []
    assert module_cycles(sources) == []


def test_a_cycle_between_packages_is_caught() -> None:
    sources = package_sources()
    sources["baton.server.ui.pages"] += "\nfrom baton.server.api import events\n"
    sources["baton.server.api.events"] += "\nfrom baton.server.ui import pages\n"
    assert package_cycles(sources) == [["baton.server.api", "baton.server.ui"]]
    assert module_cycles(sources) == [["baton.server.api.events", "baton.server.ui.pages"]]


def test_a_store_importing_the_command_line_is_caught() -> None:
    sources = package_sources()
    sources["baton.store.sql"] += "\n\ndef _late() -> None:\n    from baton.cli import main\n"
    assert violations(sources) == [
        "baton.store.sql (store) imports baton.cli.main (entry)",
        "baton.store.sql imports the command line",
    ]


def test_the_core_importing_the_store_is_caught() -> None:
    sources = package_sources()
    sources["baton.engine.planner"] += "\nimport baton.store.sqlite\n"
    assert violations(sources) == ["baton.engine.planner (core) imports baton.store.sqlite (store)"]


def test_a_service_typed_against_a_concrete_store_is_caught() -> None:
    sources = package_sources()
    sources["baton.controller.loop"] += "\nfrom baton.store.sql import SqlStore\n"
    sources["baton.worker.loop"] += "\nfrom baton.store import open_store\n"
    assert violations(sources) == [
        "baton.controller.loop (services) imports baton.store.sql (store)",
        f"baton.controller.loop imports baton.store.sql: {HOW_TO_OPEN}",
        "baton.worker.loop (services) imports baton.store (store)",
        f"baton.worker.loop imports baton.store: {HOW_TO_OPEN}",
    ]


def test_the_client_and_the_worker_never_reach_the_server() -> None:
    sources = package_sources()
    sources["baton.client.api"] += "\nfrom baton.server.problems import Problem\n"
    sources["baton.worker.loop"] += "\nimport baton.server.state\n"
    assert violations(sources) == [
        "baton.client.api imports baton.server.problems: baton.client never imports baton.server",
        "baton.worker.loop imports baton.server.state: baton.worker never imports baton.server",
    ]


def test_the_package_root_may_reach_the_client_and_no_other_service() -> None:
    sources = package_sources()
    assert "baton.client.api" in imports(sources["baton"], sources)
    sources["baton"] += "\nimport baton.controller.loop\n"
    assert violations(sources) == ["baton (face) imports baton.controller.loop (services)"]


def test_a_new_module_must_be_given_a_layer() -> None:
    assert violations({"baton.gadget": "import baton.graphs.model\n"}) == [
        "baton.gadget has no layer: add it to tests/unit/test_layering.py"
    ]


def test_the_client_and_the_wire_load_no_web_framework() -> None:
    """In a fresh interpreter: what a client application or a remote worker imports leaves the
    server's framework out (the server alone needs FastAPI and Starlette)."""
    probe = (
        "import sys, baton, baton.client, baton.client.api, baton.client.worker_link, baton.wire.api, "
        "baton.wire.workers, baton.worker.loop\n"
        "baton.Client\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, baton.server.app; print('fastapi' in sys.modules)"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert loaded.stdout.strip() == "True"  # the probe could see it
