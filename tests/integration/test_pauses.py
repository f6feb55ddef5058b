"""Pause and resume on both stores, driven in-process: a paused event, graph or node starts no
task while running ones finish; whatever moves a paused task (its upstream succeeding, a retry, a
lost lease, a re-run) keeps it out of the queue; resuming returns exactly the tasks no other pause
holds, and says so."""

from __future__ import annotations

import pytest
from limited import OVER, chain, claim, limited, report, sql, start

from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome
from baton.errors import Conflict, NotFound
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import PauseTarget, TaskCounts


def submit(backend: Store, graph: Graph) -> int:
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    return event.id


def run_out(backend: Store, worker: str = "w1") -> int:
    """Claim and succeed until nothing is claimable; how many tasks ran."""
    ran, pending = 0, ()
    while True:
        got = claim(backend, worker, reports=pending)
        pending = tuple(report(c) for c in got)
        ran += len(got)
        if not got:
            return ran


def test_a_paused_event_starts_nothing_its_running_tasks_finish_and_resume_releases_the_rest(backend: Store) -> None:
    event_id = start(backend, chain())
    running = claim(backend, slots=4)
    answer = backend.pause(PauseTarget(event_id=event_id), reason="ERP maintenance", actor="ops")
    assert answer.created and answer.pause.target == f"event:{event_id}" and answer.pause.reason == "ERP maintenance"
    assert answer.held == TaskCounts(ready=6, pending=10, running=4)
    # the running ones report; their downstream becomes ready, and stays out of the queue
    assert claim(backend, reports=tuple(report(c) for c in running)) == []
    assert claim(backend) == []
    assert backend.event(event_id).state is EventState.RUNNING
    assert [p.target for p in backend.pauses(event_id)] == [f"event:{event_id}"]
    resumed = backend.resume(PauseTarget(event_id=event_id), actor="ops")
    assert resumed.released == TaskCounts(ready=10, pending=6) and resumed.still_paused == ()
    assert run_out(backend) == 16
    assert backend.event(event_id).state is EventState.SUCCEEDED
    assert backend.pauses() == []


def test_pausing_twice_answers_the_pause_in_force_and_resuming_what_is_not_paused_is_refused(backend: Store) -> None:
    event_id = start(backend, chain())
    first = backend.pause(PauseTarget(event_id=event_id), reason="first")
    again = backend.pause(PauseTarget(event_id=event_id), reason="second")
    assert not again.created and again.pause == first.pause and again.held == TaskCounts()
    backend.resume(PauseTarget(event_id=event_id))
    with pytest.raises(Conflict, match="is not paused"):
        backend.resume(PauseTarget(event_id=event_id))
    with pytest.raises(NotFound, match="no node 'nope'"):
        backend.pause(PauseTarget(event_id=event_id, node="nope"))
    with pytest.raises(NotFound, match="no graph named"):
        backend.pause(PauseTarget(graph="nope"))
    with pytest.raises(NotFound, match="no event 999"):
        backend.pause(PauseTarget(event_id=999))
    run_out(backend)
    with pytest.raises(Conflict, match="only an unfinished event"):
        backend.pause(PauseTarget(event_id=event_id))


def test_a_paused_node_holds_its_tasks_and_those_downstream_wait_for_them(backend: Store) -> None:
    event_id = start(backend, chain())
    backend.pause(PauseTarget(event_id=event_id, node="load"))
    assert run_out(backend) == 10  # every extract; no load
    counts = backend.node_counts(event_id)
    assert counts["load"].get("ready") == 10
    resumed = backend.resume(PauseTarget(event_id=event_id, node="load"))
    assert resumed.released == TaskCounts(ready=10)
    assert run_out(backend) == 10
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_a_paused_graph_holds_its_running_events_and_those_raised_while_it_is_paused(backend: Store) -> None:
    graph = chain()
    before = start(backend, graph)
    backend.pause(PauseTarget(graph="paused"), reason="month end")
    after = submit(backend, graph)
    Controller(sql(backend)).expand()
    assert backend.event(after).state is EventState.RUNNING
    assert claim(backend) == []
    backend.pause(PauseTarget(event_id=after))  # held twice: the graph's resume leaves it paused
    resumed = backend.resume(PauseTarget(graph="paused"))
    assert resumed.released == TaskCounts(ready=10, pending=10) and resumed.still_paused == (f"event:{after}",)
    assert run_out(backend) == 20
    assert backend.event(before).state is EventState.SUCCEEDED and backend.event(after).state is EventState.RUNNING
    assert backend.resume(PauseTarget(event_id=after)).released == TaskCounts(ready=10, pending=10)
    assert run_out(backend) == 20


def test_an_event_resumed_under_a_paused_graph_stays_held_and_says_by_what(backend: Store) -> None:
    event_id = start(backend, chain())
    backend.pause(PauseTarget(event_id=event_id))
    backend.pause(PauseTarget(graph="paused"))
    resumed = backend.resume(PauseTarget(event_id=event_id))
    assert resumed.released == TaskCounts() and resumed.still_paused == ("graph:paused",)
    assert claim(backend) == []
    backend.resume(PauseTarget(graph="paused"))
    assert run_out(backend) == 20


def test_retried_and_lease_lost_tasks_of_a_paused_event_stay_out_of_the_queue(backend: Store) -> None:
    event_id = start(backend, chain(retries=2))
    failing, lost = claim(backend, "w1", slots=1), claim(backend, "dead", slots=1, lease_s=OVER)
    backend.pause(PauseTarget(event_id=event_id))
    assert claim(backend, reports=(report(failing[0], Outcome.FAILED),)) == []  # retried: ready, still held
    assert backend.expire_leases() == 1
    assert claim(backend) == []
    assert backend.resume(PauseTarget(event_id=event_id)).released.ready == 10
    assert run_out(backend) == 20
    assert lost[0].partition != failing[0].partition


def test_a_rerun_of_a_paused_event_keeps_what_it_resets_paused(backend: Store) -> None:
    event_id = start(backend, chain())
    backend.pause(PauseTarget(event_id=event_id, node="extract"))
    backend.cancel(event_id)
    assert backend.rerun(event_id) == 20
    assert claim(backend) == []  # extract is still paused; load waits for it
    backend.resume(PauseTarget(event_id=event_id, node="extract"))
    assert run_out(backend) == 20
    assert backend.event(event_id).state is EventState.SUCCEEDED


def test_tasks_parked_on_a_full_key_are_held_by_a_pause_and_parked_again_after_it(backend: Store) -> None:
    event_id = start(backend, limited(limit=2))
    claim(backend)  # two extracts hold the key; others parked on it
    backend.pause(PauseTarget(event_id=event_id))
    resumed = backend.resume(PauseTarget(event_id=event_id))
    assert resumed.released.ready == 12  # 8 extracts, 4 free
    got = claim(backend, slots=20)
    assert [c.node for c in got] == ["free"] * 4  # the key is still full: the extracts are parked again
