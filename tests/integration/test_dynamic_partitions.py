"""Dynamic partitions on both stores, driven in-process: a discovery task's result plans the
tasks of the nodes whose partitions it lists, in the transaction that records its success, with
per-partition edges downstream and a fan-in that waits for them all; an empty list, a list over
the cap, a pause in force, a concurrency key, a cancel and a re-run of a failed discovery."""

from __future__ import annotations

import threading
import time

import pytest
from discovering import branches, discover, run_out, succeed
from limited import claim, key_state, report, sql, start

from baton.engine.states import EventState, Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.store import advance
from baton.store.postgres import PostgresStore
from baton.store.protocol import Store
from baton.store.records import PauseTarget, TaskCounts
from baton.store.tx import Tx, scalar


def test_a_discovery_plans_its_partitions_with_same_edges_and_a_fan_in_that_waits_for_all(backend: Store) -> None:
    event_id = start(backend, branches())
    assert {t.node for t in backend.tasks(event_id)} == {"discover", "summary", "notes"}
    (found,) = claim(backend, slots=1)
    before = backend.metrics_sample(None, None, 100, 60.0).audit_id
    got = claim(backend, reports=(succeed(found, ["main", "dev", 7]),))
    after = backend.metrics_sample(None, None, 100, 60.0).audit_id
    assert backend.metrics_sample(before, after, 1000, 60.0).activity.partitions_discovered == 3  # for /metrics
    assert sorted((c.node, c.partition) for c in got) == [("fetch", "7"), ("fetch", "dev"), ("fetch", "main"),
                                                           ("notes", "")]  # fmt: skip
    (planned,) = [a for a in backend.audit(event_id=event_id) if a.action == "partitions.planned"]
    assert planned.detail["partitions"] == 3 and planned.detail["tasks"] == 6 and planned.cause.startswith("discovery")
    assert backend.event(event_id).tasks_total == 9
    main = next(c for c in got if c.partition == "main")
    built = claim(backend, reports=(succeed(main),))
    assert [(c.node, c.partition) for c in built] == [("build", "main")]  # the same partition only
    ran = run_out(backend, (*built, *(c for c in got if c is not main)))
    assert ran[-1] == ("summary", "") and ("summary", "") not in ran[:-1]
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert backend.node_counts(event_id)["build"] == {"succeeded": 3}


def test_a_fan_in_says_it_waits_for_partitions_not_yet_listed(backend: Store) -> None:
    event_id = start(backend, branches())
    (summary,) = [g for g in backend.waiting(event_id) if g.node == "summary"]
    assert summary.sentence == "1 waits for build (partitions not yet listed by discover)"


def test_an_object_with_partitions_is_read_too_and_a_dynamic_node_is_shown_planned(backend: Store) -> None:
    event_id = discover(backend, branches(), {"partitions": ["a", "b"], "note": "two branches"})
    progress = {p.node: (p.total, p.remaining) for p in backend.node_progress(event_id)}
    assert progress["fetch"] == (2, 2) and progress["build"] == (2, 2) and progress["summary"] == (1, 1)
    assert len(run_out(backend)) == 6
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_an_empty_list_plans_no_task_and_the_fan_in_runs(backend: Store) -> None:
    event_id = discover(backend, branches(), [])
    assert sorted(run_out(backend)) == [("notes", ""), ("summary", "")]
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert {t.node for t in backend.tasks(event_id)} == {"discover", "summary", "notes"}
    actions = [a.action for a in backend.audit(event_id=event_id)]
    assert "partitions.planned" in actions


def test_a_list_over_the_cap_fails_the_discovery_with_its_cause_and_plans_nothing(backend: Store) -> None:
    event_id = discover(backend, branches(cap=3, retries=2), ["a", "b", "c", "d"])
    (task,) = backend.tasks(event_id, node="discover")
    assert task.state is TaskState.FAILED  # an invalid result is not retried
    assert task.error == "invalid result: returned 4 partitions, over the cap of 3 (max_partitions of node fetch)"
    assert run_out(backend) == []
    assert backend.event(event_id).state is EventState.FAILED
    assert backend.tasks(event_id, node="summary")[0].state is TaskState.UPSTREAM_FAILED
    assert not backend.tasks(event_id, node="fetch")


