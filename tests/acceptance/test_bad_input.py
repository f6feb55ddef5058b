"""Bad input of every kind gets exit 2 and a message naming the place, in bounded time and
memory, and leaves the store as it was.

Every case runs the real ``baton`` command in a new process (forked from the test process's
:mod:`zygote`, so without its start-up imports) whose address space is capped
(:data:`MEMORY_CAP`) and whose CPU time is bounded (:data:`TIME_CAP_S`): a YAML alias bomb used to
take 30-50 s and over 2 GB before it died with a traceback. The bound is on the child's own CPU
seconds, not on the wall clock, so that other tests sharing the cores cannot fail it. Each case
then compares the store with a snapshot taken before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import GRAPHS
from zygote import zygote

from baton.graphs.spec import load_graph_file, load_graph_text
from baton.store import open_store
from baton.store.sql import SqlStore

pytestmark = pytest.mark.slow

MEMORY_CAP = 512 * 1024 * 1024  # address space of the child: a bomb would die of MemoryError (exit 1)
TIME_CAP_S = 10.0  # CPU seconds of the child (user + system)
HANG_S = 120.0  # wall time after which the child counts as hung, however loaded the machine
EXIT_USAGE = 2
TABLES = ("graphs", "events", "tasks", "attempts", "audit", "event_nodes")


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str
    seconds: float


def run_bounded(*args: str | bytes, env: dict[str, str] | None = None) -> Ran:
    """Run ``baton`` with ``args`` in a new process (forked from the :mod:`zygote`) under the memory
    cap; ``seconds`` is the CPU time that process used."""
    argv = [os.fsdecode(arg) for arg in args]  # as the interpreter decodes its own argv
    ran = zygote().run(argv, env={**os.environ, **(env or {})}, timeout=HANG_S, memory_cap=MEMORY_CAP)
    return Ran(ran.code, ran.stdout, ran.stderr, ran.cpu_s)


def assert_refused(ran: Ran, *fragments: str) -> None:
    assert ran.code == EXIT_USAGE, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    for fragment in fragments:
        assert fragment in ran.stderr, (fragment, ran.stderr)
    assert ran.seconds < TIME_CAP_S, f"took {ran.seconds:.1f} CPU seconds"


def snapshot(backend: SqlStore) -> dict[str, list[tuple[object, ...]]]:
    with backend.transaction(write=False) as tx:
        return {t: sorted(map(tuple, tx.rows(f"SELECT * FROM {t}")), key=repr) for t in TABLES}


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[str, SqlStore]]:
    """A store holding one registered graph and one event, to be left exactly as it is."""
    backend = open_store(store_url)
    graph = load_graph_file(Path(GRAPHS) / "cli_params.yaml")
    record = backend.register_graph(graph)
    backend.submit(record.id, {"year": 2024, "regions": ["north", "south"]}, key="kept")
    backend.register_graph(load_graph_text(TYPED, source="typed.yaml"))
    before = snapshot(backend)
    yield store_url, backend
    assert snapshot(backend) == before, "bad input changed the store"
    backend.close()


# --- graph files ------------------------------------------------------------------------------


def _bomb(where: str) -> str:
    """Nine levels of nine aliases: about 387 million strings once expanded."""
    lines = ["graph: bomb", "x-anchors:", "  - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    node = "  a: {run: 'm:f'}"
    if where == "graph description":
        lines.append("description: *a9")
    elif where == "node description":
        node = "  a: {run: 'm:f', description: *a9}"
    else:
        lines += ["params:", "  p: {type: list, default: *a9}"]
    return "\n".join([*lines, "nodes:", node]) + "\n"


def _nested_blocks(depth: int) -> str:
    body = "".join(f"{'  ' * i}k{i}:\n" for i in range(depth))
    return f"graph: g\nnodes:\n  a: {{run: 'm:f'}}\ndescription:\n{body}{'  ' * depth}leaf\n"


GRAPH_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "bomb in the graph description": (_bomb("graph description"), ("expands to more than 100,000 values",)),
    "bomb in a node description": (_bomb("node description"), ("expands to more than 100,000 values",)),
    "bomb in a list default": (_bomb("list default"), ("expands to more than 100,000 values",)),
    "recursive alias": (
        "graph: g\nnodes:\n  a: {run: 'm:f', labels: &l [*l]}\n",
        ("nodes.a.labels", "recursive alias"),
    ),
    "deep flow nesting": ("graph: g\nnodes: {a: {run: 'm:f'}}\ndescription: " + "[" * 100_000 + "\n", ("line 3",)),
    "deep block nesting": (_nested_blocks(200), ("nested deeper than 64 levels",)),
    "a huge list": ("graph: g\nnodes: {a: {run: 'm:f'}}\nx: [" + "1," * 300_000 + "1]\n", ("more than 100,000",)),
    "a file over the size cap": ("graph: g\n# " + "x" * 1_100_000 + "\n", ("over 1,048,576 bytes",)),
    "duplicate node names": (
        "graph: g\nnodes:\n  a: {run: 'm:f'}\n  a: {run: 'm:g'}\n",
        ("nodes.a (line 4)", "duplicate key 'a' (first at line 3)"),
    ),
    "duplicate top-level keys": ("graph: g\ngraph: h\nnodes: {a: {run: 'm:f'}}\n", ("graph (line 2)", "duplicate key")),
    "nan retry delay": (
        "graph: g\nnodes:\n  a: {run: 'm:f', retry_delay_s: .nan}\n",
        ("nodes.a.retry_delay_s (line 3)", "must be a finite number"),
    ),
    "infinite timeout": ("graph: g\nnodes:\n  a: {run: 'm:f', timeout_s: .inf}\n", ("nodes.a.timeout_s", "finite")),
    "priority beyond 64 bits": (
        "graph: g\nnodes:\n  a: {run: 'm:f', priority: 99999999999999999999999}\n",
        ("nodes.a.priority (line 3)", "between -2,147,483,647 and 2,147,483,647"),
    ),
    "a float priority past any float": (
        "graph: g\nnodes:\n  a: {run: 'm:f', priority: 1e400}\n",
        ("nodes.a.priority", "must be an integer"),
    ),
    "an integer too big for a float": (
        "graph: g\nnodes:\n  a: {run: 'm:f', retry_delay_s: " + "9" * 400 + "}\n",
        ("nodes.a.retry_delay_s", "out of range"),
    ),
    "retries past the cap": ("graph: g\nnodes:\n  a: {run: 'm:f', retries: 1000000}\n", ("nodes.a.retries", "1,000")),
    "a cost no column holds": (
        "graph: g\nnodes:\n  a: {run: 'm:f', cost: {mem_mb: 1099511627776}}\n",
        ("nodes.a.cost.mem_mb", "out of range"),
    ),
    "defaults out of range": (
        "graph: g\ndefaults: {retry_backoff: 1e9}\nnodes:\n  a: {run: 'm:f'}\n",
        ("nodes.a.retry_backoff",),
    ),
    "a name that is a path": (
        "graph: g\nnodes:\n  ../x: {run: 'm:f'}\n",
        ('nodes["../x"] (line 3)', "not a valid name"),
    ),
    "an empty name": ("graph: g\nnodes:\n  '': {run: 'm:f'}\n", ('nodes[""] (line 3)', "not a valid name")),
    "a name ending in a newline": (
        'graph: "g\\n"\nnodes:\n  a: {run: "m:f"}\n',
        ("graph (line 1)", "not a valid name"),
    ),
    "a non-ASCII name": (
        "graph: g\nnodes:\n  département: {run: 'm:f'}\n",
        ('nodes["département"]', "not a valid name"),
    ),
    "a zero-width space in a name": (
        "graph: g\nnodes:\n  a\u200bb: {run: 'm:f'}\n",
        ('nodes["a\\u200bb"]', "not a valid name"),
    ),
    "right-to-left override in a label": (
        "graph: g\nnodes:\n  a: {run: 'm:f', labels: [\"gpu\u202e\"]}\n",
        ("nodes.a.labels (line 3)", "label names"),
    ),
    "a NUL in a command": ('graph: g\nnodes:\n  a: {command: ["echo", "a\\0b"]}\n', ("nodes.a.command", "NUL")),
    "an env name with '='": ('graph: g\nnodes:\n  a: {command: [echo], env: {"A=B": x}}\n', ("nodes.a.env", "'='")),
    "a partition value too long": (
        "graph: g\npartitions: {values: [" + "x" * 300 + "]}\nnodes:\n  a: {run: 'm:f'}\n",
        ("partitions.values", "at most 200 characters"),
    ),
    "a mapping as description": (
        "graph: g\ndescription: {a: 1}\nnodes:\n  a: {run: 'm:f'}\n",
        ("description", "string"),
    ),
    "a python object tag": (
        "graph: g\nnodes:\n  a: {run: 'm:f', description: !!python/object/apply:os.system [touch pwned]}\n",
        ("not valid YAML", "line 3"),
    ),
    "a list at the top": ("- graph: g\n", ("(top level)", "must be a mapping")),
    "an empty file": ("", ("(top level)", "must be a mapping")),
    "many unknown keys": (
        "graph: g\nnodes:\n  a: {run: 'm:f'}\n" + "".join(f"k{i}: 1\n" for i in range(5000)),
        ("(5000 problems)", "... and 4,950 more"),
    ),
    "not UTF-8": ("graph: d\u00e9partement\n".encode("latin-1"), ("not UTF-8 text (byte 8)",)),
    "a binary file": (bytes(range(256)) * 64, ("not UTF-8 text",)),
    "NUL bytes": (b"graph: g\x00\nnodes: {}\n", ("not valid YAML",)),
    "a PNG image": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ("not UTF-8 text",)),
}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_a_bad_graph_file_is_refused_by_validate(case: str, tmp_path: Path) -> None:
    content, fragments = GRAPH_CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    ran = run_bounded("validate", str(path))

    assert_refused(ran, "error: invalid graph", str(path), *fragments)
    assert not (tmp_path / "pwned").exists()  # where the tag's command would have run


@pytest.mark.parametrize(
    "case", ["bomb in a list default", "nan retry delay", "priority beyond 64 bits", "duplicate node names"]
)
def test_a_bad_graph_file_is_refused_by_register_and_the_store_is_unchanged(
    case: str, store: tuple[str, SqlStore], tmp_path: Path
) -> None:
    content, fragments = GRAPH_CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(str(content), encoding="utf-8")

    assert_refused(run_bounded("graph", "register", str(path), "--db", store[0]), str(path), *fragments)


# --- event parameters -------------------------------------------------------------------------

TYPED = """
graph: typed
params:
  year: {type: integer, default: 2025}
  rate: {type: number, default: 1.0}
  name: {type: string, default: x}
  items: {type: list, default: []}
  opts: {type: object, default: {}}
