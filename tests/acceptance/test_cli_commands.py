"""The command line's happy paths, driven through real ``baton`` processes.

The year-end example runs once per module (about a second); the tests that use it only read
the event it left behind, or are refused without changing it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE, GRAPHS, baton

from baton.store import open_store
from baton.store.migrate import HEAD
from baton.testing import check_invariants

EXIT_FAILED, EXIT_USAGE = 1, 2
QUICK_S = 30  # commands that never start a worker
RUN_S = 90  # commands that run an event to the end
KEY = "year-end-2025"
DEPARTMENTS = "sales marketing engineering operations customer_service branch_shanghai"
DEPARTMENTS += " branch_shenzhen branch_chengdu"
PARAMS_GRAPH = str(GRAPHS / "cli_params.yaml")
FAIL_GRAPH = str(GRAPHS / "cli_fail.yaml")


def cli(db_url: str, *args: str, timeout: float = QUICK_S) -> subprocess.CompletedProcess[str]:
    """``baton ARGS --db DB_URL``: every command here names its own database."""
    return baton(*args, "--db", db_url, timeout=timeout)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a ``--json`` command printed; anything else on stdout fails."""
    assert result.returncode in (0, EXIT_FAILED), result.stderr
    return json.loads(result.stdout)


def audit_actions(db_url: str, event_id: int) -> Counter[str]:
    result = cli(db_url, "audit", str(event_id))
    assert result.returncode == 0, result.stderr
    return Counter(line.split()[2] for line in result.stdout.splitlines())


def attempt_count(db_url: str, event_id: int) -> int:
    store = open_store(db_url)
    try:
        return len(store.attempts(sorted(t.id for t in store.tasks(event_id))))
    finally:
        store.close()


# --- the year-end example, run once ----------------------------------------------------------


@dataclass(frozen=True)
class ExampleRun:
    db_url: str
    out_dir: Path
    summary: dict[str, Any]

    @property
    def event_id(self) -> int:
        return int(self.summary["event_id"])

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """``baton run`` of the example with this run's key, output directory and database."""
        args = ["run", str(EXAMPLE), "--param", f"out_dir={self.out_dir}", "--key", KEY, *extra]
        return cli(self.db_url, *args, timeout=RUN_S)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(self.db_url, *args)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleRun]:
    tmp = tmp_path_factory.mktemp("example")
    db_url = f"sqlite:///{tmp / 'baton.db'}"
    first = ExampleRun(db_url, tmp / "out", {})
    result = first.run("--json", "--workers", "2", "--slots", "2")
    assert result.returncode == 0, (result.stdout, result.stderr)
    yield ExampleRun(db_url, first.out_dir, as_json(result))
    store = open_store(db_url)
    problems = check_invariants(store)
    store.close()
    assert not problems, "broken invariants:\n" + "\n".join(problems)


@pytest.mark.slow
def test_run_example_succeeds_with_every_report(example: ExampleRun) -> None:
    summary = example.summary

    assert summary["state"] == "succeeded"
    assert summary["tasks"] == {"succeeded": 50} and summary["tasks_total"] == 50
    assert summary["failed"] == []
    assert summary["nodes"]["hq_report"] == {"succeeded": 1}
    assert summary["nodes"]["extract_finance"] == {"succeeded": 8}
    assert summary["duration_s"] > 0
    for name in ("hq/company.html", "hq/company.csv"):
        assert (example.out_dir / name).stat().st_size > 0, name
    for dept in DEPARTMENTS.split():
        assert (example.out_dir / "departments" / f"{dept}.html").stat().st_size > 0, dept


@pytest.mark.slow
def test_run_with_the_same_key_returns_the_event_without_running_it(example: ExampleRun) -> None:
    again = example.run("--json", "--workers", "1")

    assert again.returncode == 0, again.stderr
    summary = as_json(again)
    assert summary["event_id"] == example.event_id
    assert summary["tasks"] == {"succeeded": 50}
    assert attempt_count(example.db_url, example.event_id) == 50
    actions = audit_actions(example.db_url, example.event_id)
    assert actions["event.submitted"] == 1 and actions["event.expanded"] == 1
    assert actions["task.succeeded"] == 50


@pytest.mark.slow
def test_run_with_a_reused_key_and_other_parameters_is_refused(example: ExampleRun) -> None:
    result = example.run("--param", "year=2024")

    assert result.returncode == EXIT_USAGE
    assert KEY in result.stderr and f"event {example.event_id}" in result.stderr
    assert attempt_count(example.db_url, example.event_id) == 50


