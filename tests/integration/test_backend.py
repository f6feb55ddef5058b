"""The backend verbs against a real SQLite file, driven in-process (no worker processes).

These pin down the engine's rules: idempotent submit, atomic expansion, readiness by
counters, attempt fencing, lease expiry as a counted attempt, retries, upstream failure,
cancel, scoped re-run, capacity and label fitting, inputs for fan-in, result caps.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import Conflict, NotFound
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.settings import Settings
from baton.store import open_store
from baton.store.records import Claim, ClaimRequest, Report, ReportAnswers
from baton.store.sql import SqlStore

Decide = Callable[[Claim], Outcome]
OVER = -1.0  # a lease that has already run out by the store's clock: the next look expires it


def year_end_shape(parts: list[str], retries: int = 0, **extract: object) -> Graph:
    g = GraphBuilder("shape", defaults={"retries": retries, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("departments", "list", default=parts).partitions(param="departments")
    for name in ("extract_finance", "extract_erp", "extract_crm"):
        g.python(name, "m:f", **extract)
    g.python("process", "m:f", after=["extract_finance", "extract_erp", "extract_crm"])
    g.python("summarize", "m:f", after=["process"])
    g.python("dept_report", "m:f", after=["summarize"])
    g.python("hq_summary", "m:f", after=["summarize"], partitioned=False)
    g.python("hq_report", "m:f", after=["hq_summary"], partitioned=False)
    return g.build()


def start(backend: SqlStore, graph: Graph, params: dict[str, object] | None = None, key: str | None = None) -> int:
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, params or {}), key=key)
    Controller(backend).expand()
    return event.id


def report(
    claim: Claim, outcome: Outcome = Outcome.SUCCEEDED, result: object = None, error: str | None = None
) -> Report:
    now = time.time()
    return Report(claim.task_id, claim.attempt, outcome, now, now, result_json=json.dumps(result), error=error)


def drive(
    backend: SqlStore,
    decide: Decide = lambda c: Outcome.SUCCEEDED,
    worker: str = "w1",
    slots: int = 4,
    result: Callable[[Claim], object] = lambda c: {"node": c.node},
) -> list[Claim]:
    """Play one worker until nothing is claimable; return every claim in order."""
    seen: list[Claim] = []
    pending: list[Report] = []
    while True:
        got = backend.claim(ClaimRequest(worker, {"slots": slots}, frozenset(), slots, 30.0, pending))
        assert not got.rejected
        pending = [
            report(c, decide(c), result(c), None if decide(c) is Outcome.SUCCEEDED else "boom") for c in got.claims
        ]
        seen += got.claims
        if not got.claims:
            return seen


def states(backend: SqlStore, event_id: int) -> dict[tuple[str, str], TaskState]:
    return {(t.node, t.partition): t.state for t in backend.tasks(event_id)}


# --- submit and expansion -------------------------------------------------------------------


def test_idempotent_submit_returns_same_event_and_refuses_other_params(backend: SqlStore) -> None:
    graph = year_end_shape(["a", "b"])
    record = backend.register_graph(graph)
    first, created = backend.submit(record.id, validate_params(graph, {}), key="year-end-2025")
    again, created_again = backend.submit(record.id, validate_params(graph, {}), key="year-end-2025")
    assert created and not created_again and again.id == first.id
    with pytest.raises(Conflict, match="year-end-2025"):
        backend.submit(record.id, validate_params(graph, {"departments": ["a"]}), key="year-end-2025")
    assert len(backend.events()) == 1


def test_submit_answers_the_event_as_submitted_though_a_controller_expands_it_at_once(
    backend: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A controller may expand the event between submit's commit and its answer (the API's
    ``POST /events`` answered ``running`` so under load): the answer is read in the transaction."""
    graph = year_end_shape(["a", "b"])
    record = backend.register_graph(graph)
    real = backend.transaction
    armed = [True]

    @contextmanager
    def expanding_after_the_first_write(write: bool = True) -> Iterator[Any]:
        with real(write) as tx:
            yield tx
        if write and armed[0]:
            armed[0] = False
            assert Controller(backend).expand() == 1  # right after submit's commit

    monkeypatch.setattr(backend, "transaction", expanding_after_the_first_write)
    event, created = backend.submit(record.id, validate_params(graph, {}), key="at-once")
    assert not armed[0], "the controller did not run between the commit and the answer"
    assert created and event.state is EventState.SUBMITTED
    assert backend.event(event.id).state is EventState.RUNNING


