"""The operator's verbs over SQL (:class:`~baton.store.protocol.OperatorStore`): register graphs,
submit events, cancel and rerun them; each verb one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from baton.engine.priorities import event_priority_problem
from baton.errors import Conflict, ParamsInvalid, TransientError, UsageError
from baton.graphs.model import Graph
from baton.graphs.params import params_size_problem, text_problem
from baton.graphs.spec import graph_digest, graph_to_dict
from baton.store import pauses
from baton.store.cancel import cancel_event
from baton.store.chaining import refresh_chains
from baton.store.raising import Origin, insert_event
from baton.store.reads import EVENTS_FROM, EventRow
from baton.store.records import (
    EventRecord,
    GraphRecord,
    PauseAnswer,
    PauseTarget,
    ResumeAnswer,
)
from baton.store.rerun import reset_for_rerun
from baton.store.retry import retried
from baton.store.rows import (
    IdRow,
    KeyedEvent,
)
from baton.store.schedules import refresh_schedules
from baton.store.tx import Tx, read_one, scalar, select_list

if TYPE_CHECKING:
    pass

from baton.store.core import MAX_KEY_CHARS, SqlCore, canonical_params


class OperatorVerbs(SqlCore):
    @retried
    def register_graph(self, graph: Graph, source: str = "") -> GraphRecord:
        digest = graph_digest(graph)
        spec = json.dumps(graph_to_dict(graph), sort_keys=True)
        limit = (graph.event_limit.max_running, graph.event_limit.policy) if graph.event_limit else (None, None)
        same = "SELECT id FROM graphs WHERE name = ? AND digest = ?"
        with self.transaction() as tx:
            row = read_one(tx, IdRow, same, (graph.name, digest))
            if row is None:
                latest = scalar(tx, "SELECT MAX(version) FROM graphs WHERE name = ?", (graph.name,)) or 0
                row = read_one(
                    tx,
                    IdRow,
                    "INSERT INTO graphs (name, version, event_type, digest, spec, source, registered_at, "
                    "max_running_events, event_limit_policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    (graph.name, latest + 1, graph.event_type, digest, spec, source, tx.now, *limit),
                )
                if row is None:  # registered concurrently: the same graph, or another took the version
                    row = read_one(tx, IdRow, same, (graph.name, digest))
                    if row is None:
                        raise TransientError(f"version {latest + 1} of {graph.name} was taken concurrently")
                else:
                    refresh_chains(tx, graph)
                    refresh_schedules(tx, graph)
                    tx.audit("operator", "graph.registered", source or "api", graph=graph.name, version=latest + 1)
        return self.graph(row.id)

    @retried
    def submit(
        self,
        graph_id: int,
        params: Mapping[str, Any],
        key: str | None = None,
        deadline_at: float | None = None,
        priority: int = 0,
    ) -> tuple[EventRecord, bool]:
        wrong = event_priority_problem(priority)
        if wrong:
            raise UsageError(wrong)
        record = self.graph(graph_id)
        canonical = canonical_params(params)
        too_big = params_size_problem(canonical, self.max_params_bytes)
        if too_big:
            raise ParamsInvalid([too_big])
        if key is not None and (len(key) > MAX_KEY_CHARS or text_problem(key)):
            raise UsageError(f"an idempotency key is 1 to {MAX_KEY_CHARS} characters of text, without NUL")
        with self.transaction() as tx:
            existing = self._existing_event(tx, key, record.event_type, canonical)
            created = False
            if existing is None:
                origin = Origin(deadline_at=deadline_at, priority=priority)
                new = insert_event(tx, graph_id, record.event_type, canonical, key, origin)
                if new is None:  # the same key was submitted concurrently and committed first
                    existing = self._existing_event(tx, key, record.event_type, canonical)
                else:
                    existing, created = new, True
                    tx.audit("client", "event.submitted", f"graph {record.name} v{record.version}", existing, key=key)
            assert existing is not None
            # read in the same transaction: the answer is the event as submitted, never as a
            # controller may have moved it a moment after the commit
            event = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (existing,))
            assert event is not None
        return event.record(), created

    @staticmethod
    def _existing_event(tx: Tx, key: str | None, event_type: str, canonical: str) -> int | None:
        """The event already submitted under this idempotency key, if it matches."""
        if key is None:
            return None
        row = read_one(tx, KeyedEvent, f"SELECT {select_list(KeyedEvent)} FROM events WHERE idem_key = ?", (key,))
        if row is None:
            return None
        if row.type != event_type or row.params != canonical:
            raise Conflict(
                f"idempotency key {key!r} already names event {row.id} with other parameters; use a new key",
                existing_event=int(row.id),
            )
        return int(row.id)

    @retried
    def cancel(self, event_id: int, actor: str = "operator") -> EventRecord:
        with self.transaction() as tx:
            cancel_event(tx, event_id, actor, self.event_lock)
            event = read_one(tx, EventRow, f"{EVENTS_FROM} WHERE e.id = ?", (event_id,))  # as this left it
            assert event is not None
        return event.record()

    @retried
    def rerun(
        self, event_id: int, partition: str | None = None, node: str | None = None, actor: str = "operator"
    ) -> int:
        with self.transaction() as tx:
            return reset_for_rerun(tx, event_id, partition, node, actor, self.event_lock)

    @retried
    def pause(self, target: PauseTarget, reason: str = "", actor: str = "operator") -> PauseAnswer:
        with self.transaction() as tx:
            return pauses.pause(tx, target, reason, actor, self.event_lock)

    @retried
    def resume(self, target: PauseTarget, actor: str = "operator") -> ResumeAnswer:
        with self.transaction() as tx:
            return pauses.resume(tx, target, actor)
