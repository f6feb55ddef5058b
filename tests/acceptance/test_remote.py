"""Remote task servers as real processes: ``baton worker --server URL`` holding only the
server's URL, a worker token and (for HTTPS) the CA, never a database URL; a ``baton server``
and a controller on the store's side. On both backends.

The faults a network brings are made for real: a relay (tests/relay.py) between a worker and
the server drops an answer or counts requests; workers are SIGSTOPped and resumed; the server is
SIGKILLed and started again on its port; a token is revoked under a running worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import EXAMPLE
from relay import DropRule, Exchange, Relay, body_of, claim_id_of, claims_in
from serving import Served, Tls, make_tls, mint

from baton.access import Role
from baton.engine.states import EventState, Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_file
from baton.settings import SERVER_VARIABLES
from baton.store.protocol import Store
from baton.store.sql import SqlStore

pytestmark = pytest.mark.slow
GRAPHS = str(Path(__file__).resolve().parents[1] / "graphs")
STOP_S = 30.0


# --- the two sides ----------------------------------------------------------------------------


def remote_env(token: str) -> dict[str, str]:
    """A remote worker's whole environment: this one's without any ``BATON_*`` variable, plus
    the worker token. No database URL, no settings file."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BATON_")}
    env["BATON_TOKEN"] = token
    assert {k for k in env if k.upper().startswith("BATON_")} <= SERVER_VARIABLES
    assert not [k for k, v in env.items() if "sqlite:" in v or "postgresql:" in v or "postgres:" in v]
    return env


class Remote:
    """A server and a controller on the store's side; remote workers on the other."""

    def __init__(self, store: Store, tmp: Path, *, tls: Tls | None = None, server_env: dict[str, str] | None = None):
        self.store = store
        self.tmp = tmp
        self.server = Served(store.url, tmp, tls=tls, env=server_env)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self.relays: list[Relay] = []

    def start(self) -> Remote:
        self.server.start()
        # expired leases looked for every 0.2 s (1 s by default): a lost worker's tasks wait for
        # the lease, not for the next look after it
        env = {**os.environ, "BATON_SWEEP_S": "0.2"}
        self._spawn("controller", ["controller", "--poll-s", "0.05", "--db", self.store.url], env)
        return self

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "baton", *args], stdout=out, stderr=out, env=env,
                                    cwd=self.tmp)  # fmt: skip
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def worker(self, token: str, *args: str, url: str | None = None, name: str = "remote") -> subprocess.Popen[bytes]:
        argv = ["worker", "--server", url or self.server.url, "--name", name, *args]
        if self.server.tls is not None:
            argv += ["--ca-file", str(self.server.tls.ca_file)]
        return self._spawn(name, argv, remote_env(token))

    def relay(self, drop: DropRule | None = None) -> Relay:
        """A relay in front of the server, stopped after the processes: a worker whose network
        went away before it was told to stop would spend its retries on it first."""
        self.relays.append(Relay(self.server.port, drop=drop).start())
        return self.relays[-1]

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")

    def submit(self, graph: Graph, params: dict[str, Any] | None = None) -> int:
        record = self.store.register_graph(graph)
        event, _ = self.store.submit(record.id, validate_params(graph, params or {}))
        return event.id

    def wait(self, event_id: int, timeout_s: float = 60.0) -> EventState:
        wait_for(lambda: self.store.event(event_id).state.terminal, timeout_s, f"event {event_id} to end")
        return self.store.event(event_id).state

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a stopped one cannot handle SIGTERM
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.server.stop()
        for relay in self.relays:
            relay.stop()


@pytest.fixture
def make_remote(backend: Store, tmp_path: Path) -> Iterator[Callable[..., Remote]]:
    made: list[Remote] = []

    def make(**kwargs: Any) -> Remote:
        made.append(Remote(backend, tmp_path, **kwargs))
        return made[-1].start()

    yield make
    for remote in made:
        remote.stop()


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g}s waiting for {what}"
        time.sleep(0.02)