@pytest.mark.parametrize(
    ("result", "cause"),
    [
        ({"branches": ["a"]}, "must be a JSON list of partition keys"),
        (["a", "a"], "its partitions: duplicate partitions ['a']"),
        (["a", ""], "its partitions: '' is not a usable partition key"),
        ([True], "its partitions: items must be strings or integers"),
    ],
)
def test_a_result_without_usable_partitions_is_an_invalid_result(backend: Store, result: object, cause: str) -> None:
    event_id = discover(backend, branches(), result)
    (task,) = backend.tasks(event_id, node="discover")
    assert task.state is TaskState.FAILED and task.error is not None and cause in task.error
    run_out(backend)
    assert backend.event(event_id).state is EventState.FAILED


def test_new_tasks_of_a_paused_node_stay_out_of_the_queue_until_it_is_resumed(backend: Store) -> None:
    event_id = start(backend, branches())
    backend.pause(PauseTarget(event_id=event_id, node="fetch"), reason="mirror down")
    (found,) = claim(backend, slots=1)
    backend.report("w1", [succeed(found, ["a", "b"])])
    assert run_out(backend) == [("notes", "")]
    assert backend.node_counts(event_id)["fetch"] == {"ready": 2}
    assert backend.resume(PauseTarget(event_id=event_id, node="fetch")).released == TaskCounts(ready=2)
    assert len(run_out(backend)) == 5
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_a_concurrency_key_is_rendered_with_each_discovered_partition(backend: Store) -> None:
    event_id = discover(backend, branches(key="repo-{partition}"), ["a", "b"])
    assert backend.event(event_id).tasks_total == 7
    assert key_state(backend, "repo-a").ready == 1 and key_state(backend, "repo-b").max_running == 2
    assert len(run_out(backend)) == 6


def test_a_discovery_that_succeeds_after_its_event_was_cancelled_plans_cancelled_tasks(backend: Store) -> None:
    event_id = start(backend, branches())
    (found,) = claim(backend, slots=1)
    backend.cancel(event_id)
    backend.report("w1", [succeed(found, ["a", "b"])])
    assert backend.event(event_id).state is EventState.CANCELLED
    assert {t.state for t in backend.tasks(event_id, node="fetch")} == {TaskState.CANCELLED}


def test_a_failed_discovery_re_run_plans_its_partitions_and_the_fan_in_waits_for_them(backend: Store) -> None:
    event_id = start(backend, branches())
    (found,) = claim(backend, slots=1)
    backend.report("w1", [report(found, Outcome.FAILED)])
    assert run_out(backend) == []
    assert backend.event(event_id).state is EventState.FAILED
    assert backend.rerun(event_id, node="discover") == 3  # the discovery and what it blocked
    assert backend.tasks(event_id, node="summary")[0].state is TaskState.PENDING
    (found,) = claim(backend, slots=1)
    backend.report("w1", [succeed(found, ["x"])])
    assert sorted(run_out(backend)) == [("build", "x"), ("fetch", "x"), ("notes", ""), ("summary", "")]
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_ten_thousand_partitions_are_planned_in_the_one_transaction_that_records_the_discovery(backend: Store) -> None:
    event_id = start(backend, branches())
    (found,) = claim(backend, slots=1)
    keys = [f"branch-{i:05}" for i in range(10_000)]
    began = time.perf_counter()
    backend.report("w1", [succeed(found, keys)])
    took = time.perf_counter() - began
    print(f"\n{backend.__class__.__name__}: 10,000 partitions (20,000 tasks) planned in {took:.2f} s")
    assert backend.event(event_id).tasks_total == 3 + 20_000
    assert backend.node_counts(event_id)["fetch"] == {"ready": 10_000}
    (planned,) = [a for a in backend.audit(event_id=event_id) if a.action == "partitions.planned"]
    assert planned.detail["tasks"] == 20_000