@pytest.mark.slow
def test_status_of_the_event(example: ExampleRun) -> None:
    status = as_json(example.cli("status", str(example.event_id), "--json"))

    assert status["event_id"] == example.event_id
    assert status["state"] == "succeeded"
    assert status["tasks"] == {"succeeded": 50}
    assert status["nodes"] == example.summary["nodes"]

    table = example.cli("status", str(example.event_id))
    assert table.returncode == 0, table.stderr
    assert "extract_finance" in table.stdout and "succeeded" in table.stdout

    listed = as_json(example.cli("status", "--json"))
    assert [(e["event_id"], e["state"]) for e in listed] == [(example.event_id, "succeeded")]


@pytest.mark.slow
def test_logs_show_one_tasks_captured_lines(example: ExampleRun) -> None:
    event = str(example.event_id)
    result = example.cli("logs", event, "--node", "extract_finance", "--partition", "sales")

    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("=== ")]
    assert len(headers) == 1, result.stdout
    assert headers[0].startswith("=== extract_finance[sales] attempt 1 succeeded")
    assert "extract_finance[sales] extracted" in result.stdout
    assert "finance rows for 2025" in result.stdout
    assert "marketing" not in result.stdout


@pytest.mark.slow
def test_audit_shows_the_events_decisions(example: ExampleRun) -> None:
    actions = audit_actions(example.db_url, example.event_id)

    assert actions["event.expanded"] == 1
    assert actions["event.succeeded"] == 1
    assert actions["task.succeeded"] == 50


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "message"),
    [("rerun", "only a failed or cancelled event can be re-run"), ("cancel", "already succeeded")],
)
def test_rerun_or_cancel_of_a_succeeded_event_is_a_conflict(command: str, message: str, example: ExampleRun) -> None:
    result = example.cli(command, str(example.event_id))

    assert result.returncode == EXIT_USAGE, result.stdout
    assert message in result.stderr
    status = as_json(example.cli("status", str(example.event_id), "--json"))
    assert status["state"] == "succeeded" and status["tasks"] == {"succeeded": 50}


# --- graphs ----------------------------------------------------------------------------------


def test_graph_register_versions_by_content(tmp_path: Path, db_url: str) -> None:
    file = tmp_path / "graph.yaml"
    text = Path(PARAMS_GRAPH).read_text()
    file.write_text(text)

    first = cli(db_url, "graph", "register", str(file))
    second = cli(db_url, "graph", "register", str(file))
    file.write_text(text.replace("description: Fiscal year", "description: The fiscal year"))
    changed = cli(db_url, "graph", "register", str(file))
    listed = cli(db_url, "graph", "list")

    assert [r.returncode for r in (first, second, changed, listed)] == [0, 0, 0, 0]
    assert first.stdout.startswith("cli_params v1 (event type cli_params)")
    assert second.stdout == first.stdout
    assert changed.stdout.startswith("cli_params v2 (event type cli_params)")
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert any("cli_params v1" in line for line in lines)
    assert any("cli_params v2" in line for line in lines)


def test_graph_register_validates_every_file_before_writing_any(tmp_path: Path, db_url: str) -> None:
    result = cli(db_url, "graph", "register", PARAMS_GRAPH, str(GRAPHS / "cli_cycle.yaml"))

    assert result.returncode == EXIT_USAGE
    assert "dependency cycle" in result.stderr
    assert list(tmp_path.iterdir()) == []


# --- a failing event -------------------------------------------------------------------------


@pytest.mark.slow
def test_failing_task_fails_the_event_and_its_logs_say_why(db_url: str) -> None:
    result = cli(db_url, "run", FAIL_GRAPH, "--json", "--workers", "1", timeout=RUN_S)

    assert result.returncode == EXIT_FAILED, result.stderr
    summary = as_json(result)
    assert summary["state"] == "failed"
    assert summary["tasks"] == {"succeeded": 1, "failed": 1, "upstream_failed": 1}
    [failed] = summary["failed"]
    assert failed["node"] == "explode" and failed["attempts"] == 2  # retries: 1
    assert "RuntimeError: ledger does not balance (explode attempt 2)" in failed["error"]

    event = str(summary["event_id"])
    logs = cli(db_url, "logs", event, "--node", "explode")
    assert logs.returncode == 0, logs.stderr
    assert "=== explode attempt 2 failed" in logs.stdout
    assert "error: RuntimeError: ledger does not balance (explode attempt 2)" in logs.stdout
    assert "Traceback" in logs.stdout and "cli_tasks.py" in logs.stdout
    assert "attempt 1" not in logs.stdout

    every = cli(db_url, "logs", event, "--node", "explode", "--all-attempts")
    assert "=== explode attempt 1 failed" in every.stdout
    assert "=== explode attempt 2 failed" in every.stdout