def ledger(path: Path, what: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    rows = [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
    return [r for r in rows if what is None or r["what"] == what]


def steps(name: str, parts: list[str], **options: Any) -> GraphBuilder:
    """``work`` per partition (tests/graphs/remote_tasks.py:step), then ``total`` over them all;
    ``options`` for both nodes."""
    g = GraphBuilder(name, python_path=[GRAPHS], defaults={"retries": 2, "retry_delay_s": 0.0})
    g.param("parts", "list", default=parts).partitions(param="parts")
    g.param("ledger", "string", default="").param("sleep_s", "number", default=0.0)
    for p in parts:
        g.param(f"first_{p}_s", "number", default=0.0)
    g.python("work", "remote_tasks:step", partitioned=True, **options)
    g.python("total", "remote_tasks:step", after=["work"], partitioned=False, **options)
    return g


def assert_completed_once(store: Store, event_id: int) -> None:
    """Every task succeeded exactly once: one succeeded attempt, one success in the audit."""
    tasks = store.tasks(event_id)
    assert tasks and all(t.state is TaskState.SUCCEEDED for t in tasks)
    for task in tasks:
        outcomes = [a.outcome for a in store.attempts([task.id])]
        assert outcomes.count(Outcome.SUCCEEDED) == 1, (task.node, task.partition, outcomes)
    succeeded = Counter(a.task_id for a in store.audit(event_id=event_id) if a.action == "task.succeeded")
    assert succeeded == {t.id: 1 for t in tasks}


def outcomes_of(store: Store, event_id: int) -> list[Outcome]:
    return [a.outcome for a in store.attempts([t.id for t in store.tasks(event_id)])]


# --- the year-end report ----------------------------------------------------------------------


@pytest.mark.long(seconds=15)
def test_the_year_end_report_runs_on_two_remote_workers_over_https_holding_no_database_url(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    remote = make_remote(tls=make_tls(tmp_path))
    erp_box = remote.worker(mint(backend, Role.WORKER, "erp-box", labels=["erp"]), "--slots", "4", "--label", "erp",
                            name="erp-box")  # fmt: skip
    other_box = remote.worker(mint(backend, Role.WORKER, "other-box", labels=[]), "--slots", "4", name="other-box")
    wait_for(lambda: len(backend.workers()) == 2, what="both workers to register")
    backend.register_graph(load_graph_file(EXAMPLE))
    departments = ["sales", "engineering", "branch_chengdu"]
    with remote.server.client(mint(backend, Role.CLIENT)) as http:
        submitted = http.post("/api/v1/events", headers={"Idempotency-Key": "ye-2025"},
                              json={"type": "year_end_report", "params": {"departments": departments}})  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    event_id = submitted.json()["id"]
    assert remote.wait(event_id, 120) is EventState.SUCCEEDED
    assert_completed_once(backend, event_id)
    tasks = backend.tasks(event_id)
    assert len(tasks) == 6 * len(departments) + 2 and all(t.attempt == 1 for t in tasks)
    ran_on = {t.id: (backend.attempts([t.id])[0].worker_id or "") for t in tasks}
    assert {ran_on[t.id].split("-")[0] for t in tasks if t.node == "extract_erp"} == {"erp"}  # only it has the label
    assert {w.split("-")[0] for w in ran_on.values()} == {"erp", "other"}  # both took work
    report = (tmp_path / "year_end_report_out" / "hq" / "company.csv").read_text()
    assert all(d in report for d in departments)

    # what the tasks themselves see: neither the token nor the server's address, nor a database
    probe = GraphBuilder("env_probe", python_path=[GRAPHS]).param("parts", "list", default=["a", "b", "c", "d"])
    probe.partitions(param="parts").python("look", "remote_tasks:environment", partitioned=True)
    probe_id = remote.submit(probe.build())
    assert remote.wait(probe_id) is EventState.SUCCEEDED
    for task in backend.tasks(probe_id):
        seen = json.loads(task.result_json or "{}")
        assert seen["database_urls_in"] == [] and not set(seen["baton_variables"]) & {*SERVER_VARIABLES, "BATON_DB"}
    assert erp_box.poll() is None and other_box.poll() is None


# --- faults -----------------------------------------------------------------------------------


def first_claim_with_tasks() -> Callable[[Exchange], bool]:
    dropped: list[Exchange] = []

    def rule(exchange: Exchange) -> bool:
        if dropped or not claims_in(exchange):
            return False
        dropped.append(exchange)
        return True

    return rule


@pytest.mark.parametrize("hold", ["0", "auto"])
def test_a_claim_answer_lost_on_the_way_is_claimed_again_with_the_same_attempts(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path, hold: str
) -> None:
    """Without holds the lost answer's tasks were running; with them, held: either way the same
    claim id brings them back, and none runs twice or uses a second attempt."""
    lease_s = 10.0
    remote = make_remote(server_env={"BATON_LEASE_S": str(lease_s)})
    relay = remote.relay(drop=first_claim_with_tasks())
    event_id = remote.submit(steps("lost-answer", ["a", "b", "c", "d"]).build(), {"sleep_s": 0.1})
    remote.worker(mint(backend, Role.WORKER), "--slots", "4", "--hold", hold, url=relay.url)
    assert remote.wait(event_id) is EventState.SUCCEEDED
    (lost,) = [e for e in relay.tally.since(0) if e.dropped]
    again = [e for e in relay.tally.since(0) if e.path == lost.path and not e.dropped and
             claim_id_of(e) == claim_id_of(lost)]  # fmt: skip
    assert again and sorted(claims_in(again[0])) == sorted(claims_in(lost))
    # asked again at once (from the worker's arrival at the relay: its start-up is not measured)
    took = again[0].at - lost.at
    assert took < lease_s / 2, f"{took:.1f}s: the lost claim was asked again only after waiting out a lease"
    assert_completed_once(backend, event_id)
    assert all(t.attempt == 1 for t in backend.tasks(event_id))
    assert Outcome.LOST not in outcomes_of(backend, event_id)


def gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def answers_to(exchanges: list[Exchange]) -> dict[tuple[int, int], str]:
    said = {}
    for e in exchanges:
        if e.path in ("/worker/v1/claim", "/worker/v1/report") and e.status == 200:
            said.update({(a["task_id"], a["attempt"]): a["answer"] for a in json.loads(body_of(e.answer))["answers"]})
    return said


@pytest.mark.long(seconds=15)
def test_a_worker_paused_past_its_lease_is_answered_stale_and_stops_what_it_still_runs(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    """Its two attempts: ``a`` ends while it is stopped (its report, sent on resuming, is stale),
    ``b`` would run 60 s (the resumed worker must stop it). Both ran again on the other worker."""
    book = tmp_path / "ledger.jsonl"
    remote = make_remote(server_env={"BATON_LEASE_S": "2"})
    relay = remote.relay()
    params = {"ledger": str(book), "first_a_s": 0.5, "first_b_s": 60.0}
    event_id = remote.submit(steps("paused", ["a", "b"]).build(), params)
    paused = remote.worker(mint(backend, Role.WORKER), "--slots", "2", url=relay.url, name="paused")
    wait_for(lambda: len(ledger(book, "start")) == 2, what="both first attempts to start")
    paused.send_signal(signal.SIGSTOP)
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", name="healthy")
    assert remote.wait(event_id) is EventState.SUCCEEDED
    wait_for(lambda: any(r["partition"] == "a" and r["attempt"] == 1 for r in ledger(book, "end")),
             what="a's first attempt to end while its worker is stopped")  # fmt: skip
    resumed = time.monotonic()
    paused.send_signal(signal.SIGCONT)
    task = {t.partition: t.id for t in backend.tasks(event_id) if t.node == "work"}
    wait_for(lambda: answers_to(relay.tally.since(0)).get((task["a"], 1)) == "stale", 10, "a stale answer")
    (b_first,) = [r for r in ledger(book, "start") if r["partition"] == "b" and r["attempt"] == 1]
    wait_for(lambda: gone(b_first["pid"]), 10, "the resumed worker to stop b's first attempt")
    assert time.monotonic() - resumed < 10
    assert_completed_once(backend, event_id)
    for partition in ("a", "b"):
        outcomes = [(a.attempt, a.outcome) for a in backend.attempts([task[partition]])]
        assert outcomes == [(1, Outcome.LOST), (2, Outcome.SUCCEEDED)], (partition, outcomes)
    assert not [r for r in ledger(book, "end") if r["partition"] == "b" and r["attempt"] == 1]
    assert (task["b"], 1) not in answers_to(relay.tally.since(0))  # stopped: nothing to report
    assert paused.poll() is None, remote.log(paused)  # and it carries on


@pytest.mark.long(seconds=20)
def test_the_server_killed_and_restarted_mid_event_loses_nothing_and_workers_come_back_by_themselves(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book = tmp_path / "ledger.jsonl"
    # the lease is the outage the workers' tasks may ride out: the default's 30 s, so that a
    # restart slowed by a busy machine (a new server process starting) is still within it
    remote = make_remote(server_env={"BATON_LEASE_S": "30"})
    parts = [f"p{i}" for i in range(8)]
    event_id = remote.submit(steps("restart", parts).build(), {"ledger": str(book), "sleep_s": 0.3})
    workers = [remote.worker(mint(backend, Role.WORKER), "--slots", "2", name=f"w{i}") for i in range(2)]
    wait_for(lambda: len(ledger(book, "end")) >= 3, what="the first tasks to finish")
    remote.server.restart()  # SIGKILL, then the same port again
    assert remote.wait(event_id) is EventState.SUCCEEDED
    assert_completed_once(backend, event_id)
    assert all(t.attempt == 1 for t in backend.tasks(event_id))
    assert len(ledger(book, "start")) == len(parts) + 1  # and nothing ran twice
    assert all(w.poll() is None for w in workers)


@pytest.mark.long(seconds=15)
def test_a_revoked_token_ends_its_worker_with_the_reason_and_the_task_runs_elsewhere(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book = tmp_path / "ledger.jsonl"
    remote = make_remote(server_env={"BATON_LEASE_S": "2", "BATON_TOKEN_CACHE_S": "0.2"})
    event_id = remote.submit(steps("revoked", ["a"]).build(), {"ledger": str(book), "first_a_s": 60.0})
    doomed = remote.worker(mint(backend, Role.WORKER, "doomed"), "--slots", "1", name="doomed")
    wait_for(lambda: ledger(book, "start"), what="the task to start")
    (token,) = [t for t in backend.tokens() if t.name == "doomed"]
    backend.revoke_token(token.id)
    revoked = time.monotonic()
    doomed.wait(timeout=15)
    assert time.monotonic() - revoked < 5
    log = remote.log(doomed)
    assert doomed.returncode != 0 and "the server refused this worker" in log and "revoked" in log, log
    assert log.count("refused this worker") <= 3, log  # said once or twice, not in a loop
    assert gone(ledger(book, "start")[0]["pid"])  # its attempt was stopped with it
    remote.worker(mint(backend, Role.WORKER, "spare"), "--slots", "1", name="spare")
    assert remote.wait(event_id) is EventState.SUCCEEDED
    assert_completed_once(backend, event_id)


def test_a_worker_declaring_a_label_its_token_does_not_allow_stops_at_once(
    backend: Store, make_remote: Callable[..., Remote]
) -> None:
    remote = make_remote()
    token = mint(backend, Role.WORKER, "erp-only", labels=["erp"])
    proc = remote.worker(token, "--label", "erp", "--label", "gpu", name="greedy")
    proc.wait(timeout=30)
    log = remote.log(proc)
    assert proc.returncode != 0 and "allows the labels ['erp'] only, not ['gpu']" in log, log


IDLE_LONG_POLL_S, IDLE_LEASE_S = 1.5, 3.0


@pytest.fixture
def idle(backend: Store, make_remote: Callable[..., Remote]) -> tuple[Remote, Relay]:
    """A server whose long poll is cut to IDLE_LONG_POLL_S, a controller, a bystander worker and
    an idle worker (label ``idle``) behind a relay, once its first long poll has arrived: started
    here, before the test holds the run alone, since starting processes is no part of what it
    measures."""
    remote = make_remote(server_env={"BATON_LONG_POLL_S": str(IDLE_LONG_POLL_S), "BATON_LEASE_S": str(IDLE_LEASE_S)})
    relay = remote.relay()
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", name="bystander")
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", "--label", "idle", url=relay.url, name="idle")
    wait_for(lambda: relay.tally.since(0, "/worker/v1/wait"), what="the first long poll")
    return remote, relay


@pytest.mark.alone  # a wall-time figure: how soon new work reaches an idle worker
def test_an_idle_remote_worker_long_polls_once_per_long_poll_and_new_work_reaches_it_at_once(
    idle: tuple[Remote, Relay],
) -> None:
    """Idle, beside a controller renewing its role and workers heartbeating (commits that must
    not wake it): only heartbeats, one long poll per ``long_poll_s`` and the worker's own
    safety-net claim (every 3 long polls). Then events submitted at different moments of its
    long poll each reach it well within the long poll.

    The server's long poll is cut to 1.5 s (20 s by default) and everything measured scales with
    it: the window is three long polls, the heartbeats come every ``lease_s / 6``, the events are
    submitted across one long poll and must be taken within a third of it."""
    long_poll_s, lease_s = IDLE_LONG_POLL_S, IDLE_LEASE_S
    window_s = 3 * long_poll_s
    remote, relay = idle
    start = time.monotonic()
    time.sleep(window_s)  # the measurement itself: what an idle worker sends in this window
    sent = Counter(e.path for e in relay.tally.since(start))
    heartbeat_s = lease_s / 6
    assert sent["/worker/v1/wait"] <= window_s / long_poll_s + 1, sent
    assert sent["/worker/v1/claim"] <= window_s / (3 * long_poll_s) + 1, sent
    # the server's heartbeat interval, not the worker's own default (5 s)
    assert window_s / heartbeat_s - 2 <= sent["/worker/v1/heartbeat"] <= window_s / heartbeat_s + 1, sent
    assert set(sent) <= {"/worker/v1/wait", "/worker/v1/claim", "/worker/v1/heartbeat"}, sent

    graph = steps("wake", ["only"], labels=["idle"]).build()  # for the idle one, not the bystander
    for phase in (0.0, 0.13, 0.37, 0.63, 0.87):  # of a long poll that started at a random time
        time.sleep(phase * long_poll_s)
        submitted = time.monotonic()
        event_id = remote.submit(graph)
        assert remote.wait(event_id, 10) is EventState.SUCCEEDED
        took = [e.at - submitted for e in relay.tally.since(submitted, "/worker/v1/claim") if claims_in(e)]
        assert took and took[0] < long_poll_s / 3, took  # the idle one took the first task at once


def test_a_remote_workers_running_task_shows_its_output_before_it_ends(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    """The worker sends its running task's output through ``/worker/v1/logs``; the store's
    ``attempt_log`` shows it while the task waits for the test, then the report's output."""
    remote = make_remote()
    release = tmp_path / "release"
    g = GraphBuilder("remote-live", python_path=[GRAPHS]).param("release", "string", default=str(release))
    event_id = remote.submit(g.python("talk", "fault_tasks:talk_then_wait").build())
    first_line = "started talk, attempt 1 ✓\n"

    def first_line_live() -> bool:
        tasks = backend.tasks(event_id)
        if not tasks or tasks[0].state is not TaskState.RUNNING:
            return False
        chunk = backend.attempt_log(tasks[0].id, tasks[0].attempt)
        return chunk.live and chunk.text == first_line

    remote.worker(mint(backend, Role.WORKER), "--slots", "1", "--log-tail-s", "0.1")
    wait_for(first_line_live, 60, "the task's first line in its live log")
    assert not release.exists()  # the task cannot have ended: it was seen running
    release.touch()
    assert remote.wait(event_id) is EventState.SUCCEEDED
    (task,) = backend.tasks(event_id)
    (attempt,) = backend.attempts([task.id])
    final = backend.attempt_log(task.id, attempt.attempt)
    assert not final.live and final.text == attempt.stdout == first_line + "released\n"


# --- held tasks -------------------------------------------------------------------------------

HOLDING = {"BATON_LEASE_S": "3", "BATON_HEARTBEAT_S": "0.5", "BATON_HOLD_S": "2"}
HOLD_S = 2.0
# holds that outlast a loaded machine's pauses (tests of recalls, not of expiry)
HOLDING_LONG = {**HOLDING, "BATON_HOLD_S": "30"}


def gated(name: str, parts: int, gate: Path, book: Path, gated_part: str = "p03") -> tuple[Graph, dict[str, Any]]:
    """``work`` per partition p00.. (the first attempt of ``gated_part`` waits for ``gate``)."""
    g = GraphBuilder(name, python_path=[GRAPHS], defaults={"retries": 2, "retry_delay_s": 0.0})
    g.param("parts", "list", default=[f"p{i:02}" for i in range(parts)]).partitions(param="parts")
    g.param("ledger", "string", default="").param("gate", "string", default="").param("gated", "string", default="")
    g.param("sleep_s", "number", default=0.0)
    g.python("work", "remote_tasks:gated", partitioned=True)
    return g.build(), {"ledger": str(book), "gate": str(gate), "gated": gated_part}


def held_by(store: Store, worker_name: str) -> dict[int, int]:
    """The tasks a worker (by its name's prefix) holds: task id -> attempt (none used yet)."""
    sql = "SELECT id, attempt FROM tasks WHERE parked = 4 AND held_by LIKE ?"
    with cast(SqlStore, store).transaction(write=False) as tx:
        rows = tx.q(sql, (f"{worker_name}-%",)).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def holding_worker(
    remote: Remote, store: Store, event_id: int, book: Path, name: str = "holder", url: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """A one-slot worker holding up to 4 tasks, its slot taken by the gated task; its executor's pid."""
    proc = remote.worker(mint(store, Role.WORKER), "--slots", "1", "--hold", "4", name=name, url=url)
    wait_for(lambda: any(r["partition"] == "p03" for r in ledger(book, "start")), what="the gated task to start")
    wait_for(lambda: any(t.partition == "p03" and t.state is TaskState.RUNNING for t in store.tasks(event_id)),
             what="the store to know the gated task started")  # fmt: skip
    wait_for(lambda: len(held_by(store, name)) >= 2, what="the worker to hold tasks beside the gated one")
    (gated_start,) = [r for r in ledger(book, "start") if r["partition"] == "p03"]
    return proc, gated_start["pid"]


@pytest.mark.long(seconds=12)
def test_a_remote_worker_killed_with_held_tasks_sees_them_run_elsewhere_within_the_hold_lease_on_attempt_1(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    remote = make_remote(server_env=HOLDING)
    graph, params = gated("killed-holding", 8, gate, book)
    event_id = remote.submit(graph, params)
    holder, _ = holding_worker(remote, backend, event_id, book)
    held = held_by(backend, "holder")
    holder.send_signal(signal.SIGKILL)
    killed_at = time.time()
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", "--hold", "4", name="other")
    assert remote.wait(event_id) is EventState.SUCCEEDED
    expired = [a for a in backend.audit() if a.action == "hold.expired"]
    assert expired and expired[0].at - killed_at <= HOLD_S + 1.5, expired[0].at - killed_at
    for task_id in held:
        assert [(a.attempt, a.outcome) for a in backend.attempts([task_id])] == [(1, Outcome.SUCCEEDED)]
    assert_completed_once(backend, event_id)


@pytest.mark.long(seconds=12)
def test_held_tasks_are_given_back_to_an_idle_worker(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    remote = make_remote(server_env=HOLDING_LONG)
    graph, params = gated("idle-other", 8, gate, book)
    event_id = remote.submit(graph, params)
    _, holder_pid = holding_worker(remote, backend, event_id, book)
    held = held_by(backend, "holder")
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", "--hold", "0", name="idle")
    ran = lambda: {r["partition"] for r in ledger(book, "end") if r["pid"] != holder_pid}  # noqa: E731
    parts = {t.id: t.partition for t in backend.tasks(event_id)}
    wait_for(lambda: {parts[t] for t in held} <= ran(), what="the idle worker to run what the other held")
    assert not gate.exists()  # while the holder's slot was still taken
    gate.touch()
    assert remote.wait(event_id) is EventState.SUCCEEDED
    assert any(a.action == "hold.recalled" for a in backend.audit())
    assert_completed_once(backend, event_id)


@pytest.mark.long(seconds=12)
def test_held_tasks_are_given_back_for_a_higher_priority_task_which_then_starts_first(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    remote = make_remote(server_env=HOLDING_LONG)
    graph, params = gated("low", 10, gate, book)
    low = remote.submit(graph, params)
    relay = remote.relay()
    holding_worker(remote, backend, low, book, url=relay.url)
    wait_for(lambda: len(held_by(backend, "holder")) == 4, what="the holder's window to fill")
    urgent_graph = GraphBuilder("urgent", python_path=[GRAPHS], defaults={"retries": 0})
    urgent_graph.param("ledger", "string", default="")
    urgent_graph.python("now", "remote_tasks:gated", priority=50)
    urgent = remote.submit(urgent_graph.build(), {"ledger": str(book)})
    wait_for(lambda: backend.tasks(urgent), what="the urgent event to be planned")
    urgent_id = backend.tasks(urgent)[0].id
    # the worker's own heartbeat lists it among its holds: it has the answer that brought it
    wait_for(lambda: urgent_id in heartbeat_holds(relay), what="the holder to hold the urgent task")
    gate.touch()
    assert remote.wait(urgent) is EventState.SUCCEEDED and remote.wait(low) is EventState.SUCCEEDED
    starts = [r for r in ledger(book, "start") if r["partition"] != "p03"]
    after_gate = starts[[r["partition"] for r in starts].index("p02") + 1 :]
    assert after_gate[0]["node"] == "now", [(r["node"], r["partition"]) for r in after_gate]
    assert any(a.action == "hold.recalled" for a in backend.audit())


def heartbeat_holds(relay: Relay) -> set[int]:
    """The tasks the relayed worker's heartbeats listed as held."""
    beats = [e for e in relay.tally.since(0) if e.path == "/worker/v1/heartbeat"]
    return {int(t) for e in beats for t, _ in json.loads(body_of(e.request)).get("held", [])}


@pytest.mark.long(seconds=12)
def test_a_worker_stopped_past_its_hold_lease_does_not_start_its_expired_holds(
    backend: Store, make_remote: Callable[..., Remote], tmp_path: Path
) -> None:
    book, gate = tmp_path / "ledger.jsonl", tmp_path / "gate"
    remote = make_remote(server_env=HOLDING)
    graph, params = gated("stopped-holding", 8, gate, book)
    event_id = remote.submit(graph, params)
    holder, holder_pid = holding_worker(remote, backend, event_id, book)
    held = held_by(backend, "holder")
    holder.send_signal(signal.SIGSTOP)
    wait_for(lambda: not held_by(backend, "holder"), what="the store to take the holds back")
    remote.worker(mint(backend, Role.WORKER), "--slots", "2", "--hold", "0", name="other")
    parts = {t.id: t.partition for t in backend.tasks(event_id)}
    wait_for(lambda: {parts[t] for t in held} <= {r["partition"] for r in ledger(book, "end")},
             what="the other worker to run the tasks the stopped one held")  # fmt: skip
    resumed_at = time.time()
    holder.send_signal(signal.SIGCONT)
    gate.touch()
    assert remote.wait(event_id) is EventState.SUCCEEDED
    wait_for(lambda: time.time() - resumed_at > 2 * HOLD_S, what="the resumed worker to have had its chance")
    late = [r for r in ledger(book, "start") if r["pid"] == holder_pid and r["t"] >= resumed_at]
    assert not late, late  # it started none of the holds that had run out while it was stopped
    for task_id in held:
        assert [a.attempt for a in backend.attempts([task_id])] == [1]
    assert holder.poll() is None, remote.log(holder)
