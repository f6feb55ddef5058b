"""Bad input at the command line: a clear message, exit code 2, and nothing written.

Also parameters handed to argv commands: they must arrive as data, never as shell code.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from conftest import EXAMPLE, GRAPHS, baton

from baton.store import open_store

EXIT_USAGE = 2
QUICK_S = 30  # commands that never start a worker
RUN_S = 90  # commands that run an event to the end


def graph(name: str) -> str:
    return str(GRAPHS / name)


def cli(db_url: str, *args: str, timeout: float = QUICK_S) -> CompletedProcess[str]:
    """``baton ARGS --db DB_URL``: every command here names its own database."""
    return baton(*args, "--db", db_url, timeout=timeout)


# --- baton run: refused before anything is written -------------------------------------------


def cycle_path(stderr: str) -> list[str]:
    match = re.search(r"dependency cycle: (.+)", stderr)
    assert match, stderr
    return match.group(1).strip().split(" → ")


def test_run_cyclic_graph_names_the_cycle_and_writes_nothing(tmp_path: Path, db_url: str) -> None:
    result = cli(db_url, "run", graph("cli_cycle.yaml"))

    assert result.returncode == EXIT_USAGE, result.stderr
    assert result.stdout == ""
    path = cycle_path(result.stderr)
    # The path closes on itself and each step is a real edge: upstream → downstream.
    assert path[0] == path[-1] and sorted(path[:-1]) == ["alpha", "beta", "gamma"]
    edges = {("alpha", "beta"), ("beta", "gamma"), ("gamma", "alpha")}
    assert set(pairwise(path)) == edges
    assert "cli_cycle.yaml" in result.stderr
    assert list(tmp_path.iterdir()) == []


BAD_RUNS = {
    "unknown node": (
        [graph("cli_unknown_node.yaml")],
        ["nodes.report.after[1]", "unknown node 'missing_node'", "cli_unknown_node.yaml"],
    ),
    "missing required parameter": (
        [graph("cli_params.yaml")],
        ["parameter 'year'", "required but missing"],
    ),
    "wrong type": (
        [graph("cli_params.yaml"), "--param", "year=abc"],
        ["parameter 'year'", "expected integer", "'abc'"],
    ),
    "wrong type on the example": (
        [str(EXAMPLE), "--param", "year=abc"],
        ["parameter 'year'", "expected integer", "'abc'"],
    ),
    "unknown parameter": (
        [graph("cli_params.yaml"), "--param", "year=2025", "--param", "month=3"],
        ["parameter 'month'", "unknown", "declared: year, regions"],
    ),
    "malformed parameter": (
        [graph("cli_params.yaml"), "--param", "year2025"],
        ["'year2025' is not of the form name=value"],
    ),
    "missing graph file": (
        ["{tmp}/no_such_graph.yaml"],
        ["{tmp}/no_such_graph.yaml", "cannot read file"],
    ),
    "usage error from click": (
        [graph("cli_params.yaml"), "--param", "year=2025", "--workers", "0"],
        ["--workers"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_run_refuses_bad_input_and_writes_nothing(case: str, tmp_path: Path, db_url: str) -> None:
    args, expected = BAD_RUNS[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]

    result = cli(db_url, "run", *args)

    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert result.stdout == ""
    for text in expected:
        assert text.replace("{tmp}", str(tmp_path)) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "bad input must not create the database or logs"


def test_run_reports_every_parameter_problem_at_once(tmp_path: Path, db_url: str) -> None:
    params = ["-p", "year=abc", "-p", "month=3", "-p", "noequals"]
    result = cli(db_url, "run", graph("cli_params.yaml"), *params)

    assert result.returncode == EXIT_USAGE
    for text in ("parameter 'year'", "parameter 'month'", "'noequals'"):
        assert text in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_refuses_unknown_settings_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "baton.toml"
    config.write_text("lease_seconds = 3\n")
    db_url = f"sqlite:///{tmp_path / 'db' / 'baton.db'}"

    result = cli(db_url, "run", graph("cli_params.yaml"), "-p", "year=2025", "--config", str(config))

    assert result.returncode == EXIT_USAGE
    assert "unknown settings ['lease_seconds']" in result.stderr and "lease_s" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baton.toml"]


@pytest.mark.parametrize("where", ["not a database", "parent is a file"])
def test_unusable_database_is_a_backend_error(where: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a database\n")
    path = junk if where == "not a database" else junk / "baton.db"

    result = cli(f"sqlite:///{path}", "status")

    assert (result.returncode, "Traceback" in result.stderr) == (3, False), result.stderr
    assert result.stderr.startswith("backend error: ")


# --- validate and plan -------------------------------------------------------------------------


def test_validate_accepts_the_example() -> None:
    result = baton("validate", str(EXAMPLE), timeout=QUICK_S)

    assert result.returncode == 0, result.stderr
    assert "ok: graph year_end_report" in result.stdout
    assert "8 nodes" in result.stdout and "4 parameters" in result.stdout


def test_validate_lists_every_problem_with_its_place() -> None:
    result = baton("validate", graph("cli_many_problems.yaml"), timeout=QUICK_S)

    assert result.returncode == EXIT_USAGE
    assert result.stdout == ""
    assert "(5 problems)" in result.stderr
    expected = [
        ("params.year.type (line 5)", "'integr' is not a parameter type"),
        ("nodes.extract.run (line 7)", "'not a target' must look like 'package.module:function'"),
        ("nodes.extract.retries (line 7)", "-1 is out of range: must be an integer between 0 and 1,000"),
        ("nodes.report.colour (line 8)", "unknown key 'colour'"),
        ("nodes.report.after[0] (line 8)", "unknown node 'ghost'"),
    ]
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == len(expected), result.stderr
    for where, what in expected:
        assert any(where in line and what in line for line in problems), (where, result.stderr)


def test_plan_counts_tasks_per_partition_and_writes_nothing(tmp_path: Path) -> None:
    args = ["plan", str(EXAMPLE), "--param", "departments=a,b,c", "--json"]
    result = baton(*args, cwd=tmp_path, timeout=QUICK_S)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tasks"] == 6 * 3 + 2
    assert data["nodes"] == {
        "extract_finance": 3,
        "extract_erp": 3,
        "extract_crm": 3,
        "process": 3,
        "summarize": 3,
        "dept_report": 3,
        "hq_summary": 1,
        "hq_report": 1,
    }
    assert data["critical_path"][-1] == "hq_report"
    assert list(tmp_path.iterdir()) == [], "plan must not create a database"


def test_plan_refuses_bad_parameters() -> None:
    result = baton("plan", str(EXAMPLE), "--param", "departments=[1,", "--json", timeout=QUICK_S)

    assert result.returncode == EXIT_USAGE
    assert "parameter 'departments'" in result.stderr


# --- submit and event commands -----------------------------------------------------------------


def events(db_url: str) -> list[dict[str, object]]:
    result = cli(db_url, "status", "--json")
    assert result.returncode == 0, result.stderr
    listed: list[dict[str, object]] = json.loads(result.stdout)
    return listed


def test_submit_of_an_unknown_event_type_hints_at_register(sqlite_url: str) -> None:
    result = cli(sqlite_url, "submit", "no_such_type")

    assert result.returncode == EXIT_USAGE
    assert "no_such_type" in result.stderr
    assert "baton graph register" in result.stderr
    assert events(sqlite_url) == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        (["year=abc"], "parameter 'year'"),
        ([], "parameter 'year'"),
        (["year=2025", "colour=blue"], "parameter 'colour'"),
        (["year=2025", "regions=[]"], "parameter 'regions'"),
    ],
)
def test_submit_with_bad_parameters_stores_no_event(params: list[str], named: str, sqlite_url: str) -> None:
    registered = cli(sqlite_url, "graph", "register", graph("cli_params.yaml"))
    assert registered.returncode == 0, registered.stderr

    result = cli(sqlite_url, "submit", "cli_params", *[f"--param={p}" for p in params])

    assert result.returncode == EXIT_USAGE, result.stdout
    assert named in result.stderr
    assert events(sqlite_url) == []


@pytest.mark.parametrize("command", [["cancel"], ["status"], ["status", "--json"], ["logs"], ["audit"], ["rerun"]])
def test_commands_on_a_nonexistent_event_exit_2(command: list[str], sqlite_url: str) -> None:
    result = cli(sqlite_url, command[0], "424242", *command[1:])

    assert result.returncode == EXIT_USAGE, (result.stdout, result.stderr)
    assert "no event 424242" in result.stderr
    assert result.stdout == ""


# --- parameters reach argv commands as data, never as shell code -------------------------------

PAYLOADS = [
    '"; touch {tmp}/pwned #',
    "$(touch {tmp}/pwned2)",
    "`touch {tmp}/pwned3`",
    "a b 'c' && touch {tmp}/pwned4 | cat > {tmp}/pwned5\n; $HOME ${PATH} * ~ \\ ünïcode",
    "{params.out}",  # a placeholder inside a value is data too: no second substitution
]


@pytest.mark.slow
@pytest.mark.parametrize("template", PAYLOADS, ids=["semicolon", "dollar-paren", "backticks", "mixed", "placeholder"])
def test_parameters_arrive_verbatim_in_argv_and_env(template: str, tmp_path: Path, store_url: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    payload = template.replace("{tmp}", str(tmp_path))

    params = ["--param", f"payload={payload}", "--param", f"out={out}"]
    result = cli(store_url, "run", graph("cli_argv.yaml"), *params, "--workers", "1", "--json", timeout=RUN_S)

    assert result.returncode == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["state"] == "succeeded"
    argv = json.loads((out / "argv.json").read_text())
    assert argv == [payload], "the parameter must arrive as ONE argv item, unchanged"
    assert json.loads((out / "env.json").read_text()) == {"X": payload}
    event_id = json.loads(result.stdout)["event_id"]
    backend = open_store(store_url)
    results = {t.node: json.loads(t.result_json or "null") for t in backend.tasks(event_id)}
    backend.close()
    assert results == {"as_argv": [payload], "as_env": {"X": payload}}
    assert sorted(p.name for p in tmp_path.glob("pwned*")) == [], "a shell ran the parameter"
