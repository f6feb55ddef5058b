"""Claiming: hand ready tasks to a worker, only as many as fit its free capacity and labels.

Requirements (labels and resource cost) are interned per node into the ``requirements``
table, so a claim first picks the requirement ids this worker can ever satisfy, then reads
the head of the ready queue (a partial index) restricted to those ids, and fits tasks
greedily in priority order. Inputs are assembled from upstream results as JSON text without
being parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from baton.backends.tx import Tx, in_list
from baton.model import DepMode, Graph, Node
from baton.planner import UNPARTITIONED
from baton.records import Claim


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


def intern_requirements(tx: Tx, graph: Graph) -> dict[str, int]:
    """The requirement id of every node of the graph, creating rows as needed."""
    out = {}
    for node in graph.nodes:
        labels, cost = requirement_key(node)
        tx.q("INSERT INTO requirements (labels, cost) VALUES (?, ?) ON CONFLICT DO NOTHING", (labels, cost))
        out[node.name] = tx.one("SELECT id FROM requirements WHERE labels = ? AND cost = ?", (labels, cost))[0]
    return out


def load_requirements(tx: Tx) -> dict[int, Requirement]:
    rows = tx.rows("SELECT id, labels, cost FROM requirements")
    return {r[0]: Requirement(r[0], frozenset(json.loads(r[1])), json.loads(r[2])) for r in rows}


@dataclass
class Candidate:
    task_id: int
    event_id: int
    node: str
    partition: str
    attempt: int
    req_id: int


def pick(
    tx: Tx,
    requirements: Mapping[int, Requirement],
    free: Mapping[str, int],
    labels: frozenset[str],
    limit: int,
    lock_clause: str = "",
) -> list[Candidate]:
    """Choose up to ``limit`` ready tasks that fit together in ``free`` capacity."""
    fitting = sorted(r.id for r in requirements.values() if r.fits(labels, free))
    if not fitting or limit <= 0:
        return []
    rows = tx.rows(
        "SELECT id, event_id, node, partition, attempt, req_id FROM tasks t "
        f"WHERE state = 'ready' AND available_at <= ? AND req_id IN ({in_list(fitting)}) "
        f"ORDER BY priority DESC, available_at, id LIMIT ? {lock_clause}",
        (tx.now, *fitting, limit * 4 + 16),
    )
    remaining = dict(free)
    chosen: list[Candidate] = []
    for row in rows:
        cost = requirements[row[5]].cost
        if all(remaining.get(k, 0) >= v for k, v in cost.items()):
            for k, v in cost.items():
                remaining[k] -= v
            chosen.append(Candidate(*row))
            if len(chosen) >= limit or remaining.get("slots", 0) <= 0:
                break
    return chosen


def take(tx: Tx, worker_id: str, chosen: Sequence[Candidate], lease_s: float) -> float:
    """Move the chosen tasks to running under this worker's lease; return the lease expiry."""
    expires = tx.now + lease_s
    tx.many(
        "UPDATE tasks SET state = 'running', attempt = attempt + 1, worker_id = ?, "
        "lease_expires_at = ?, started_at = ?, cancel_requested = 0 WHERE id = ? AND state = 'ready'",
        [(worker_id, expires, tx.now, c.task_id) for c in chosen],
    )
    return expires


def build_claims(tx: Tx, chosen: Sequence[Candidate], expires: float) -> list[Claim]:
    """Attach each task's event parameters and upstream results."""
    events = _events(tx, sorted({c.event_id for c in chosen}))
    fan_in_cache: dict[tuple[int, str], str] = {}
    claims = []
    for c in chosen:
        event_type, graph_id, params = events[c.event_id]
        graph = tx.graph_of(graph_id)
        inputs = _inputs(tx, graph.node(c.node), c, fan_in_cache)
        claims.append(
            Claim(
                c.task_id, c.attempt + 1, c.event_id, event_type, graph_id, c.node, c.partition, params, inputs, expires
            )
        )
    return claims


def _events(tx: Tx, ids: list[int]) -> dict[int, tuple[str, int, str]]:
    rows = tx.rows(f"SELECT id, type, graph_id, params FROM events WHERE id IN ({in_list(ids)})", ids)
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _inputs(tx: Tx, node: Node, c: Candidate, fan_in_cache: dict[tuple[int, str], str]) -> str:
    parts = []
    for dep in node.edges():
        if dep.mode is DepMode.ALL:
            key = (c.event_id, dep.upstream)
            if key not in fan_in_cache:
                fan_in_cache[key] = _all_results(tx, c.event_id, dep.upstream)
            value = fan_in_cache[key]
        else:
            partition = c.partition if dep.mode is DepMode.SAME else UNPARTITIONED
            row = tx.one(
                "SELECT result FROM tasks WHERE event_id = ? AND node = ? AND partition = ?",
                (c.event_id, dep.upstream, partition),
            )
            value = (row[0] if row else None) or "null"
        parts.append(f"{json.dumps(dep.upstream)}:{value}")
    return "{" + ",".join(parts) + "}"


def _all_results(tx: Tx, event_id: int, node: str) -> str:
    rows = tx.rows("SELECT partition, result FROM tasks WHERE event_id = ? AND node = ? ORDER BY id", (event_id, node))
    return "{" + ",".join(f"{json.dumps(p)}:{r or 'null'}" for p, r in rows) + "}"
