"""A graph's event limit on both stores, driven in-process: at most ``max_running`` of its events
run at once; under ``queue`` the others wait, submitted, in order, and say where they stand; under
``cancel_newest`` one more is cancelled with its cause; under ``cancel_oldest`` the oldest running
one is cancelled and the new one starts; a graph's full queue never holds back another graph."""

from __future__ import annotations

import pytest
from limited import claim, report, sql

from baton.controller.loop import Controller
from baton.engine.limits import Admission, admit_event
from baton.engine.states import EventState
from baton.errors import GraphInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import EventLimit, Graph
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store


def limited_graph(most: int = 2, policy: str = "queue", name: str = "year_end") -> Graph:
    g = GraphBuilder(name, defaults={"retries": 0}).event_limit(most, policy)
    g.python("summary", "m:f", partitioned=False)
    return g.build()


def submit(backend: Store, graph: Graph, n: int) -> list[int]:
    record = backend.register_graph(graph)
    return [backend.submit(record.id, validate_params(graph, {}))[0].id for _ in range(n)]


def expand(backend: Store) -> None:
    Controller(sql(backend)).expand()


def test_the_rule() -> None:
    queue, newest, oldest = EventLimit(2), EventLimit(2, "cancel_newest"), EventLimit(2, "cancel_oldest")
    assert admit_event(5, None) is Admission.START
    assert [admit_event(n, queue) for n in (0, 1, 2, 3)] == [Admission.START] * 2 + [Admission.QUEUE] * 2
    assert admit_event(2, newest) is Admission.REFUSE and admit_event(2, oldest) is Admission.DISPLACE


def test_queued_events_wait_in_order_and_say_where_they_stand(backend: Store) -> None:
    ids = submit(backend, limited_graph(), 4)
    expand(backend)
    assert [backend.event(i).state for i in ids] == [EventState.RUNNING] * 2 + [EventState.SUBMITTED] * 2
    (third,) = backend.waiting(ids[2])
    (fourth,) = backend.waiting(ids[3])
    assert (third.reason, third.count, fourth.count) == ("queued", 1, 2)
    assert third.sentence == (f"the event waits for a place: graph year_end runs 2 of its 2 at once (events "
                              f"{ids[0]}, {ids[1]}); 0 submitted before it wait too")  # fmt: skip
    expand(backend)  # nothing moves while both places are held
    assert backend.event(ids[2]).state is EventState.SUBMITTED
    tasks = claim(backend, slots=10)
    first = next(c for c in tasks if c.event_id == ids[0])
    claim(backend, slots=0, reports=(report(first),))
    assert backend.event(ids[0]).state is EventState.SUCCEEDED
    expand(backend)
    assert [backend.event(i).state for i in ids[1:]] == [EventState.RUNNING] * 2 + [EventState.SUBMITTED]
    assert backend.waiting(ids[3])[0].count == 1


def test_cancel_newest_cancels_one_more_with_its_cause(backend: Store) -> None:
    ids = submit(backend, limited_graph(1, "cancel_newest"), 2)
    expand(backend)
    refused = backend.event(ids[1])
    assert backend.event(ids[0]).state is EventState.RUNNING and refused.state is EventState.CANCELLED
    assert refused.error is not None and "policy cancel_newest" in refused.error and "runs 1 events" in refused.error
    assert [a.action for a in backend.audit(event_id=ids[1])][-1] == "event.refused"


def test_cancel_oldest_cancels_the_oldest_running_and_starts_the_new_one(backend: Store) -> None:
    ids = submit(backend, limited_graph(2, "cancel_oldest"), 3)
    expand(backend)
    oldest = backend.event(ids[0])
    assert oldest.cancel_requested and oldest.state is EventState.CANCELLED  # its one task had not started
    assert [backend.event(i).state for i in ids[1:]] == [EventState.RUNNING] * 2
    assert "event.displaced" in [a.action for a in backend.audit(event_id=ids[0])]


def test_a_graph_whose_queue_is_full_never_holds_back_another_graph(backend: Store) -> None:
    submit(backend, limited_graph(1), 300)
    other = submit(backend, limited_graph(1, name="other"), 1)[0]
    expand(backend)  # one round: year_end's first event takes its place, the others queue
    assert backend.events_to_expand(10) == [backend.event(other)]  # the 299 queued are not offered
    expand(backend)
    assert backend.event(other).state is EventState.RUNNING


def test_the_limit_is_checked_where_the_graph_is_loaded() -> None:
    bad = """graph: g
event_limit: {max_running: 0, policy: first}
nodes:
  a: {run: "m:f"}
"""
    with pytest.raises(GraphInvalid) as caught:
        load_graph_text(bad, source="g.yaml")
    said = str(caught.value)
    assert "g.yaml: event_limit.max_running (line 2): 0 is out of range" in said
    assert (
        "event_limit.policy (line 2): 'first' is not a policy (expected one of: queue, cancel_newest, cancel_oldest)"
        in said
    )
    ok = load_graph_text('graph: g\nevent_limit: {max_running: 3}\nnodes:\n  a: {run: "m:f"}\n')
    assert ok.event_limit == EventLimit(3, "queue")
