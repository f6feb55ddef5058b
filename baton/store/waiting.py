"""Why tasks are not running, grouped per node and reason: pure, over one snapshot of counts,
backoffs, pauses and workers, so the UI's waiting panel, ``baton status`` and the API can say "700
wait for extract_erp" instead of "700 pending" (:func:`gather` reads the snapshot).

Reasons, in the order they are listed within a node:

- ``paused``: pending and ready tasks a pause holds (the event's, its graph's or the node's: which,
  by whom, since when and why); they wait for nothing else until it is resumed;
- ``upstream``: pending tasks, and the upstream nodes that still have tasks not succeeded;
- ``backoff``: ready tasks waiting out a retry delay (``until`` is when the first one ends);
- ``limit``: ready tasks parked because their concurrency key is full (which key, how many of its
  tasks run against its limit, and a few of those holding it);
- ``rate``: ready tasks parked because their rate limit is spent (which key, its starts in the
  window against its limit, and ``until`` when its next start is allowed);
- ``held``: ready tasks a worker holds beyond its free slots (``baton worker --hold``): it starts
  them the moment one of its slots frees (which workers, how many each);
- ``no_worker``: claimable tasks (ready and not backing off) that no live worker can ever take,
  by the rule of :func:`baton.engine.diagnose.unplaceable` (labels and whole capacity);
- ``slot``: claimable tasks some live worker fits, waiting for a free slot;
- ``cancelled``: cancelled tasks, which run again only if rerun.

Running and finished tasks are not waiting, so they never appear.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from baton.engine.diagnose import live_workers, unplaceable
from baton.engine.durations import humanize_s
from baton.graphs.model import Graph, Node
from baton.store.records import (
    REASONS,
    EventRecord,
    HeldWait,
    KeyWait,
    NodeProgress,
    PauseRecord,
    RateWait,
    RetryWait,
    WaitingGroup,
    WorkerRecord,
)

__all__ = ["REASONS", "WaitingGroup", "gather", "waiting_groups"]

MAX_NAMED_WORKERS = 3  # a sentence names this many workers, then counts the rest


def _tasks(count: int, singular: str, plural: str) -> str:
    return f"{count} {singular if count == 1 else plural}"


def _fits(graph: Graph, node: str, worker: WorkerRecord) -> bool:
    """Whether ``worker`` could ever take a task of ``node``: asked of ``unplaceable`` itself so
    the page and ``baton status`` can never disagree."""
    return not unplaceable(graph, {node: 1}, [worker])


def _upstream(
    graph: Graph, node: Node, pending: int, counts: Mapping[str, Mapping[str, int]], remaining: Mapping[str, int]
) -> WaitingGroup:
    """Pending tasks, naming each upstream node that has tasks not succeeded yet, or whose
    partitions its discovery has not listed yet (a dynamic node)."""
    blockers = [d.upstream for d in node.edges() if remaining.get(d.upstream, 0) > 0]
    undiscovered = [d.upstream for d in node.edges() if d.upstream not in blockers
                    and remaining.get(graph.node(d.upstream).partitions_from or "", 0) > 0]  # fmt: skip
    waits = _tasks(pending, "waits", "wait")
    if not blockers and not undiscovered:
        sentence = f"{waits} to be marked ready: their upstream tasks have succeeded"
        return WaitingGroup(node.name, "upstream", pending, sentence)
    named = [f"{up} ({remaining[up]} of {sum(counts.get(up, {}).values())} not done)" for up in blockers]
    named += [f"{up} (partitions not yet listed by {graph.node(up).partitions_from})" for up in undiscovered]
    return WaitingGroup(node.name, "upstream", pending, f"{waits} for {' and '.join(named)}")


def _backoff(node: str, ready: int, backoffs: Sequence[RetryWait], now: float) -> WaitingGroup | None:
    """Ready tasks that may not be claimed before a retry delay ends."""
    mine = [b for b in backoffs if b.node == node and b.tasks > 0]
    count = min(sum(b.tasks for b in mine), ready)
    if count <= 0:
        return None
    until = min(b.until for b in mine)
    wait = humanize_s(max(until - now, 0.0))
    sentence = f"{_tasks(count, 'backs', 'back')} off after a failed attempt; the first retries in {wait}"
    return WaitingGroup(node, "backoff", count, sentence, until)


def _limit(node: str, ready: int, waits: Sequence[KeyWait]) -> list[WaitingGroup]:
    """Ready tasks parked on a full concurrency key, one group per key."""
    groups = []
    for w in waits:
        if w.node != node or w.tasks <= 0:
            continue
        count = min(w.tasks, ready)
        held = f"{w.running} of {w.max_running} running"
        if w.holders:
            held += ": " + ", ".join(w.holders) + (" and more" if w.running > len(w.holders) else "")
        sentence = f"{_tasks(count, 'waits', 'wait')} for concurrency key {w.key} ({held})"
        groups.append(WaitingGroup(node, "limit", count, sentence))
    return groups


def _rate(node: str, ready: int, waits: Sequence[RateWait], now: float) -> list[WaitingGroup]:
    """Ready tasks parked on a spent rate limit, one group per key, with when the next may start."""
    groups = []
    for w in waits:
        if w.node != node or w.tasks <= 0 or ready <= 0:
            continue
        count = min(w.tasks, ready)
        used = f"{w.started} of {w.max_starts} starts in {humanize_s(w.period_s)}"
        wait = "now (back in the queue at the controller's next sweep)"
        if w.until is not None:
            wait = f"in {humanize_s(max(w.until - now, 0.0))}"
        sentence = f"{_tasks(count, 'waits', 'wait')} for rate limit {w.key} ({used}); the next may start {wait}"
        groups.append(WaitingGroup(node, "rate", count, sentence, w.until))
        ready -= count
    return groups


def _held(node: str, ready: int, waits: Sequence[HeldWait]) -> WaitingGroup | None:
    """Ready tasks workers hold, one group per node naming a few of the workers."""
    mine = [w for w in waits if w.node == node and w.tasks > 0]
    count = min(sum(w.tasks for w in mine), ready)
    if count <= 0:
        return None
    named = ", ".join(f"{w.worker_id} ({w.tasks})" for w in mine[:MAX_NAMED_WORKERS])
    more = len(mine) - MAX_NAMED_WORKERS
    held = named + (f" and {more} more" if more > 0 else "")
    sentence = f"{_tasks(count, 'is', 'are')} held by {held}, to start as soon as a slot there frees"
    return WaitingGroup(node, "held", count, sentence)


def _offer(workers: Sequence[WorkerRecord]) -> str:
    """What live workers offer, a few by name."""
    if not workers:
        return "there is no live worker"
    named = [
        f"{w.name} ({', '.join(f'{k} {v}' for k, v in w.capacity.items())}"
        f"{'; labels ' + ', '.join(sorted(w.labels)) if w.labels else ''})"
        for w in workers[:MAX_NAMED_WORKERS]
    ]
    more = len(workers) - MAX_NAMED_WORKERS
    return "live workers offer " + ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _no_worker(node: Node, count: int, live: Sequence[WorkerRecord]) -> WaitingGroup:
    needs = ", ".join(f"{k} {v}" for k, v in node.cost.items())
    if node.labels:
        needs += "; labels " + ", ".join(sorted(node.labels))
    sentence = f"{count} ready but no live worker can take them: they need {needs}; {_offer(live)}"
    return WaitingGroup(node.name, "no_worker", count, sentence)


def _slot(node: str, count: int, fits: Sequence[WorkerRecord]) -> WaitingGroup:
    busy = sum(len(w.running) for w in fits)
    slots = sum(w.capacity.get("slots", 0) for w in fits)
    fit = _tasks(len(fits), "live worker fits", "live workers fit")
    sentence = f"{count} waiting for a free slot ({fit}, {busy} of {slots} slots busy)"
    return WaitingGroup(node, "slot", count, sentence)


@dataclass(frozen=True)
class Snapshot:
    """What the waiting panel reads of one event at one moment: ``counts`` is node -> task state
    -> number; ``remaining`` node -> tasks not succeeded yet; ``workers`` all known workers (only
    the live ones, see :func:`baton.engine.diagnose.live_workers`, are counted)."""

    graph: Graph
    counts: Mapping[str, Mapping[str, int]]
    remaining: Mapping[str, int]
    backoffs: Sequence[RetryWait]
    workers: Sequence[WorkerRecord]
    now: float
    key_waits: Sequence[KeyWait] = ()
    pauses: Sequence[PauseRecord] = ()  # those that hold the event (its graph's, its own, its nodes')
    rate_waits: Sequence[RateWait] = ()
    held_waits: Sequence[HeldWait] = ()


def _paused(node: str, count: int, pause: PauseRecord) -> WaitingGroup:
    why = f": {pause.reason}" if pause.reason else ""
    sentence = f"{count} held by pause {pause.target} (by {pause.paused_by}{why})"
    return WaitingGroup(node, "paused", count, sentence, since=pause.paused_at)


def _holding(pauses: Sequence[PauseRecord], node: str) -> PauseRecord | None:
    """The pause that holds the node's tasks (the broadest, then the oldest), if any."""
    holding = [p for p in pauses if p.node is None or p.node == node]
    return min(holding, key=lambda p: (p.node is not None, p.event_id is not None, p.paused_at), default=None)