def test_registering_the_same_graph_keeps_its_version_and_a_change_makes_a_new_one(backend: SqlStore) -> None:
    first = backend.register_graph(year_end_shape(["a"]))
    same = backend.register_graph(year_end_shape(["a"]))
    changed = backend.register_graph(year_end_shape(["a"], retries=3))
    assert (first.id, first.version) == (same.id, same.version)
    assert changed.version == first.version + 1
    assert backend.latest_graph("shape").id == changed.id
    with pytest.raises(NotFound, match="nope"):
        backend.latest_graph("nope")


def test_expansion_creates_every_task_once_even_if_repeated(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b", "c"]))
    assert backend.event(event_id).tasks_total == 20
    assert Controller(backend).expand() == 0  # already expanded: nothing happens twice
    assert len(backend.tasks(event_id)) == 20
    ready = {k for k, s in states(backend, event_id).items() if s is TaskState.READY}
    assert ready == {(n, p) for n in ("extract_finance", "extract_erp", "extract_crm") for p in "abc"}


# --- readiness and pipelining ---------------------------------------------------------------


def test_partition_a_advances_while_partition_b_is_still_extracting(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b"]))
    claims = backend.claim(ClaimRequest("w", {"slots": 6}, frozenset(), 6, 30.0)).claims
    a_done = [report(c) for c in claims if c.partition == "a"]
    after = backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0, a_done)).claims
    assert [(c.node, c.partition) for c in after] == [("process", "a")]
    assert states(backend, event_id)[("extract_finance", "b")] is TaskState.RUNNING
    assert json.loads(after[0].inputs_json).keys() == {"extract_finance", "extract_erp", "extract_crm"}


def test_fan_in_waits_for_every_partition_and_receives_all_results(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b", "c"]))
    claims = drive(backend, result=lambda c: {"p": c.partition, "n": c.node})
    hq = next(c for c in claims if c.node == "hq_summary")
    summaries = [i for i, c in enumerate(claims) if c.node == "summarize"]
    assert claims.index(hq) > max(summaries)
    inputs = json.loads(hq.inputs_json)
    assert inputs == {"summarize": {p: {"p": p, "n": "summarize"} for p in "abc"}}
    report_inputs = json.loads(next(c for c in claims if c.node == "hq_report").inputs_json)
    assert report_inputs == {"hq_summary": {"p": "", "n": "hq_summary"}}
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_department_reports_run_beside_the_hq_summary(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b"]))
    pending: list[Report] = []
    for _ in range(10):
        got = backend.claim(ClaimRequest("w", {"slots": 10}, frozenset(), 10, 30.0, pending))
        names = sorted(c.node for c in got.claims)
        if "hq_summary" in names:
            assert names == ["dept_report", "dept_report", "hq_summary"]
            break
        pending = [report(c) for c in got.claims]
    else:
        pytest.fail("hq_summary never became ready")
    backend.report("w", [report(c) for c in got.claims])
    drive(backend)
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_barrier_node_waits_for_every_partition_upstream(backend: SqlStore) -> None:
    g = GraphBuilder("barrier").param("p", "list", default=["a", "b"]).partitions(param="p")
    g.python("one", "m:f").python("two", "m:f", after=["one"], barrier=True)
    event_id = start(backend, g.build())
    first = backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0)).claims
    assert (
        backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0, [report(first[0])])).claims[0].node == "one"
    )
    assert states(backend, event_id)[("two", first[0].partition)] is TaskState.PENDING


# --- fencing, leases, retries ---------------------------------------------------------------


def test_a_report_from_an_old_attempt_is_rejected_and_changes_nothing(backend: SqlStore) -> None:
    g = GraphBuilder("fence", defaults={"retries": 2, "retry_delay_s": 0.0}).python("only", "m:f")
    event_id = start(backend, g.build())
    (first,) = backend.claim(ClaimRequest("w1", {"slots": 1}, frozenset(), 1, OVER)).claims
    assert backend.expire_leases() == 1
    (second,) = backend.claim(ClaimRequest("w2", {"slots": 1}, frozenset(), 1, 30.0)).claims
    assert second.attempt == first.attempt + 1
    assert backend.report("w1", [report(first)]).stale == [(first.task_id, first.attempt)]
    assert states(backend, event_id)[("only", "")] is TaskState.RUNNING
    assert backend.report("w2", [report(second)]) == ReportAnswers()
    assert backend.report("w2", [report(second)]) == ReportAnswers(duplicate=[(second.task_id, second.attempt)])
    assert backend.event(event_id).state is EventState.SUCCEEDED
    outcomes = [(a.attempt, a.outcome) for a in backend.attempts([first.task_id])]
    assert outcomes == [(1, Outcome.LOST), (2, Outcome.SUCCEEDED)]
    assert [a.action for a in backend.audit(event_id=event_id)].count("report.rejected") == 0  # audit has no event id
    assert sum(a.action == "report.rejected" for a in backend.audit(task_id=first.task_id)) == 2


