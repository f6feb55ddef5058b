"""Claiming: hand ready tasks to a worker, only as many as fit its free capacity and labels.

Requirements (labels and resource cost) are interned per node into the ``requirements``
table, so a claim first picks the requirement ids this worker can ever satisfy, then reads
the head of the ready queue (a partial index) restricted to those ids, and fits tasks
greedily in queue order (:data:`READY_ORDER`: priority, then fair turns, then deepest stage
first; see :mod:`baton.engine.priorities`). Inputs are assembled from upstream results as JSON text
without being parsed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from baton.engine.planner import UNPARTITIONED
from baton.graphs.model import Dependency, DepMode, Graph, Node
from baton.store.records import Claim
from baton.store.tx import Batch, Cursor, Tx, fetch_all, in_list, read_rows, scalar, select_list


@dataclass(frozen=True)
class Requirement:
    id: int
    labels: frozenset[str]
    cost: Mapping[str, int]

    def fits(self, labels: frozenset[str], capacity: Mapping[str, int]) -> bool:
        return self.labels <= labels and all(capacity.get(k, 0) >= v for k, v in self.cost.items())


def requirement_key(node: Node) -> tuple[str, str]:
    labels = json.dumps(sorted(node.labels), separators=(",", ":"))
    cost = json.dumps(dict(sorted(node.cost.items())), separators=(",", ":"))
    return labels, cost


def intern_requirements(tx: Tx, graph: Graph, nodes: Iterable[str] | None = None) -> dict[str, int]:
    """The requirement id of every node of the graph (or of ``nodes``), creating rows as needed."""
    out = {}
    for node in graph.nodes if nodes is None else map(graph.node, nodes):
        labels, cost = requirement_key(node)
        tx.q("INSERT INTO requirements (labels, cost) VALUES (?, ?) ON CONFLICT DO NOTHING", (labels, cost))
        out[node.name] = scalar(tx, "SELECT id FROM requirements WHERE labels = ? AND cost = ?", (labels, cost))
    return out


class RequirementRow(NamedTuple):
    id: int
    labels: str  # JSON: a sorted list
    cost: str  # JSON: an object


def load_requirements(tx: Tx) -> dict[int, Requirement]:
    rows = read_rows(tx, RequirementRow, f"SELECT {select_list(RequirementRow)} FROM requirements")
    return {r.id: Requirement(r.id, frozenset(json.loads(r.labels)), json.loads(r.cost)) for r in rows}


class Candidate(NamedTuple):
    """A ready task at the head of the queue, as :func:`pick` reads it."""

    task_id: int
    event_id: int
    node: str
    partition: str
    attempt: int
    req_id: int
    limit_key: str | None  # its concurrency key (baton.store.limits)
    rate_key: str | None  # its rate limit's key (baton.store.rates)


# The ready queue's order, as the ``tasks_ready`` index holds it: every query that walks ready
# tasks in queue order uses it (the rule is baton.engine.priorities.queue_key).
READY_ORDER = "priority DESC, turn, stage DESC, available_at, id"

_CANDIDATES = f"SELECT {select_list(Candidate, task_id='id')} FROM tasks t"


@dataclass
class Pick:
    """A query for the head of the ready queue, sent and not yet read (see :func:`send_pick`)."""

    cursor: Cursor | None  # None: nothing this worker could take, no query sent
    requirements: Mapping[int, Requirement]
    free: Mapping[str, int]
    limit: int
    locked: bool
    each: bool = False  # each task need only fit on its own (held tasks: they start one by one)

    def read(self, tx: Tx) -> list[Candidate]:
        """Read the candidates and fit them greedily, in queue order, into the free capacity."""
        if self.cursor is None:
            return []
        rows = fetch_all(self.cursor, Candidate)
        if self.each:
            chosen = rows[: self.limit]
            if self.locked and len(rows) > len(chosen):
                tx.made_ready(len(rows) - len(chosen))
            return chosen
        remaining = dict(self.free)
        chosen = []
        for row in rows:
            cost = self.requirements[row.req_id].cost
            if all(remaining.get(k, 0) >= v for k, v in cost.items()):
                for k, v in cost.items():
                    remaining[k] -= v
                chosen.append(row)
                if len(chosen) >= self.limit or remaining.get("slots", 0) <= 0:
                    break
        if self.locked and len(rows) > len(chosen):
            tx.made_ready(len(rows) - len(chosen))  # locked but left: others may want them after the commit
        return chosen


def send_pick(
    tx: Tx,
    requirements: Mapping[int, Requirement],
    free: Mapping[str, int],
    labels: frozenset[str],
    limit: int,
    lock_clause: str = "",
    event_id: int | None = None,
    holdable: str = "",
) -> Pick:
    """Send the query for up to ``limit`` ready tasks that fit together in ``free`` capacity; its
    answer is read by :meth:`Pick.read`, after the answers to anything sent before it.
    ``holdable``: a condition for tasks to hold instead (each fitting ``free`` on its own)."""
    fitting = [r for r in requirements.values() if r.fits(labels, free)]
    each = bool(holdable)
    if not fitting or limit <= 0:
        return Pick(None, requirements, free, limit, bool(lock_clause), each)
    # With unit costs the first ``limit`` rows all fit; otherwise look further down the queue
    # for tasks that fit beside the bigger ones. Rows read here are locked until the commit.
    unit = each or all(dict(r.cost) in ({"slots": 1}, {}) for r in fitting)
    ids = sorted(r.id for r in fitting)
    only = "" if event_id is None else "AND event_id = ? "
    cursor = tx.q(
        f"{_CANDIDATES} WHERE state = 'ready' AND parked = 0 AND available_at <= ? "
        f"AND req_id IN ({in_list(ids)}) {only}{holdable}"
        f"ORDER BY {READY_ORDER} LIMIT ? {lock_clause}",
        (tx.now, *ids, *([] if event_id is None else [event_id]), limit if unit else limit * 4 + 16),
    )
    return Pick(cursor, requirements, free, limit, bool(lock_clause), each)


def left_after(
    free: Mapping[str, int], taken: Sequence[Candidate], requirements: Mapping[int, Requirement]
) -> dict[str, int]:
    """The capacity ``free`` less what the ``taken`` tasks cost."""
    left = dict(free)
    for c in taken:
        for key, amount in requirements[c.req_id].cost.items():
            left[key] = left.get(key, 0) - amount
    return left


def take(tx: Tx, worker_id: str, chosen: Sequence[Candidate], lease_s: float, claim_id: str | None = None) -> float:
    """Move the chosen tasks to running under this worker's lease, marked with the claim request
    that took them (``claim_id``); return the lease expiry."""
    expires = tx.now + lease_s
    match, ids = tx.is_in("id", [c.task_id for c in chosen])
    # No "AND state = 'ready'": pick has locked these rows (or the transaction holds the only
    # write lock), and with it PostgreSQL may walk the whole ready index instead of the key.
    tx.q(
        "UPDATE tasks SET state = 'running', attempt = attempt + 1, worker_id = ?, lease_expires_at = ?, "
        f"started_at = ?, cancel_requested = 0, claim_id = ? WHERE {match}",
        (worker_id, expires, tx.now, claim_id, *ids),
    )
    tx.took(len(chosen))  # ready -> running: neither is a counted state (see Tx.moved)
    return expires


class Taken(NamedTuple):
    """A running task taken by an earlier claim request, as :func:`taken_by` reads it."""

    task_id: int
    event_id: int
    node: str
    partition: str
    attempt: int
    req_id: int
    limit_key: str | None
    rate_key: str | None
    lease_expires_at: float


def taken_by(tx: Tx, worker_id: str, claim_id: str, lock_clause: str = "") -> tuple[list[Candidate], float]:
    """What an earlier claim request with this id took and this worker still runs, as the
    candidates it was (their attempt before the take), with their lease expiry. Read through the
    running tasks alone (see ``RUNNING_FROM``)."""
    rows = read_rows(
        tx,
        Taken,
        f"SELECT {select_list(Taken, task_id='id')} FROM tasks t "
        f"WHERE worker_id = ? AND claim_id = ? AND state = 'running' ORDER BY +id {lock_clause}",
        (worker_id, claim_id),
    )
    candidates = [Candidate(r.task_id, r.event_id, r.node, r.partition, r.attempt - 1, r.req_id, r.limit_key,
                             r.rate_key)
                  for r in rows]  # fmt: skip
    return candidates, max((r.lease_expires_at for r in rows), default=tx.now)


@dataclass(frozen=True)
class EventInfo:
    """What a claim carries of its event; immutable once submitted, so cached by the backend."""

    type: str
    graph_id: int
    params_json: str


class EventRow(NamedTuple):
    id: int
    type: str
    graph_id: int
    params: str


class KeyedResult(NamedTuple):
    """An upstream task's result, by (event, node, partition)."""

    event_id: int
    node: str
    partition: str
    result: str | None


