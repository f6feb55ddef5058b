"""The read store on both backends: filters, keyset pages, logs by slice, workers with their
tasks; and the move journal that checks every state change the SQL makes."""

from __future__ import annotations

import json
import time

import pytest

from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.errors import NotFound, UsageError
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report, WorkerInfo
from baton.testing import check_invariants

PARTS = [f"p{i:02d}" for i in range(25)]


def submit(backend: Store, event_type: str, parts: list[str] = PARTS) -> int:
    g = GraphBuilder(event_type, defaults={"retries": 0})
    g.param("parts", "list", default=parts).partitions(param="parts")
    graph = g.python("work", "m:f").python("total", "m:f", after=["work"], partitioned=False).build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    return event.id


def pages(fetch: object, key: str, size: int) -> list[list[int]]:
    out: list[list[int]] = []
    cursor = None
    while True:
        page = fetch(**{key: cursor, "limit": size})  # type: ignore[operator]
        if not page:
            return out
        out.append([item.id for item in page])
        cursor = page[-1].id


def test_events_filter_by_type_state_and_time_and_page_by_keyset(backend: Store) -> None:
    ids = [submit(backend, "alpha" if i % 2 else "beta") for i in range(7)]
    Controller(backend).expand()
    backend.cancel(ids[0])
    newest_first = list(reversed(ids))
    assert pages(backend.events, "before", 3) == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    assert [e.id for e in backend.events(event_type="alpha", limit=50)] == [i for i in newest_first if i in ids[1::2]]
    assert [e.id for e in backend.events(state=EventState.CANCELLED)] == [ids[0]]
    middle = backend.event(ids[3]).submitted_at
    assert all(e.submitted_at >= middle for e in backend.events(since=middle))
    assert ids[3] not in [e.id for e in backend.events(until=middle)]
    assert backend.events(event_type="nothing") == []
    with pytest.raises(UsageError):
        backend.events(limit=0)


def test_tasks_filter_by_node_state_and_partition_and_page_by_keyset(backend: Store) -> None:
    event_id = submit(backend, "tasks")
    Controller(backend).expand()
    everything = [t.id for t in backend.tasks(event_id)]
    assert len(everything) == len(PARTS) + 1 and everything == sorted(everything)
    paged = pages(lambda **kw: backend.tasks(event_id, **kw), "after", 10)
    assert [len(p) for p in paged] == [10, 10, 6] and [i for p in paged for i in p] == everything
    ready = backend.tasks(event_id, state=TaskState.READY)
    assert {t.node for t in ready} == {"work"} and len(ready) == len(PARTS)
    assert [t.partition for t in backend.tasks(event_id, node="work", partition="p07")] == ["p07"]
    assert [t.node for t in backend.tasks(event_id, state=TaskState.PENDING)] == ["total"]
    progress = {p.node: (p.total, p.remaining) for p in backend.node_progress(event_id)}
    assert progress == {"work": (len(PARTS), len(PARTS)), "total": (1, 1)}


def test_attempt_logs_are_read_by_slice_and_workers_show_what_they_run(backend: Store) -> None:
    event_id = submit(backend, "logs", parts=["a", "b"])
    Controller(backend).expand()
    backend.register_worker(WorkerInfo("w1", "one", "host", 1, {"slots": 4}, frozenset({"x"})))
    backend.register_worker(WorkerInfo("w2", "two", "host", 2, {"slots": 1}))
    claims = backend.claim(ClaimRequest("w1", {"slots": 4}, frozenset({"x"}), 4, 30.0)).claims
    assert len(claims) == 2
    workers = {w.id: w for w in backend.workers()}
    assert workers["w1"].running == tuple(sorted(c.task_id for c in claims)) and workers["w2"].running == ()
    assert workers["w1"].labels == frozenset({"x"}) and workers["w1"].capacity == {"slots": 4}
    log = "".join(f"line {i} ünïcode\n" for i in range(1000))
    first, second = claims
    now = time.time()
    backend.report("w1", [Report(first.task_id, first.attempt, Outcome.SUCCEEDED, now, now, "{}", stdout=log)])
    chunks, offset = [], 0
    while True:
        chunk = backend.attempt_log(first.task_id, first.attempt, offset=offset, limit=4096)
        assert chunk.size == len(log)
        if not chunk.text:
            break
        chunks.append(chunk.text)
        offset = chunk.next_offset
    assert "".join(chunks) == log and len(chunks) == -(-len(log) // 4096)
    assert backend.attempt_log(first.task_id, first.attempt, "stderr").text == ""
    with pytest.raises(NotFound):
        backend.attempt_log(second.task_id, 5)
    with pytest.raises(UsageError):
        backend.attempt_log(first.task_id, first.attempt, stream="stdin")
    backend.report("w1", [Report(second.task_id, second.attempt, Outcome.SUCCEEDED, now, now, json.dumps(1))])
    assert {w.id: w.running for w in backend.workers()}["w1"] == ()
    entries = backend.audit(event_id=event_id)
    assert pages(lambda **kw: backend.audit(event_id=event_id, **kw), "after", 2) == [
        [a.id for a in entries[i : i + 2]] for i in range(0, len(entries), 2)
    ]


def test_the_journal_sees_every_move_and_an_illegal_one_fails_the_invariants(backend: Store) -> None:
    event_id = submit(backend, "journal", parts=["a", "b"])
    Controller(backend).expand()
    moves = backend.debug.recorded_moves()
    assert moves is not None, "the suite's stores journal their task moves"
    assert sorted((m.from_state, m.to_state) for m in moves) == [(None, "pending"), (None, "ready"), (None, "ready")]
    assert check_invariants(backend) == []
    (pending,) = backend.tasks(event_id, state=TaskState.PENDING)
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("UPDATE tasks SET state = 'succeeded' WHERE id = ?", (pending.id,))  # skips ready and running
    problems = check_invariants(backend)
    assert any(f"task {pending.id} " in p and "illegal move pending -> succeeded" in p for p in problems), problems
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("UPDATE tasks SET state = 'pending' WHERE id = ?", (pending.id,))  # put it back: succeeded -> pending
    assert any("illegal move succeeded -> pending" in p for p in check_invariants(backend))
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("DELETE FROM test_task_moves WHERE task_id = ?", (pending.id,))
        tx.q("INSERT INTO test_task_moves (task_id, from_state, to_state, from_attempt, to_attempt) "
             "VALUES (?, NULL, 'pending', NULL, 0)", (pending.id,))  # fmt: skip