def test_a_lost_lease_counts_as_an_attempt_and_ends_failed_when_retries_run_out(backend: SqlStore) -> None:
    g = GraphBuilder("lost", defaults={"retries": 1, "retry_delay_s": 0.0}).python("only", "m:f")
    event_id = start(backend, g.build())
    for _ in range(2):
        assert backend.claim(ClaimRequest("w1", {"slots": 1}, frozenset(), 1, OVER)).claims
        assert backend.expire_leases() == 1
    task = backend.tasks(event_id)[0]
    assert task.state is TaskState.FAILED and task.failures == 2
    assert "worker_lost" in (task.error or "")
    assert backend.event(event_id).state is EventState.FAILED


def test_heartbeat_extends_the_lease_and_tells_a_worker_to_stop_lost_attempts(backend: SqlStore) -> None:
    start(backend, GraphBuilder("hb").python("only", "m:f").build())
    (claim,) = backend.claim(ClaimRequest("w1", {"slots": 1}, frozenset(), 1, 0.05)).claims
    assert backend.heartbeat("w1", [(claim.task_id, claim.attempt)], 30.0) == []
    time.sleep(0.1)
    assert backend.expire_leases() == 0  # the heartbeat extended it
    stops = backend.heartbeat("w1", [(claim.task_id, claim.attempt), (999, 1)], 30.0)
    assert [(s.task_id, s.reason) for s in stops] == [(999, "lease lost")]
    backend.report("w1", [report(claim)])