class PartitionResult(NamedTuple):
    partition: str
    result: str | None


@dataclass
class Inputs:
    """The queries for the chosen tasks' upstream results, sent and not yet read (see
    :func:`send_inputs`)."""

    chosen: Sequence[Candidate]
    expires: float
    events: Mapping[int, EventInfo]
    nodes: dict[int, Node]
    sent: list[Cursor]  # rows: KeyedResult

    def read(self, tx: Tx) -> list[Claim]:
        """Read the results and build each claim, its inputs as JSON text (never parsed)."""
        results: dict[Any, str | None] = {}
        for cursor in self.sent:
            results.update({(r.event_id, r.node, r.partition): r.result for r in fetch_all(cursor, KeyedResult)})
        claims = []
        for c in self.chosen:
            event = self.events[c.event_id]
            inputs = _inputs(tx, self.nodes[c.task_id], c, results)
            claim = Claim(c.task_id, c.attempt + 1, c.event_id, event.type, event.graph_id, c.node, c.partition,
                          event.params_json, inputs, self.expires)  # fmt: skip
            claims.append(claim)
        return claims


def send_inputs(tx: Tx, chosen: Sequence[Candidate], expires: float, events: dict[int, EventInfo]) -> Inputs:
    """Read the events the cache lacks, then send the queries for the chosen tasks' upstream
    results; :meth:`Inputs.read` reads them and builds the claims."""
    missing = sorted({c.event_id for c in chosen} - events.keys())
    if missing:
        sql = f"SELECT {select_list(EventRow)} FROM events WHERE id IN ({in_list(missing)})"
        events.update({r.id: EventInfo(r.type, r.graph_id, r.params) for r in read_rows(tx, EventRow, sql, missing)})
    nodes = {c.task_id: tx.graph_of(events[c.event_id].graph_id).node(c.node) for c in chosen}
    return Inputs(chosen, expires, events, nodes, _send_upstream_results(tx, chosen, nodes))


