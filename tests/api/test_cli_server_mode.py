"""``baton submit/status/logs/cancel/rerun --server URL --token T``: the real command line,
against a real ``baton server`` on both backends, printing exactly what the same commands print
from the database (each is run both ways and the outputs compared).

The comparisons run each command in this process (:func:`baton_all`: the ``baton`` group itself,
given its arguments, its output captured and its exit code read), which spares a Python start-up
per command; what only a process of its own shows (exit codes from the environment's variables,
refused tokens and servers) runs in subprocesses (:func:`start`)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from engine import Engine, graph
from hooks import SECRET, cancelled_event, dispatch
from serving import Served, free_port, make_tls, mint

from baton.access import Role
from baton.cli.main import cli
from baton.client.api import Client
from baton.engine.states import TaskState
from baton.errors import UsageError
from baton.store.protocol import Store

EXIT_FAILED, EXIT_USAGE, EXIT_BACKEND = 1, 2, 3
TIMEOUT_S = 90
DEPTS = ["d1", "d2", "d3"]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def start(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``baton ARGS`` in a process of its own (in the test's folder), with no BATON_* variable but
    those in ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    return subprocess.Popen([sys.executable, "-m", "baton", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**clean, **(env or {})})  # fmt: skip


def done(proc: subprocess.Popen[str]) -> Ran:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    return Ran(proc.returncode, out, err)


def baton_all(*commands: Sequence[str]) -> list[Ran]:
    """Several ``baton`` commands, one after another in this process, answers in order; with no
    BATON_* variable set, as :func:`start` runs them."""
    runner = CliRunner()
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BATON_")}
    out = []
    for args in commands:
        result = runner.invoke(cli, list(args), env=unset, catch_exceptions=False)
        out.append(Ran(result.exit_code, result.stdout, result.stderr))
    return out


@dataclass(frozen=True)
class Both:
    """One store reached two ways: ``--db`` and ``--server --token``."""

    db_url: str
    url: str
    token: str

    def remote(self, *args: str) -> list[str]:
        return [*args, "--server", self.url, "--token", self.token]

    def direct(self, *args: str) -> list[str]:
        return [*args, "--db", self.db_url]

    def compare(self, *args: str) -> Ran:
        """Run a command both ways; they must answer alike. Returns the server's answer."""
        through, direct = baton_all(self.remote(*args), self.direct(*args))
        assert (through.returncode, through.stdout, through.stderr) == (
            direct.returncode, direct.stdout, direct.stderr,
        ), args  # fmt: skip
        return through


def _register(backend: Store, tmp_path: Path) -> None:
    g = graph("cli_remote").param("depts", "list", default=DEPTS).partitions(param="depts")
    g.param("bad", "string", default="").param("fixed", "string", default=str(tmp_path / "fixed"))
    g.python("extract", "fault_tasks:fail_partition", retries=0)
    g.python("report", "fault_tasks:ok", after=["extract"])
    g.python("hq", "fault_tasks:ok", after=["report"], partitioned=False)
    backend.register_graph(g.build())
    needy = graph("cli_needy").python("train", "fault_tasks:ok", labels=["gpu"])
    backend.register_graph(needy.build())


@pytest.fixture
def both(backend: Store, served: Served, tmp_path: Path) -> Both:
    _register(backend, tmp_path)
    return Both(backend.url, served.url, mint(backend, Role.CLIENT))


def test_submit_wait_status_logs_and_rerun_through_the_server_print_as_from_the_database(
    backend: Store, both: Both, tmp_path: Path
) -> None:
    with Engine(backend):
        (submitted,) = baton_all(both.remote("submit", "cli_remote", "-p", "bad=d2", "--key", "k1"))
        assert (submitted.returncode, submitted.stdout) == (0, "event 1 submitted (submitted)\n"), submitted.stderr
        waited = both.compare("submit", "cli_remote", "-p", "bad=d2", "--key", "k1", "--wait")
        assert waited.returncode == EXIT_FAILED
        assert "failed extract[d2] after 1 attempt(s): FileNotFoundError" in " ".join(waited.stdout.split())
        both.compare("submit", "cli_remote", "-p", "bad=d2", "--key", "k1", "--wait", "--json")
        for args in (["status", "1"], ["status", "1", "--json"], ["status"], ["status", "--json"], ["logs", "1"],
                     ["logs", "1", "--node", "extract", "--partition", "d2", "--all-attempts"]):  # fmt: skip
            shown = both.compare(*args)
            assert shown.returncode == 0 and shown.stdout, args
        unknown = both.compare("logs", "1", "--node", "nope")
        assert unknown.returncode == EXIT_USAGE and "(nodes: extract, hq, report)" in unknown.stderr
        (tmp_path / "fixed").touch()
        (rerun,) = baton_all(both.remote("rerun", "1", "--partition", "d2", "--wait", "--json"))
        again = both.compare("rerun", "1")

    assert rerun.returncode == 0, rerun.stderr
    assert '"state": "succeeded"' in rerun.stdout and '"tasks": {"succeeded": 7}' in rerun.stdout
    assert again.returncode == EXIT_USAGE and "only a failed or cancelled event can be re-run" in again.stderr
    assert [t.state for t in backend.tasks(1)] == [TaskState.SUCCEEDED] * 7