def test_retries_wait_their_backoff_before_they_can_be_claimed(backend: SqlStore) -> None:
    g = GraphBuilder("retry", defaults={"retries": 2, "retry_delay_s": 0.3, "retry_jitter": 0.0}).python("x", "m:f")
    event_id = start(backend, g.build())
    (claim,) = backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0)).claims
    result = backend.claim(
        ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0, [report(claim, Outcome.FAILED, error="boom")])
    )
    assert result.claims == []  # not before its backoff
    task = backend.tasks(event_id)[0]
    assert task.state is TaskState.READY and task.failures == 1
    time.sleep(0.35)
    (retry,) = backend.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0)).claims
    assert retry.attempt == 2
    backend.report("w", [report(retry)])
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_a_failed_partition_blocks_its_chain_and_the_fan_in_but_not_other_partitions(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b", "c"]))
    drive(
        backend, decide=lambda c: Outcome.FAILED if (c.node, c.partition) == ("extract_crm", "b") else Outcome.SUCCEEDED
    )
    s = states(backend, event_id)
    assert s[("extract_crm", "b")] is TaskState.FAILED
    for node in ("process", "summarize", "dept_report"):
        assert s[(node, "b")] is TaskState.UPSTREAM_FAILED
        assert s[(node, "a")] is s[(node, "c")] is TaskState.SUCCEEDED
    assert s[("hq_summary", "")] is s[("hq_report", "")] is TaskState.UPSTREAM_FAILED
    assert backend.event(event_id).state is EventState.FAILED


# --- rerun and cancel -----------------------------------------------------------------------


def test_rerun_runs_only_what_failed_and_what_it_blocked(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b"]))
    drive(backend, decide=lambda c: Outcome.FAILED if (c.node, c.partition) == ("process", "b") else Outcome.SUCCEEDED)
    before = {t.id: t.attempt for t in backend.tasks(event_id) if t.state is TaskState.SUCCEEDED}
    assert backend.rerun(event_id) == 5  # process, summarize, dept_report of b; hq_summary; hq_report
    again = drive(backend)
    assert {(c.node, c.partition) for c in again} == {
        ("process", "b"),
        ("summarize", "b"),
        ("dept_report", "b"),
        ("hq_summary", ""),
        ("hq_report", ""),
    }
    assert backend.event(event_id).state is EventState.SUCCEEDED
    after = {t.id: t.attempt for t in backend.tasks(event_id)}
    assert all(after[i] == n for i, n in before.items()), "a success ran again"
    with pytest.raises(Conflict):
        backend.rerun(event_id)


def test_rerun_of_one_partition_leaves_fan_in_blocked_while_another_partition_is_failed(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b", "c"]))
    drive(
        backend,
        decide=lambda c: Outcome.FAILED if c.node == "extract_erp" and c.partition in "ab" else Outcome.SUCCEEDED,
    )
    assert backend.rerun(event_id, partition="a") == 4  # extract_erp, process, summarize, dept_report of a
    drive(backend)
    s = states(backend, event_id)
    assert s[("dept_report", "a")] is TaskState.SUCCEEDED
    assert s[("extract_erp", "b")] is TaskState.FAILED
    assert s[("hq_summary", "")] is TaskState.UPSTREAM_FAILED
    assert backend.event(event_id).state is EventState.FAILED
    assert backend.rerun(event_id, partition="b") == 6  # b's chain, and now the fan-in can run too
    drive(backend)
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_cancel_drops_queued_tasks_and_stops_running_ones(backend: SqlStore) -> None:
    event_id = start(backend, year_end_shape(["a", "b"]))
    running = backend.claim(ClaimRequest("w", {"slots": 2}, frozenset(), 2, 30.0)).claims
    event = backend.cancel(event_id)
    assert event.cancel_requested and event.state is EventState.RUNNING
    stops = backend.heartbeat("w", [(c.task_id, c.attempt) for c in running], 30.0)
    assert {s.reason for s in stops} == {"event cancelled"}
    backend.report("w", [report(c, Outcome.CANCELLED) for c in running])
    assert backend.event(event_id).state is EventState.CANCELLED
    assert set(states(backend, event_id).values()) == {TaskState.CANCELLED}
    assert backend.claim(ClaimRequest("w", {"slots": 4}, frozenset(), 4, 30.0)).claims == []
    assert backend.rerun(event_id) == 14
    drive(backend)
    assert backend.event(event_id).state is EventState.SUCCEEDED


# --- capacity, labels, priorities -----------------------------------------------------------


def test_claims_fit_free_capacity_labels_and_named_resources(backend: SqlStore) -> None:
    g = GraphBuilder("fit").param("p", "list", default=["1", "2", "3"]).partitions(param="p")
    g.python("gpu", "m:f", labels=["gpu"], cost={"slots": 1})
    g.python("big", "m:f", cost={"slots": 2, "mem_mb": 3000})
    g.python("small", "m:f", priority=5)
    start(backend, g.build())
    plain = backend.claim(ClaimRequest("plain", {"slots": 4, "mem_mb": 4000}, frozenset(), 4, 30.0)).claims
    assert [c.node for c in plain] == ["small"] * 3  # priority first; then 1 slot left: big needs 2
    gpu = backend.claim(ClaimRequest("gpu-box", {"slots": 8}, frozenset({"gpu"}), 8, 30.0)).claims
    assert [c.node for c in gpu] == ["gpu"] * 3  # big needs mem_mb, which this worker lacks
    backend.report("plain", [report(c) for c in plain])
    backend.report("gpu-box", [report(c) for c in gpu])
    roomy = backend.claim(ClaimRequest("roomy", {"slots": 4, "mem_mb": 6000}, frozenset(), 4, 30.0)).claims
    assert [c.node for c in roomy] == ["big", "big"]  # 2 x (2 slots, 3000 MB) fill it exactly
    backend.report("roomy", [report(c) for c in roomy])
    rest = backend.claim(ClaimRequest("roomy", {"slots": 4, "mem_mb": 6000}, frozenset(), 4, 30.0)).claims
    assert [c.node for c in rest] == ["big"]
    backend.report("roomy", [report(c) for c in rest])


# --- results --------------------------------------------------------------------------------


def test_an_oversized_or_invalid_result_fails_the_task_without_retry(store_url: str) -> None:
    from baton.store import open_store
    from baton.testing import check_invariants

    small = open_store(store_url, Settings(max_result_bytes=100))
    g = GraphBuilder("cap", defaults={"retries": 3}).python("x", "m:f")
    event_id = start(small, g.build())
    (claim,) = small.claim(ClaimRequest("w", {"slots": 1}, frozenset(), 1, 30.0)).claims
    small.report("w", [report(claim, result={"blob": "x" * 200})])
    task = small.tasks(event_id)[0]
    assert task.state is TaskState.FAILED and "over the 100-byte cap" in (task.error or "")
    assert small.attempts([task.id])[0].outcome is Outcome.INVALID_RESULT
    assert check_invariants(small) == []
    small.close()


def test_a_claim_whose_reply_was_lost_is_handed_back_by_the_next_heartbeat(backend: SqlStore) -> None:
    g = GraphBuilder("orphan").python("only", "m:f")  # no retries: a lost reply must not cost an attempt
    event_id = start(backend, g.build())
    (lost,) = backend.claim(ClaimRequest("w1", {"slots": 1}, frozenset(), 1, 30.0)).claims  # the worker never saw this
    assert backend.heartbeat("w1", [], 30.0) == []
    assert states(backend, event_id)[("only", "")] is TaskState.RUNNING  # too young to be an orphan
    time.sleep(0.06)
    backend.heartbeat("w1", [], 0.1)  # older than half a lease now
    task = backend.tasks(event_id)[0]
    assert task.state is TaskState.READY and task.failures == 0
    assert [a.outcome for a in backend.attempts([lost.task_id])] == [Outcome.RELEASED]
    (again,) = backend.claim(ClaimRequest("w1", {"slots": 1}, frozenset(), 1, 30.0)).claims
    backend.report("w1", [report(again)])
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_concurrent_submits_with_one_key_make_one_event(backend: SqlStore, store_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from baton.store import open_store

    graph = year_end_shape(["a"])
    record = backend.register_graph(graph)
    params = validate_params(graph, {})
    stores = [open_store(store_url) for _ in range(6)]  # separate connections, like separate processes
    try:
        with ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda s: s.submit(record.id, params, key="once")[0].id, stores * 3))
            registered = list(pool.map(lambda s: s.register_graph(year_end_shape(["a"], retries=5)).id, stores))
    finally:
        for s in stores:
            s.close()
    assert len(set(results)) == 1 and len(backend.events()) == 1
    assert len(set(registered)) == 1


def test_deeper_stages_are_claimed_first_so_started_partitions_finish_first(backend: SqlStore) -> None:
    start(backend, year_end_shape(["a", "b", "c"]))
    extracts = ("extract_finance", "extract_erp", "extract_crm")
    first = backend.claim(ClaimRequest("w", {"slots": 3}, frozenset(), 3, 30.0)).claims
    assert {(c.node, c.partition) for c in first} == {(n, "a") for n in extracts}
    # the report that makes process[a] ready claims it at once, ahead of b's and c's extracts
    second = backend.claim(ClaimRequest("w", {"slots": 3}, frozenset(), 3, 30.0, [report(c) for c in first])).claims
    assert (second[0].node, second[0].partition) == ("process", "a")
    assert {c.node for c in second[1:]} <= set(extracts)


def test_a_commit_elsewhere_makes_the_change_descriptor_readable(backend: SqlStore) -> None:
    """Idle workers sleep on change_fd beside their executors' pipes; another process's commit
    (here: another connection) must wake it, and wait_for_change(0) must then say so."""
    other = open_store(backend.url)
    try:
        fd = backend.change_fd()
        assert fd is not None  # Linux: inotify on SQLite's log; PostgreSQL: the LISTEN thread
        backend.wait_for_change(0)  # take the current state as seen
        assert not backend.wait_for_change(0)
        start(other, year_end_shape(["a"]))  # a plan saved: work became claimable
        assert select.select([fd], [], [], 10)[0] == [fd]
        assert backend.wait_for_change(0)
        for _ in range(50):  # notifications of the other commits may still be on their way
            if not backend.wait_for_change(0.2):
                break
        assert select.select([fd], [], [], 0.1)[0] == []  # quiet until the next commit...
        other.cancel(other.events()[0].id)
        assert select.select([fd], [], [], 10)[0] == [fd]  # ...which wakes it again
        assert backend.wait_for_change(0)
    finally:
        other.close()


def test_a_claim_retried_with_its_id_gets_the_same_attempts_and_takes_nothing_more(backend: SqlStore) -> None:
    g = GraphBuilder("again").param("p", "list", default=["a", "b", "c"]).partitions(param="p")
    g.python("only", "m:f", partitioned=True)
    start(backend, g.build())
    first = backend.claim(ClaimRequest("w", {"slots": 2}, frozenset(), 2, 30.0, claim_id="c-1")).claims
    assert len(first) == 2
    retried = backend.claim(ClaimRequest("w", {"slots": 2}, frozenset(), 2, 30.0, claim_id="c-1")).claims
    assert [(c.task_id, c.attempt, c.inputs_json, c.params_json) for c in retried] == [
        (c.task_id, c.attempt, c.inputs_json, c.params_json) for c in first
    ]
    assert backend.claim(ClaimRequest("other", {"slots": 2}, frozenset(), 2, 30.0, claim_id="c-1")).claims[
        0
    ].task_id not in {
        c.task_id for c in first
    }  # the id is the worker's own: another worker's claim with the same id takes new work
    backend.report("w", [report(first[0])])
    again = backend.claim(ClaimRequest("w", {"slots": 2}, frozenset(), 2, 30.0, [report(first[0])], claim_id="c-1"))
    assert [c.task_id for c in again.claims] == [first[1].task_id]  # what it still runs
    assert again.duplicate == [(first[0].task_id, first[0].attempt)] and again.rejected == []