def _node_groups(seen: Snapshot, node: Node, live: Sequence[WorkerRecord]) -> list[WaitingGroup]:
    """One node's groups, in the order of :data:`REASONS`."""
    row = seen.counts.get(node.name, {})
    groups: list[WaitingGroup | None] = []
    pause = _holding(seen.pauses, node.name)
    held = row.get("pending", 0) + row.get("ready", 0)
    if pause is not None and held:
        groups.append(_paused(node.name, held, pause))
        row = {state: n for state, n in row.items() if state not in ("pending", "ready")}
    if row.get("pending", 0) > 0:
        groups.append(_upstream(seen.graph, node, row["pending"], seen.counts, seen.remaining))
    ready = row.get("ready", 0)
    backoff = _backoff(node.name, ready, seen.backoffs, seen.now)
    groups.append(backoff)
    limited = _limit(node.name, ready - (backoff.count if backoff else 0), seen.key_waits)
    groups += limited
    rated = _rate(node.name, ready - (backoff.count if backoff else 0) - sum(g.count for g in limited),
                  seen.rate_waits, seen.now)  # fmt: skip
    groups += rated
    claimable = ready - (backoff.count if backoff else 0) - sum(g.count for g in limited + rated)
    in_hand = _held(node.name, claimable, seen.held_waits)
    groups.append(in_hand)
    claimable -= in_hand.count if in_hand else 0
    if claimable > 0:
        fits = [w for w in live if _fits(seen.graph, node.name, w)]
        groups.append(_slot(node.name, claimable, fits) if fits else _no_worker(node, claimable, live))
    if row.get("cancelled", 0) > 0:
        count = row["cancelled"]
        groups.append(WaitingGroup(node.name, "cancelled", count, f"{count} cancelled: they run again only if rerun"))
    return [g for g in groups if g is not None]