ELAPSED = re.compile(r" · [0-9.]+s$", re.MULTILINE)


def test_status_names_what_no_worker_can_take_and_cancel_ends_it(backend: Store, both: Both) -> None:
    with Engine(backend):
        (made,) = baton_all(both.remote("submit", "cli_needy", "--json"))
        assert made.returncode == 0, made.stderr
        _until(lambda: [t.state for t in backend.tasks(1)] == [TaskState.READY] and backend.workers() != [])
        through, direct = baton_all(both.remote("status", "1"), both.direct("status", "1"))
        cancelled = baton_all(both.remote("cancel", "1"))[0]
        twice = both.compare("cancel", "1")

    assert through.returncode == direct.returncode == 0
    assert ELAPSED.sub("", through.stdout) == ELAPSED.sub("", direct.stdout)  # a running event's clock moves
    assert through.stderr == direct.stderr
    assert through.stderr.startswith("waiting: 1 ready task(s) of train need labels ['gpu']")
    assert (cancelled.returncode, cancelled.stdout) == (0, "event 1: cancelled\n"), cancelled.stderr
    assert twice.returncode == EXIT_USAGE and "already cancelled" in twice.stderr


def _until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_tokens_servers_and_flags_that_cannot_work_are_refused_with_their_exit_codes(
    backend: Store, served: Served, both: Both
) -> None:
    viewer = mint(backend, Role.VIEWER)
    away = f"http://127.0.0.1:{free_port()}"
    procs = [
        start(["status", "--server", served.url, "--token", "baton_client_not-a-token"]),
        start(["cancel", "1", "--server", served.url, "--token", viewer]),
        start(["status", "--server", away, "--token", both.token]),
        start(["submit", "cli_remote", "--server", served.url]),
        start(["status", "--server", served.url, "--token", both.token, "--db", both.db_url]),
        start(["rerun", "1", "--workers", "2", "--server", served.url, "--token", both.token]),
        start(["status", "--json"], env={"BATON_SERVER": served.url, "BATON_TOKEN": viewer}),
    ]
    wrong, forbidden, unreachable, tokenless, doubled, local, viewed = [done(p) for p in procs]

    assert wrong.returncode == EXIT_USAGE and f"{served.url} refused the token: unknown token" in wrong.stderr
    assert forbidden.returncode == EXIT_USAGE and "a viewer token may not steer" in forbidden.stderr
    assert unreachable.returncode == EXIT_BACKEND and f"{away} unreachable" in unreachable.stderr
    assert tokenless.returncode == EXIT_USAGE and "a server needs a token" in tokenless.stderr
    assert doubled.returncode == EXIT_USAGE and "give --server or --db, not both" in doubled.stderr
    assert local.returncode == EXIT_USAGE and "--workers runs tasks here" in local.stderr
    assert (viewed.returncode, viewed.stdout) == (0, "[]\n"), viewed.stderr  # BATON_SERVER and BATON_TOKEN


def test_over_https_the_ca_file_is_what_makes_the_server_trusted(backend: Store, both: Both, tmp_path: Path) -> None:
    tls = make_tls(tmp_path)
    secure = Served(backend.url, tmp_path, tls=tls).start()
    try:
        trusted, untrusted = baton_all(
            ["status", "--json", "--server", secure.url, "--token", both.token, "--ca-file", str(tls.ca_file)],
            ["status", "--json", "--server", secure.url, "--token", both.token],
        )
        with Client(secure.url, both.token, ca_file=str(tls.ca_file)) as client:
            event, created = client.submit("cli_needy")
        with Client(secure.url, both.token) as stranger, pytest.raises(UsageError, match="does not trust"):
            stranger.graphs()
    finally:
        secure.stop()

    assert (trusted.returncode, trusted.stdout) == (0, "[]\n"), trusted.stderr
    assert untrusted.returncode == EXIT_USAGE
    assert f"{secure.url} has a certificate this client does not trust" in untrusted.stderr
    assert "--ca-file" in untrusted.stderr
    assert created and backend.event(event.id).type == "cli_needy"


# --- every event command, and its JSON form, both ways ------------------------------------------

CLOCKS = [(ELAPSED, " · Ns"), (re.compile(r'"duration_s": [0-9.]+'), '"duration_s": N')]


def _clockless(text: str) -> str:
    for pattern, stand_in in CLOCKS:
        text = pattern.sub(stand_in, text)
    return text


