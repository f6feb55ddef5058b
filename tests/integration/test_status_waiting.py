"""status explains ready tasks that no live worker can take."""

from __future__ import annotations

from baton.cli.display import summary
from baton.controller.loop import Controller
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import WorkerInfo


def test_status_names_ready_tasks_no_live_worker_can_take(backend: Store) -> None:
    graph = GraphBuilder("diag").python("train", "m:f", labels=["gpu"]).python("plain", "m:f").build()
    record = backend.register_graph(graph)
    event, _ = backend.submit(record.id, validate_params(graph, {}))
    Controller(backend).expand()
    backend.register_worker(WorkerInfo("w1", "cpu-box", "host", 1, {"slots": 4}))
    waiting = summary(backend, event.id)["waiting"]
    assert len(waiting) == 1 and "of train need labels ['gpu']" in waiting[0] and "cpu-box" in waiting[0]
    backend.register_worker(WorkerInfo("w2", "gpu-box", "host", 2, {"slots": 1}, frozenset({"gpu"})))
    assert summary(backend, event.id)["waiting"] == []
    backend.cancel(event.id)
    assert summary(backend, event.id)["waiting"] == []  # finished events wait for nothing