def waiting_groups(seen: Snapshot) -> list[WaitingGroup]:
    """Every group of tasks that is not running and why, in graph node order then reason."""
    live = live_workers(seen.workers, seen.now)
    groups: list[WaitingGroup] = []
    for node in seen.graph.nodes:
        groups += _node_groups(seen, node, live)
    return groups


class WaitingReads(Protocol):
    """What :func:`gather` reads (a part of :class:`baton.store.protocol.ReadStore`)."""

    def graph_of(self, graph_id: int) -> Graph: ...
    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]: ...
    def node_progress(self, event_id: int) -> list[NodeProgress]: ...
    def backoffs(self, event_id: int, now: float) -> list[RetryWait]: ...
    def workers(self) -> list[WorkerRecord]: ...
    def key_waits(self, event_id: int) -> list[KeyWait]: ...
    def rate_waits(self, event_id: int) -> list[RateWait]: ...
    def held_waits(self, event_id: int) -> list[HeldWait]: ...
    def pauses(self, event_id: int | None = None) -> list[PauseRecord]: ...


def gather(
    reads: WaitingReads, event: EventRecord, counts: Mapping[str, Mapping[str, int]] | None = None,
    now: float | None = None,
) -> list[WaitingGroup]:  # fmt: skip
    """Why the event's tasks are not running, read now (``counts``: the per-node counts already
    read with the event); none for a finished event."""
    if event.finished_at is not None:
        return []
    now = time.time() if now is None else now
    counts = reads.node_counts(event.id) if counts is None else counts
    remaining = {p.node: p.remaining for p in reads.node_progress(event.id)}
    pauses = reads.pauses(event.id) if event.paused else []
    seen = Snapshot(reads.graph_of(event.graph_id), counts, remaining, reads.backoffs(event.id, now),
                    reads.workers(), now, reads.key_waits(event.id), pauses, reads.rate_waits(event.id),
                    reads.held_waits(event.id))  # fmt: skip
    return waiting_groups(seen)