@pytest.mark.slow
def test_failing_run_prints_a_summary_with_the_next_step(db_url: str) -> None:
    result = cli(db_url, "run", FAIL_GRAPH, "--workers", "1", timeout=RUN_S)

    assert result.returncode == EXIT_FAILED, result.stderr
    text = " ".join(result.stdout.split())  # the console wraps long lines
    assert "failed explode after 2 attempt(s): RuntimeError: ledger does not balance" in text
    assert "baton logs 1 --node NODE" in text and "baton rerun 1" in text


@pytest.mark.slow
def test_rerun_then_cancel_of_a_failed_event(db_url: str) -> None:
    event = str(as_json(cli(db_url, "run", FAIL_GRAPH, "--json", timeout=RUN_S))["event_id"])

    rerun = cli(db_url, "rerun", event, "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert as_json(rerun) == {"event_id": int(event), "reset": 2}  # explode and what it blocks

    cancel = cli(db_url, "cancel", event)  # no worker is running: nothing to stop
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == f"event {event}: cancelled"
    status = as_json(cli(db_url, "status", event, "--json"))
    assert status["state"] == "cancelled"
    assert status["tasks"] == {"succeeded": 1, "cancelled": 2}

    again = cli(db_url, "cancel", event)
    assert again.returncode == EXIT_USAGE
    assert "already cancelled" in again.stderr


# --- submit to a controller and a worker started on their own --------------------------------


def spawn(log_dir: Path, db_url: str, *args: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "baton", *args, "--db", db_url]
    with open(log_dir / f"{args[0]}.log", "wb") as log:
        return subprocess.Popen(argv, cwd=log_dir, stdout=log, stderr=log)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.long(seconds=15)
def test_submit_runs_on_a_controller_and_a_worker(tmp_path: Path, db_url: str) -> None:
    assert cli(db_url, "graph", "register", PARAMS_GRAPH).returncode == 0
    a = ["submit", "cli_params", "-p", "year=2024", "--key", "a", "--json"]
    b = ["submit", "cli_params", "-p", "year=2025", "-p", "regions=east,west,north", "--key", "b"]
    first, second = as_json(cli(db_url, *a)), as_json(cli(db_url, *b, "--json"))
    assert first["created"] and second["created"] and first["state"] == "submitted"
    assert as_json(cli(db_url, *a)) == {**first, "created": False}

    def states() -> list[str]:
        return [e["state"] for e in as_json(cli(db_url, "status", "--json"))]

    processes = [spawn(tmp_path, db_url, "controller", "--poll-s", "0.1")]
    try:
        # A worker started before there is work could go idle and exit: expand both first.
        wait_until(lambda: "submitted" not in states(), 30, "the controller to expand events")
        worker_args = ["worker", "--exit-when-idle", "2", "--slots", "2", "--poll-s", "0.1"]
        worker = spawn(tmp_path, db_url, *worker_args)
        processes.append(worker)

        waited = cli(db_url, *b, "--wait", "--json", timeout=RUN_S)
        assert waited.returncode == 0, waited.stderr
        assert as_json(waited)["event_id"] == second["event_id"]
        assert as_json(waited)["tasks"] == {"succeeded": 4}

        assert worker.wait(timeout=RUN_S) == 0, (tmp_path / "worker.log").read_text()
        listed = {e["event_id"]: e for e in as_json(cli(db_url, "status", "--json"))}
        assert {i: (e["state"], e["tasks_total"]) for i, e in listed.items()} == {
            first["event_id"]: ("succeeded", 3),
            second["event_id"]: ("succeeded", 4),
        }
        logs = cli(db_url, "logs", str(first["event_id"]), "--node", "greet", "--partition", "south")
        assert "greeting south for 2024" in logs.stdout
        assert "greet[south] greeted south" in logs.stdout

        controller = processes[0]
        controller.send_signal(signal.SIGTERM)
        assert controller.wait(timeout=QUICK_S) == 0, (tmp_path / "controller.log").read_text()
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=QUICK_S)


# --- database --------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent(db_url: str) -> None:
    said = []
    for _ in range(2):
        result = cli(db_url, "db", "upgrade")
        assert result.returncode == 0, result.stderr
        said.append(result.stdout.strip())
    assert said == [f"schema upgraded from none (an empty database) to revision {HEAD}",
                    f"schema at revision {HEAD}: up to date"]  # fmt: skip
    current = cli(db_url, "db", "current")
    assert current.returncode == 0 and current.stdout.strip() == f"revision {HEAD} (head): up to date"
    assert as_json(cli(db_url, "status", "--json")) == []
