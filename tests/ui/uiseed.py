"""A store with a small year-end-shaped event behind the UI's pages: partitions a..c, one task
succeeded with a log, one failed (its partition's downstream blocked), parameters holding
markup that must never become markup."""

from __future__ import annotations

import time
from dataclasses import dataclass

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report, WorkerInfo

UI_TYPE, HIDDEN_TYPE = "ui_report", "ui_hidden"
HOSTILE = "<script>alert('x')</script>"


@dataclass(frozen=True)
class UiSeed:
    event_id: int
    hidden_event_id: int
    done_task: int  # extract[a]: succeeded, with a log
    failed_task: int  # extract[b]: failed
    graph_id: int


def ui_graph(event_type: str) -> GraphBuilder:
    g = GraphBuilder(event_type, defaults={"retries": 0}).param("depts", "list", default=["a", "b", "c"])
    g.partitions(param="depts").param("note", "string", default="")
    g.python("extract", "m:f").python("process", "m:f", after=["extract"])
    g.python("summary", "m:f", after=["process"], partitioned=False)
    return g


def _finish(store: Store, task_id: int, attempt: int, outcome: Outcome, out: str) -> None:
    now = time.time()
    ok = outcome is Outcome.SUCCEEDED
    report = Report(task_id, attempt, outcome, now - 1, now, result_json='"ok"' if ok else None,
                    error=None if ok else "exit code 3", exit_code=0 if ok else 3, stdout=out)  # fmt: skip
    store.report("ui-seed", [report])


def seed_ui(store: Store) -> UiSeed:
    record = store.register_graph(ui_graph(UI_TYPE).build())
    hidden = store.register_graph(ui_graph(HIDDEN_TYPE).build())
    event, _ = store.submit(record.id, {"depts": ["a", "b", "c"], "note": HOSTILE})
    other, _ = store.submit(hidden.id, {"depts": ["a"]})
    Controller(store).expand()
    store.register_worker(WorkerInfo("ui-seed", "seed-box", "localhost", 1, {"slots": 8}))
    claimed = store.claim(ClaimRequest("ui-seed", {"slots": 8}, frozenset(), 8, 30.0, [], event.id)).claims
    by_partition = {c.partition: c for c in claimed if c.node == "extract"}
    a, b = by_partition["a"], by_partition["b"]
    _finish(store, a.task_id, a.attempt, Outcome.SUCCEEDED, "department a extracted\n" + HOSTILE)
    _finish(store, b.task_id, b.attempt, Outcome.FAILED, "department b: source missing")
    return UiSeed(event.id, other.id, a.task_id, b.task_id, record.id)