nodes:
  a: {run: "m:f"}
"""

PARAM_CASES: dict[str, tuple[list[str | bytes], dict[str, str], tuple[str, ...]]] = {
    "nan": (["rate=nan"], {}, ("parameter 'rate'", "finite")),
    "infinity": (["rate=inf"], {}, ("parameter 'rate'", "finite")),
    "past any float": (["rate=1e400"], {}, ("parameter 'rate'", "finite")),
    "4,301 digits": (["year=" + "9" * 4301], {}, ("parameter 'year'", "expected integer")),
    "a huge integer in JSON": (["items=[" + "9" * 5000 + "]"], {}, ("parameter 'items'",)),
    "deep JSON": (["opts=" + '{"a":' * 20_000 + "1" + "}" * 20_000], {}, ("parameter 'opts'",)),
    "NaN inside JSON": (['opts={"a": NaN}'], {}, ("parameter 'opts'", "not a finite number")),
    "nested deeper than 64": (["items=" + "[" * 70 + "]" * 70], {}, ("parameter 'items'", "deeper than 64")),
    "bytes that are not UTF-8": ([b"name=\xff\xfe"], {}, ("--param",)),
    "an unknown parameter": (["ünknown=1"], {}, ("parameter 'ünknown': unknown",)),
    "no equals sign": (["justtext"], {}, ("'justtext' is not of the form name=value",)),
    "over the size cap": (
        ["items=" + ",".join(["abcdefgh"] * 10_000)],
        {"BATON_MAX_PARAMS_BYTES": "65536"},
        ("over the 65,536-byte cap", "max_params_bytes"),
    ),
}


@pytest.mark.parametrize("case", sorted(PARAM_CASES))
def test_bad_parameters_are_refused_at_submit_and_the_store_is_unchanged(
    case: str, store: tuple[str, SqlStore]
) -> None:
    pairs, env, fragments = PARAM_CASES[case]
    args: list[str | bytes] = ["submit", "typed", "--db", store[0]]
    for pair in pairs:
        args += ["-p", pair]

    assert_refused(run_bounded(*args, env=env), *fragments)


# --- ids, options and settings ----------------------------------------------------------------

BAD_IDS = ["18446744073709551616", "9223372036854775808", "-1", "0", "abc", "1e3", "٣"]


@pytest.mark.parametrize("command", ["status", "logs", "audit", "cancel", "rerun"])
@pytest.mark.parametrize("event_id", BAD_IDS)
def test_an_event_id_out_of_range_or_malformed_is_a_usage_error(command: str, event_id: str, db_url: str) -> None:
    ran = run_bounded(command, "--db", db_url, "--", event_id)

    assert_refused(ran, "Invalid value for", "EVENT_ID")
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # nothing was even opened


OPTION_CASES: dict[str, tuple[list[str], dict[str, str], tuple[str, ...]]] = {
    "audit task id past 64 bits": (["audit", "1", "--task", "18446744073709551616"], {}, ("'--task'",)),
    "lease nan": (["run", "G", "--lease-s", "nan"], {}, ("'--lease-s'", "finite")),
    "lease infinite": (["run", "G", "--lease-s", "inf"], {}, ("'--lease-s'", "finite")),
    "lease negative": (["run", "G", "--lease-s", "-1"], {}, ("'--lease-s'",)),
    "no slots": (["run", "G", "--slots", "0"], {}, ("'--slots'",)),
    "too many workers": (["run", "G", "--workers", "100000"], {}, ("'--workers'",)),
    "a key too long": (["run", "G", "--key", "k" * 500], {}, ("'--key'", "at most 200")),
    "a negative resource": (["worker", "--resource", "mem_mb=-1"], {}, ("'--resource'", "NAME=AMOUNT")),
    "a resource past 32 bits": (["worker", "--resource", "mem_mb=99999999999"], {}, ("'--resource'", "at most")),
    "a label with a space": (["worker", "--label", "a b"], {}, ("'--label'", "not a valid name")),
    "drain infinite": (["worker", "--drain-s", "inf"], {}, ("'--drain-s'",)),
    "idle nan": (["worker", "--exit-when-idle", "nan"], {}, ("'--exit-when-idle'",)),
    "result cap zero": (["worker", "--max-result-bytes", "0"], {}, ("'--max-result-bytes'",)),
    "an unknown database scheme": (["status", "--db", "ftp://x"], {}, ("unknown database URL",)),
    "a missing settings file": (["status", "--config", "/nonexistent/baton.toml"], {}, ("cannot read settings file",)),
    "settings that are not TOML": (["status", "--config", "BAD_TOML"], {}, ("cannot read settings file",)),
    "an unknown setting": (["status", "--config", "UNKNOWN_TOML"], {}, ("unknown settings ['colour']",)),
    "an infinite lease in the environment": (["status"], {"BATON_LEASE_S": "inf"}, ("lease_s", "finite")),
    "a heartbeat past half the lease": (["status"], {"BATON_HEARTBEAT_S": "20"}, ("heartbeat_s",)),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_a_bad_option_or_setting_is_a_usage_error(case: str, tmp_path: Path, db_url: str) -> None:
    args, env, fragments = OPTION_CASES[case]
    (tmp_path / "bad.toml").write_text("lease_s = [unclosed\n", encoding="utf-8")
    (tmp_path / "unknown.toml").write_text('colour = "blue"\n', encoding="utf-8")
    swap = {"G": str(Path(GRAPHS) / "cli_params.yaml"), "BAD_TOML": str(tmp_path / "bad.toml"),
            "UNKNOWN_TOML": str(tmp_path / "unknown.toml")}  # fmt: skip
    argv = [swap.get(a, a) for a in args]
    if "--db" not in argv:
        argv += ["--db", db_url]

    assert_refused(run_bounded(*argv, env=env), *fragments)
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_the_largest_accepted_graph_loads_in_bounded_time(tmp_path: Path) -> None:
    """The bound on time holds for what is accepted too: a graph just under the value cap."""
    lines = ["graph: big", "nodes:"] + [f"  n{i}: {{run: 'm:f', priority: {i}}}" for i in range(16_000)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    ran = run_bounded("validate", str(path))

    assert ran.code == 0, ran.stderr
    assert "16000 nodes" in ran.stdout
    assert ran.seconds < TIME_CAP_S
    print(f"16,000-node graph (96,005 YAML values) validated in {ran.seconds:.2f} CPU seconds")
