"""Baton across processes on PostgreSQL: mixed workers, controller failover, a database crash.

Controllers and workers are real ``baton`` processes; the database is the throwaway server of
the test session, which one test crash-restarts (``pg_ctl restart -m immediate``).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import Cluster, ledger_rows, running_cluster, shape, wait_for
from conftest import EXAMPLE, IN_CI
from pgserver import PgServer

from baton.engine.states import EventState, Outcome

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path) -> Iterator[Cluster]:
    yield from running_cluster(pg_url, tmp_path)


def completions_once(c: Cluster, event_id: int) -> None:
    """Every task has exactly one succeeded attempt and one task.succeeded decision."""
    for task in c.backend.tasks(event_id):
        outcomes = [a.outcome for a in c.backend.attempts([task.id])]
        assert outcomes.count(Outcome.SUCCEEDED) == 1, (task.node, task.partition, outcomes)
    decided = Counter(a.task_id for a in c.backend.audit(event_id=event_id) if a.action == "task.succeeded")
    assert set(decided.values()) == {1} and len(decided) == len(c.backend.tasks(event_id))


def test_the_year_end_report_on_three_different_workers_respects_capacity_and_labels(
    cluster: Cluster, tmp_path: Path
) -> None:
    from baton.graphs.spec import load_graph_file

    graph = load_graph_file(EXAMPLE)  # extract_erp needs label erp; hq_summary costs 2 slots
    cluster.start_controller()
    cluster.start_worker(1, "--name", "small")
    cluster.start_worker(2, "--name", "erp2", "--label", "erp")
    cluster.start_worker(3, "--name", "erp3", "--label", "erp", "--label", "gpu")
    wait_for(lambda: len(cluster.backend.workers()) == 3, what="three workers to register")
    workers = {w.id: w for w in cluster.backend.workers()}
    cost = {n.name: n.cost.get("slots", 1) for n in graph.nodes}

    samples: list[list[tuple[str, str]]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            with cluster.backend.transaction(write=False) as tx:
                samples.append([tuple(r) for r in tx.rows("SELECT worker_id, node FROM tasks WHERE state = 'running'")])
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    event_id = cluster.submit(graph, {"out_dir": str(tmp_path / "out")})
    try:
        assert cluster.wait(event_id) is EventState.SUCCEEDED
    finally:
        stop.set()
        sampler.join()

    busy = [s for s in samples if s]
    assert len(busy) >= 20, "the sampler saw too little of the run to prove anything"
    for running in busy:
        used: dict[str, int] = defaultdict(int)
        for worker_id, node in running:
            used[worker_id] += cost[node]
            if node == "extract_erp":
                assert "erp" in workers[worker_id].labels, f"erp task sampled on {workers[worker_id].name}"
        for worker_id, slots in used.items():
            assert slots <= workers[worker_id].capacity["slots"], (workers[worker_id].name, running)

    ran_on: dict[str, set[str]] = defaultdict(set)
    for task in cluster.backend.tasks(event_id):
        for attempt in cluster.backend.attempts([task.id]):
            ran_on[task.node].add(workers[attempt.worker_id or ""].name)
    assert ran_on["extract_erp"] <= {"erp2", "erp3"}
    assert "small" not in ran_on["hq_summary"]  # 2 slots never fit a 1-slot worker
    assert len(set().union(*ran_on.values())) == 3, f"load went to {dict(ran_on)}"
    assert (tmp_path / "out" / "hq" / "company.csv").exists()
    completions_once(cluster, event_id)


def _leader_process(c: Cluster, controllers: list) -> object:  # type: ignore[type-arg]
    holder = c.backend.leader("controller")
    assert holder is not None
    pid = int(holder.split("-")[-2])
    return next(p for p in controllers if p.pid == pid)


def test_kill_9_of_the_active_controller_and_the_standby_takes_over(cluster: Cluster, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    graph = shape("failover", [f"d{i}" for i in range(20)], retries=1, retry_delay_s=0.0).build()
    first = cluster.start_controller()
    second = cluster.start_controller()
    cluster.start_worker(4)
    wait_for(lambda: cluster.backend.leader("controller") is not None, what="a leader")
    event_id = cluster.submit(graph, {"ledger": str(ledger), "sleep_s": 0.03})
    wait_for(lambda: len(ledger_rows(ledger)) >= 30, what="the event to be under way")
    leader = _leader_process(cluster, [first, second])
    leader.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
    killed_at = time.time()
    later = cluster.submit(graph, {"ledger": str(ledger), "sleep_s": 0.0})  # only a controller expands it
    assert cluster.wait(event_id) is EventState.SUCCEEDED
    assert cluster.wait(later) is EventState.SUCCEEDED
    taken = [a for a in cluster.backend.audit() if a.action == "leadership.acquired" and a.at > killed_at]
    assert taken and taken[0].at - killed_at < 4.0 + 2.0  # lead_ttl_s plus a renewal round
    print(f"\nstandby took over {taken[0].at - killed_at:.2f}s after the leader was killed")
    for eid in (event_id, later):
        completions_once(cluster, eid)
        assert [a.action for a in cluster.backend.audit(event_id=eid)].count("event.expanded") == 1
    runs = Counter((r["node"], r["partition"], r["attempt"]) for r in ledger_rows(ledger))
    assert max(runs.values()) <= 2  # the same attempt never ran twice (two events share no tasks)


def test_a_database_crash_restart_mid_run_is_survived_by_every_process(
    cluster: Cluster, pg_server: PgServer | None, tmp_path: Path
) -> None:
    if pg_server is None:
        if IN_CI:
            pytest.fail("the restart test needs its own PostgreSQL server in CI")
        pytest.skip("needs the tests' own PostgreSQL server (pg_ctl)")
    ledger = tmp_path / "ledger.jsonl"
    graph = shape("restart", [f"d{i}" for i in range(30)]).build()  # no retries: a restart must not cost any
    controller = cluster.start_controller()
    workers = [cluster.start_worker(3), cluster.start_worker(3)]
    event_id = cluster.submit(graph, {"ledger": str(ledger), "sleep_s": 0.05})
    wait_for(lambda: len(ledger_rows(ledger)) >= 40, what="the event to be under way")
    crashed_at = time.time()
    pg_server.restart("immediate")
    back_at = time.time()
    assert cluster.wait(event_id, timeout_s=120) is EventState.SUCCEEDED
    assert controller.poll() is None and all(w.poll() is None for w in workers), "a process died"
    completions_once(cluster, event_id)
    finished = sorted(
        a.finished_at for t in cluster.backend.tasks(event_id) for a in cluster.backend.attempts([t.id])
        if a.outcome is Outcome.SUCCEEDED and a.finished_at > back_at
    )  # fmt: skip
    assert finished, "nothing finished after the restart"
    first = finished[0] - back_at
    print(f"\nrestart took {back_at - crashed_at:.2f}s; first completion {first:.2f}s after it was back")