def _upstream_key(c: Candidate, dep: Dependency) -> tuple[int, str, str]:
    return (c.event_id, dep.upstream, c.partition if dep.mode is DepMode.SAME else UNPARTITIONED)


def _send_upstream_results(tx: Tx, chosen: Sequence[Candidate], nodes: dict[int, Node]) -> list[Cursor]:
    """Queries for the results of the single upstream tasks (``same`` and ``broadcast`` edges)
    of every chosen task, by (event, node, partition): one per task, or one for all where the
    database binds arrays."""
    keys = sorted(
        {_upstream_key(c, dep) for c in chosen for dep in nodes[c.task_id].edges() if dep.mode is not DepMode.ALL}
    )
    if tx.batches(len(keys)):
        return [tx.q(_UPSTREAM_RESULTS, (_UPSTREAM_KEYS.param(keys),))]
    return [tx.q(_UPSTREAM_RESULT, key) for key in keys]


_UPSTREAM_RESULT = f"SELECT {select_list(KeyedResult)} FROM tasks WHERE event_id = ? AND node = ? AND partition = ?"
_UPSTREAM_KEYS = Batch(("event_id", "bigint"), ("node", "text"), ("partition", "text"))
# One lookup by key per row (``OFFSET 0``: the planner takes the batch for 100 rows and would
# rather scan the whole table).
_UPSTREAM_RESULTS = (
    f"SELECT {select_list(KeyedResult, 't.')} FROM {_UPSTREAM_KEYS.source} CROSS JOIN LATERAL (SELECT "
    f"{select_list(KeyedResult)} FROM tasks WHERE event_id = u.event_id AND node = u.node "
    "AND partition = u.partition OFFSET 0) t"
)


def _inputs(tx: Tx, node: Node, c: Candidate, results: dict[Any, str | None]) -> str:
    parts = []
    for dep in node.edges():
        if dep.mode is DepMode.ALL:
            key: Any = (c.event_id, dep.upstream, None)
            if key not in results:
                results[key] = _all_results(tx, c.event_id, dep.upstream)
            value = results[key]
        else:
            value = results.get(_upstream_key(c, dep)) or "null"
        parts.append(f"{json.dumps(dep.upstream)}:{value}")
    return "{" + ",".join(parts) + "}"


def _all_results(tx: Tx, event_id: int, node: str) -> str:
    sql = f"SELECT {select_list(PartitionResult)} FROM tasks WHERE event_id = ? AND node = ? ORDER BY id"
    rows = read_rows(tx, PartitionResult, sql, (event_id, node))
    return "{" + ",".join(f"{json.dumps(r.partition)}:{r.result or 'null'}" for r in rows) + "}"