@dataclass(frozen=True)
class Twins:
    """Two events with the same graph, parameters and history: ``a``, which the server's side of
    each comparison acts on, and ``b``, which the database's side does. A command that changes an
    event cannot be run twice on one, so it runs once on each twin; the outputs may differ only
    in the event's and its tasks' ids and in the clocks (elapsed seconds, ``duration_s``)."""

    backend: Store
    a: int
    b: int

    def alike(self, through: Ran, direct: Ran) -> Ran:
        assert (through.returncode, _clockless(through.stdout), _clockless(through.stderr)) == (
            direct.returncode, self._as_a(direct.stdout), self._as_a(direct.stderr),
        )  # fmt: skip
        return through

    def _as_a(self, text: str) -> str:
        pairs = list(zip(self.backend.tasks(self.a), self.backend.tasks(self.b), strict=True))
        assert all((x.node, x.partition) == (y.node, y.partition) for x, y in pairs)
        tasks = {y.id: x.id for x, y in pairs}
        text = re.sub(rf'(event |"event_id": |baton logs |baton rerun ){self.b}\b', rf"\g<1>{self.a}", text)
        text = re.sub(r'"task_id": (\d+)', lambda m: f'"task_id": {tasks[int(m[1])]}', text)
        return _clockless(text)


def _one(args: Sequence[str]) -> Ran:
    (ran,) = baton_all(args)
    return ran


def _twice(both: Both, twins: Twins, *args: str) -> Ran:
    """``args`` with the server on twin ``a`` and with the database on twin ``b``, at once."""
    on = [str(twins.a) if a == "EVENT" else a for a in args], [str(twins.b) if a == "EVENT" else a for a in args]
    through, direct = baton_all(both.remote(*on[0]), both.direct(*on[1]))
    return twins.alike(through, direct)


def _finished(backend: Store, *events: int) -> None:
    _until(lambda: all(backend.event_state(e).terminal for e in events))


def test_submit_status_logs_audit_and_cancel_with_their_json_print_alike_both_ways(backend: Store, both: Both) -> None:
    failing, needy = Twins(backend, 1, 2), Twins(backend, 3, 4)
    failing.alike(_one(both.remote("submit", "cli_remote", "-p", "bad=d2", "--key", "a")),
                  _one(both.direct("submit", "cli_remote", "-p", "bad=d2", "--key", "b")))  # fmt: skip
    needy.alike(_one(both.remote("submit", "cli_needy", "--json")), _one(both.direct("submit", "cli_needy", "--json")))
    again = both.compare("submit", "cli_remote", "-p", "bad=d2", "--key", "a")
    assert (again.returncode, again.stdout) == (0, "event 1 already exists (submitted)\n")
    assert '"created": false' in both.compare("submit", "cli_remote", "-p", "bad=d2", "--key", "a", "--json").stdout

    with Engine(backend):
        for wait in (["--wait"], ["--wait", "--json"]):
            waited = both.compare("submit", "cli_remote", "-p", "bad=d2", "--key", "a", *wait)
            assert waited.returncode == EXIT_FAILED and "extract" in waited.stdout
        _finished(backend, 1, 2)
        _until(lambda: [t.state for t in backend.tasks(4)] == [TaskState.READY] and backend.workers() != [])
        for args in (["status", "1"], ["status", "1", "--json"], ["status"], ["status", "--json"], ["logs", "1"],
                     ["logs", "1", "--all-attempts"], ["logs", "1", "--node", "extract", "--partition", "d2"],
                     ["logs", "3"]):  # fmt: skip
            shown = both.compare(*args)
            assert shown.returncode == 0 and (shown.stdout or args == ["logs", "3"]), args
        unknown = both.compare("logs", "1", "--node", "nope")
        assert unknown.returncode == EXIT_USAGE and "(nodes: extract, hq, report)" in unknown.stderr
        for running in (["status", "3"], ["status", "3", "--json"]):  # its clock moves between the two
            through, direct = baton_all(both.remote(*running), both.direct(*running))
            assert (through.returncode, _clockless(through.stdout), through.stderr) == (
                direct.returncode, _clockless(direct.stdout), direct.stderr,
            )  # fmt: skip
            assert "1 ready task(s) of train need labels ['gpu']" in through.stderr + through.stdout
        cancelled = _twice(both, needy, "cancel", "EVENT")
        twice = both.compare("cancel", "3")
        audited, refused = baton_all(both.direct("audit", "1"), both.remote("audit", "1"))

    assert (cancelled.returncode, cancelled.stdout) == (0, "event 3: cancelled\n")
    assert twice.returncode == EXIT_USAGE and "already cancelled" in twice.stderr
    assert audited.returncode == 0 and "event.submitted" in audited.stdout
    assert refused.returncode == EXIT_USAGE and "No such option '--server'" in refused.stderr  # the API has no audit