def test_re_running_a_discovery_adds_its_new_partitions_and_leaves_finished_ones_alone(backend: Store) -> None:
    event_id = discover(backend, branches(), ["a", "b"])
    got = claim(backend)
    assert sorted((c.node, c.partition) for c in got) == [("fetch", "a"), ("fetch", "b"), ("notes", "")]
    reports = tuple(report(c, Outcome.FAILED if c.partition == "b" else Outcome.SUCCEEDED) for c in got)
    built = claim(backend, reports=reports)
    assert [(c.node, c.partition) for c in built] == [("build", "a")]
    assert run_out(backend, built) == []
    assert backend.event(event_id).state is EventState.FAILED
    # the discovery, fetch b and what it blocked (build b, the fan-in) run again; fetch a, build a, notes stay
    assert backend.rerun(event_id, node="discover") == 4
    assert backend.tasks(event_id, node="summary")[0].state is TaskState.PENDING
    (found,) = claim(backend, slots=1)
    assert found.node == "discover"
    backend.report("w1", [succeed(found, ["a", "b", "c"])])
    ran = run_out(backend)
    assert sorted(ran) == [("build", "b"), ("build", "c"), ("fetch", "b"), ("fetch", "c"), ("summary", "")]
    assert ran[-1] == ("summary", "")
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert [t.attempt for t in backend.tasks(event_id, node="fetch", partition="a")] == [1]
    (planned, again) = [a for a in backend.audit(event_id=event_id) if a.action == "partitions.planned"]
    assert (planned.detail["new"], again.detail["new"], again.detail["partitions"]) == (2, 1, 3)


def test_a_rediscovery_that_lists_nothing_new_completes_the_dynamic_nodes_and_their_fan_in_runs(backend: Store) -> None:
    event_id = discover(backend, branches(), ["a"])
    got = claim(backend)
    built = claim(backend, reports=tuple(succeed(c) for c in got))
    assert [(c.node, c.partition) for c in built] == [("build", "a")]
    backend.report("w1", [report(built[0], Outcome.FAILED)])
    assert backend.event(event_id).state is EventState.FAILED
    assert backend.rerun(event_id, node="discover") == 3  # the discovery, build a and the fan-in
    # build a waits for fetch a alone (succeeded): it runs while the discovery runs again, and
    # the fan-in still waits, for the discovery may list more
    (again,) = claim(backend, slots=1)
    assert (again.node, again.partition) == ("build", "a")
    (found,) = claim(backend, reports=(succeed(again),))
    assert found.node == "discover" and claim(backend) == []
    backend.report("w1", [succeed(found, ["a"])])
    assert run_out(backend) == [("summary", "")]
    assert backend.event(event_id).state is EventState.SUCCEEDED


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)  # SQLite: one write transaction at a time
def test_a_discovery_and_a_concurrent_upstream_success_leave_no_task_waiting_for_ever(
    backend: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: ``gate`` succeeds in one transaction, which holds its node's row until the
    commit, while the discovery's plans ``fetch``, which waits for ``gate`` too: the plan waits
    for that row, then counts ``gate`` complete. (On SQLite one transaction writes at a time.)"""
    assert isinstance(backend, PostgresStore)
    g = GraphBuilder("gated", defaults={"retries": 0})
    g.python("discover", "m:f")
    g.python("gate", "m:f")
    g.python("fetch", "m:f", after=["discover", "gate"], partitions_from="discover")
    event_id = start(backend, g.build())
    running = {c.node: c for c in claim(backend)}
    counted, go = threading.Event(), threading.Event()
    original = advance._read_counted

    def held(tx: Tx, sent: advance.Sent) -> int:
        ready = original(tx, sent)
        if threading.current_thread().name == "gate":
            counted.set()
            go.wait(10)  # gate's row stays locked: its transaction has not committed
        return ready

    monkeypatch.setattr(advance, "_read_counted", held)
    gate = threading.Thread(target=backend.report, args=("w1", [succeed(running["gate"])]), name="gate")
    found = threading.Thread(target=backend.report, args=("w1", [succeed(running["discover"], ["a", "b"])]))
    gate.start()
    assert counted.wait(10)
    found.start()
    with sql(backend).transaction(write=False) as tx:  # the discovery's transaction waits for gate's
        for _ in range(1000):
            if scalar(tx, "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the discovery's transaction never waited for gate's")
    go.set()
    gate.join(10)
    found.join(10)
    assert sorted(run_out(backend)) == [("fetch", "a"), ("fetch", "b")]
    assert backend.event(event_id).state is EventState.SUCCEEDED
