"""Chained events in the store: which graphs an event's end raises, and raising them.

``chains`` is rebuilt from each new graph version's ``raised_by`` (the newest version of a graph
says what raises it), refusing a version that would close a cycle of chains. When the dispatch
duty reads an ``event.<state>`` notice, :func:`raise_chained` creates each chained event under
the key ``chain:<source id>:<graph>:<state>``: a notice dispatched twice, or two controllers
dispatching at once, create it once; two sources ending together create one each.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from baton.errors import ParamsInvalid, UsageError
from baton.graphs.chains import chain_cycle, trigger_to_dict
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.graphs.templates import Unknown, render
from baton.store.core import canonical_params
from baton.store.outbox import NoticeRow
from baton.store.raising import Origin, insert_event
from baton.store.tx import Tx, read_one, read_rows, select_list

log = logging.getLogger("baton.store")


class ChainRow(NamedTuple):
    graph: str
    source_type: str
    spec: str


class Source(NamedTuple):
    """What a chained event's parameters may name of the event whose end raised it."""

    id: int
    type: str
    state: str
    idem_key: str | None
    params: str
    scheduled_for: float | None
    finished_at: float | None


class ResultRow(NamedTuple):
    result: str | None


class Target(NamedTuple):
    id: int
    event_type: str


def refresh_chains(tx: Tx, graph: Graph) -> None:
    """Make ``chains`` say what the new version of ``graph`` declares; refuse a cycle."""
    rows = read_rows(tx, ChainRow, f"SELECT {select_list(ChainRow)} FROM chains WHERE graph <> ?", (graph.name,))
    edges: dict[str, set[str]] = {}
    for row in rows:
        edges.setdefault(row.source_type, set()).add(json.loads(row.spec)["event_type"])
    for trigger in graph.raised_by:
        edges.setdefault(trigger.event, set()).add(graph.event_type)
    cycle = chain_cycle(edges)
    if cycle is not None:
        raise UsageError(f"graph {graph.name}: raised_by would close a cycle of chained events: {' → '.join(cycle)}")
    tx.q("DELETE FROM chains WHERE graph = ?", (graph.name,))
    for trigger in graph.raised_by:
        spec = json.dumps({"event_type": graph.event_type, **trigger_to_dict(trigger)}, sort_keys=True)
        tx.q("INSERT INTO chains (graph, source_type, spec) VALUES (?, ?, ?)", (graph.name, trigger.event, spec))


def raise_chained(tx: Tx, notice: NoticeRow) -> int:
    """Create the events that ``notice`` (an event's end) raises; return how many were new."""
    if not notice.kind.startswith("event.") or notice.event_id is None:
        return 0
    source = read_one(tx, Source, f"SELECT {select_list(Source)} FROM events WHERE id = ?", (notice.event_id,))
    if source is None:
        return 0  # pruned before its end was dispatched: nothing left to map parameters from
    state = notice.kind.removeprefix("event.")
    rows = read_rows(tx, ChainRow, f"SELECT {select_list(ChainRow)} FROM chains WHERE source_type = ? ORDER BY graph",
                     (source.type,))  # fmt: skip
    made = 0
    for row in rows:
        spec = json.loads(row.spec)
        if state in spec["when"]:
            made += _raise_one(tx, source, state, row.graph, spec)
    return made


def _raise_one(tx: Tx, source: Source, state: str, graph_name: str, spec: Mapping[str, Any]) -> int:
    target = read_one(tx, Target, "SELECT id, event_type FROM graphs WHERE name = ? ORDER BY version DESC LIMIT 1",
                      (graph_name,))  # fmt: skip
    if target is None:
        return 0
    try:
        params = validate_params(tx.graph_of(target.id), render(spec["params"], _facts(tx, source, state)))
    except (Unknown, ParamsInvalid) as exc:
        reason = f"unknown placeholder {{{exc.name}}}" if isinstance(exc, Unknown) else str(exc)
        log.warning("event %s ended %s: graph %s not raised: %s", source.id, state, graph_name, reason)
        tx.audit("controller", "chain.refused", reason[:2000], source.id, graph=graph_name)
        return 0
    key = f"chain:{source.id}:{graph_name}:{state}"
    new = insert_event(
        tx, target.id, target.event_type, canonical_params(params), key, Origin(source_event_id=source.id)
    )
    if new is None:
        return 0
    tx.audit("controller", "event.submitted", f"event {source.id} ({source.type}) {state}", new, key=key)
    return 1


def _facts(tx: Tx, source: Source, state: str) -> Callable[[str], Any]:
    params = json.loads(source.params)
    plain = {
        "source.id": source.id,
        "source.type": source.type,
        "source.state": state,
        "source.key": source.idem_key,
        "source.scheduled_for": _iso(source.scheduled_for),
        "source.finished_at": _iso(source.finished_at),
    }

    def lookup(name: str) -> Any:
        if name in plain:
            return plain[name]
        kind, _, rest = name.removeprefix("source.").partition(".")
        if kind == "params" and rest in params:
            return params[rest]
        if kind == "results":
            sql = "SELECT result FROM tasks WHERE event_id = ? AND node = ? AND partition = ''"
            found = read_one(tx, ResultRow, sql, (source.id, rest))
            if found is not None:
                return None if found.result is None else json.loads(found.result)
        raise Unknown(name)

    return lookup


def _iso(at: float | None) -> str | None:
    return None if at is None else dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