def test_rerun_and_its_json_and_wait_forms_print_alike_both_ways(backend: Store, both: Both, tmp_path: Path) -> None:
    twins = Twins(backend, 1, 2)
    with Engine(backend):
        for key in ("a", "b"):
            assert _one(both.remote("submit", "cli_remote", "-p", "bad=d2", "--key", key)).returncode == 0
        _finished(backend, 1, 2)
        queued = _twice(both, twins, "rerun", "EVENT", "--partition", "d2")
        _finished(backend, 1, 2)
        as_json = _twice(both, twins, "rerun", "EVENT", "--json")
        _finished(backend, 1, 2)
        failed = _twice(both, twins, "rerun", "EVENT", "--node", "extract", "--wait")
        failed_json = _twice(both, twins, "rerun", "EVENT", "--wait", "--json")
        (tmp_path / "fixed").touch()
        fixed = _twice(both, twins, "rerun", "EVENT", "--partition", "d2", "--wait")
        refused = both.compare("rerun", "1", "--json")

    assert (queued.returncode, queued.stdout) == (0, "event 1: 3 task(s) re-queued\n")
    assert (as_json.returncode, as_json.stdout) == (0, '{"event_id": 1, "reset": 3}\n')
    assert failed.returncode == EXIT_FAILED and "extract[d2] after 4 attempt(s)" in " ".join(failed.stdout.split())
    assert failed_json.returncode == EXIT_FAILED and '"attempts": 5' in failed_json.stdout
    assert fixed.returncode == 0 and "hq →" in fixed.stdout
    assert refused.returncode == EXIT_USAGE and "only a failed or cancelled event can be re-run" in refused.stderr


# --- webhooks, both ways ---------------------------------------------------------------------------


def test_webhook_commands_and_their_json_print_alike_both_ways_and_never_a_secret(
    backend: Store, served: Served, tmp_path: Path
) -> None:
    admin = Both(backend.url, served.url, mint(backend, Role.ADMIN))
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    add = ["webhook", "add", "ops", "--url", "https://hooks.example/ops", "--kinds", "event.cancelled,event.failed",
           "--event-type", "hooked", "--secret-file", str(secret_file), "--replace"]  # fmt: skip
    ran = [admin.compare(*add), admin.compare(*add, "--json")]
    (made,) = baton_all(admin.remote("webhook", "add", "other", "--url", "http://127.0.0.1:9/x", "--kinds",
                                     "event.cancelled", "--secret-file", str(secret_file)))  # fmt: skip
    taken = admin.compare("webhook", "add", "other", "--url", "http://127.0.0.1:9/x", "--kinds", "event.failed",
                          "--secret-file", str(secret_file))  # fmt: skip
    cancelled_event(backend)
    assert dispatch(backend) == 2
    for args in (["webhook", "list"], ["webhook", "list", "--json"], ["webhook", "deliveries"],
                 ["webhook", "deliveries", "ops", "--state", "pending", "--json"],
                 ["webhook", "deliveries", "--limit", "1", "--before", "2"]):  # fmt: skip
        ran.append(admin.compare(*args))
        assert ran[-1].returncode == 0 and ran[-1].stdout, (args, ran[-1].stderr)
    removed = admin.compare("webhook", "remove", "ops")
    unknown = admin.compare("webhook", "deliveries", "nope")
    refused = baton_all(["webhook", "list", "--server", served.url, "--token", mint(backend, Role.CLIENT)],
                        ["webhook", "add", "x", "--url", "https://h.example/", "--kinds", "event.failed"],
                        ["webhook", "add", "x", "--url", "ftp://h.example/", "--kinds", "event.failed",
                         "--secret-file", str(secret_file), "--db", backend.url])  # fmt: skip

    assert ran[0].stdout == ("webhook ops stored: event.cancelled,event.failed of hooked -> https://hooks.example/ops "
                             f"(secret {hashlib.sha256(SECRET.encode()).hexdigest()[:4]}…)\n")  # fmt: skip
    assert made.returncode == 0 and taken.returncode == EXIT_USAGE and "--replace" in taken.stderr
    assert (removed.returncode, removed.stdout) == (0, "webhook ops removed\n")
    assert unknown.returncode == EXIT_USAGE and "no webhook 'nope'" in unknown.stderr
    assert [r.returncode for r in refused] == [EXIT_USAGE] * 3
    assert "a client token may not admin" in refused[0].stderr and "--secret-file" in refused[1].stderr
    assert "url: an http:// or https:// URL" in refused[2].stderr
    printed = "".join(r.stdout + r.stderr for r in [*ran, made, taken, removed, unknown, *refused])
    assert SECRET not in printed
    assert [d.state for d in backend.deliveries(webhook="ops")] == ["cancelled"]
