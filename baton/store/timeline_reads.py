"""The reads behind an event's page: its timeline, critical path, backoffs and partitions.

Each is one read transaction whose answer does not grow with the event's partitions, and none
loads an event's tasks into Python:

- :meth:`~SqlTimelineReads.timeline` makes two passes over the event's tasks (``tasks_event``):
  one for the window (first ready, last end), then one ``GROUP BY`` of the ready tasks by node
  and their ready, start and end bins, folded here into per-bin counts (the task counts come from
  ``event_nodes``). Its rows are the distinct (node, bins) combinations: a few per bin, since a
  task starts and ends close to when it became ready, and never more than the tasks;
- :meth:`~SqlTimelineReads.critical_path` reads one statement per step through the unique
  ``(event_id, node, partition)`` index (one row for a ``same`` edge, the upstream node's tasks
  for an ``all`` or ``broadcast`` one), after a pass over the event's tasks to find where the
  path ends;
- :meth:`~SqlTimelineReads.backoffs` reads the partial ``tasks_ready`` index, which holds only
  the ready tasks of the whole store;
- :meth:`~SqlTimelineReads.partition_rows` reads a page of keys from the unique index, then the
  tasks of that key range, node by node: O(page x partitioned nodes).

A task's times are its current attempt's. A retry or a re-run sets ``ready_at`` after the old
``started_at``, so a task whose ``started_at`` is before its ``ready_at`` has not started this
attempt (:data:`STARTED`), and its old start and end are not counted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from baton.engine.planner import UNPARTITIONED
from baton.engine.states import EventState
from baton.errors import NotFound, UsageError
from baton.graphs.model import DepMode, Graph
from baton.store import event_limits, limits, pauses, rates
from baton.store.records import (
    EventRecord,
    HeldWait,
    KeyWait,
    LimitKeyRecord,
    PartitionRow,
    PathStep,
    PauseRecord,
    RateKeyRecord,
    RateWait,
    RetryWait,
    Timeline,
    TimelineLane,
    WaitingGroup,
)
from baton.store.retry import retried
from baton.store.tx import Tx, in_list, read_one, read_rows, select_list
from baton.store.waiting import WaitingReads, gather

MAX_BINS = 1000
MAX_PARTITION_ROWS = 1000
MAX_NAMED_EVENTS = 5  # a queued event names this many of the running ones
MIN_BIN_S = 1e-6  # an event whose first and last times coincide still has bins of some width
STARTED = "started_at >= ready_at"  # the task's current attempt has started (see the module docstring)
_CURRENT_START = f"CASE WHEN {STARTED} THEN started_at END"
_LATEST = f"COALESCE(finished_at, CASE WHEN {STARTED} THEN started_at ELSE ready_at END)"
# The task that happened last first: unfinished tasks (they count as latest), by their current start
# or, before it, by when they became ready, then the finished ones by their end. Portable: no NULLS LAST.
LATEST_FIRST = f"ORDER BY (finished_at IS NULL) DESC, {_LATEST} IS NULL, {_LATEST} DESC, id DESC"


class HeldRow(NamedTuple):
    node: str
    worker_id: str
    tasks: int


class EventHead(NamedTuple):
    graph_id: int
    state: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None


class Span(NamedTuple):
    """The extremes of an event's task times."""

    first_ready: float | None
    last_ready: float | None
    last_start: float | None
    last_end: float | None


class BinRow(NamedTuple):
    """The ready tasks of one node that share their ready, start and end bins (None: not started,
    or not ended, in the current attempt). A group's tasks all started, or none did, and likewise
    for ending: its start and end figures are read only when its bin says they count."""

    node: str
    ready_bin: float  # a whole number (PostgreSQL's floor answers a float)
    start_bin: float | None
    end_bin: float | None
    tasks: int
    first_ready_at: float | None
    first_start_at: float | None
    last_end_at: float | None
    queue_s: float | None
    run_s: float | None


class PathRow(NamedTuple):
    id: int
    node: str
    partition: str
    state: str
    ready_at: float | None
    started_at: float | None  # the current attempt's start
    finished_at: float | None

    def step(self) -> PathStep:
        return PathStep(self.id, self.node, self.partition, self.state, self.ready_at, self.started_at,
                        self.finished_at)  # fmt: skip


class BackoffRow(NamedTuple):
    node: str
    tasks: int
    until: float


class NodeTotal(NamedTuple):
    node: str
    total: int


class KeyRow(NamedTuple):
    partition: str


class CellRow(NamedTuple):
    id: int
    node: str
    partition: str
    state: str


_SPAN_COLUMNS = select_list(
    Span, first_ready="MIN(ready_at)", last_ready="MAX(ready_at)", last_start="MAX(started_at)",
    last_end="MAX(finished_at)",
)  # fmt: skip
_SPAN = f"SELECT {_SPAN_COLUMNS} FROM tasks WHERE event_id = ?"
_PATH_COLUMNS = select_list(PathRow, started_at=_CURRENT_START)
# Where a path ends, in LATEST_FIRST's order, in two statements whose sort keys are cheaper to
# compute: the latest unfinished task that became ready, else the last to finish.
_LATEST_UNFINISHED = (
    f"SELECT {_PATH_COLUMNS} FROM tasks WHERE event_id = ? AND finished_at IS NULL AND ready_at IS NOT NULL "
    f"{LATEST_FIRST} LIMIT 1"
)
_LAST_FINISHED = (
    f"SELECT {_PATH_COLUMNS} FROM tasks WHERE event_id = ? AND finished_at IS NOT NULL "
    "ORDER BY finished_at DESC, id DESC LIMIT 1"
)


class ParkedRow(NamedTuple):
    node: str
    key: str
    parked: int
    tasks: int  # ready, parked on the key or not (not those parked on a rate limit)


_PARKED = (
    "SELECT node, limit_key AS key, SUM(CASE WHEN parked = 1 THEN 1 ELSE 0 END) AS parked, "
    "SUM(CASE WHEN parked IN (0, 1) THEN 1 ELSE 0 END) AS tasks FROM tasks WHERE event_id = ? "
    "AND state = 'ready' AND limit_key IS NOT NULL GROUP BY node, limit_key ORDER BY node, limit_key"
)


class RateParkedRow(NamedTuple):
    node: str
    key: str
    tasks: int


_RATE_PARKED = (
    "SELECT node, rate_key AS key, COUNT(*) AS tasks FROM tasks WHERE event_id = ? AND state = 'ready' "
    f"AND parked = {rates.PARKED} AND rate_key IS NOT NULL GROUP BY node, rate_key ORDER BY node, rate_key"
)


class HolderRow(NamedTuple):
    node: str
    partition: str
    worker_id: str | None


_HOLDERS = "SELECT node, partition, worker_id FROM tasks WHERE limit_key = ? AND state = 'running' ORDER BY id LIMIT 3"


def _holders(tx: Tx, key: str) -> tuple[str, ...]:
    """Up to three of the tasks holding ``key``, as ``node[partition] on worker``."""
    return tuple(f"{h.node}[{h.partition}] on {h.worker_id}" for h in read_rows(tx, HolderRow, _HOLDERS, (key,)))


# Ready tasks waiting out a retry delay, of every event: the partial index holds only ready tasks,
# and MATERIALIZED keeps SQLite from walking the event's tasks in node order (one seek per task).
_BACKOFFS = (
    "WITH waiting AS MATERIALIZED (SELECT event_id, node, available_at FROM tasks "
    "WHERE state = 'ready' AND parked = 0 AND available_at > ?) "
    f"SELECT {select_list(BackoffRow, tasks='COUNT(*)', until='MIN(available_at)')} "
    "FROM waiting WHERE event_id = ? GROUP BY node ORDER BY node"
)


@dataclass
class _LaneSums:
    """One node's lane, summed from its :class:`BinRow` groups."""

    bins: int
    tasks: int = 0
    first_ready_at: float | None = None
    first_start_at: float | None = None
    last_end_at: float | None = None
    queue_s: float = 0.0
    run_s: float = 0.0
    ready: list[int] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ready, self.started, self.ended = [0] * self.bins, [0] * self.bins, [0] * self.bins

    def add(self, row: BinRow) -> None:
        self.ready[self._index(row.ready_bin)] += row.tasks
        self.first_ready_at = _least(self.first_ready_at, row.first_ready_at)
        if row.start_bin is not None:
            self.started[self._index(row.start_bin)] += row.tasks
            self.first_start_at = _least(self.first_start_at, row.first_start_at)
            self.queue_s += row.queue_s or 0.0
        if row.end_bin is not None:
            self.ended[self._index(row.end_bin)] += row.tasks
            self.last_end_at = _greatest(self.last_end_at, row.last_end_at)
            self.run_s += row.run_s or 0.0

    def _index(self, raw: float) -> int:
        """A bin as the database computed it, clamped to the timeline (a time can fall outside
        it: a retry's ready time after a finished event's end, a worker's clock before its start)."""
        return min(max(int(raw), 0), self.bins - 1)

    def lane(self, node: str) -> TimelineLane:
        return TimelineLane(
            node, self.tasks, self.first_ready_at, self.first_start_at, self.last_end_at, self.queue_s, self.run_s,
            tuple(self.ready), tuple(self.started), tuple(self.ended),
        )  # fmt: skip


def _least(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _greatest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def window(head: EventHead, span: Span, now: float, bins: int) -> tuple[float, float, float]:
    """The timeline's start, end and bin width. Start: the first task ready (else when the event
    started, or was submitted). End: the last task's end once the event is over; while it runs,
    now, or any later time seen (a retry's ready time lies ahead)."""
    start = span.first_ready if span.first_ready is not None else head.started_at or head.submitted_at
    if EventState(head.state).terminal:
        end = span.last_end if span.last_end is not None else head.finished_at or now
    else:
        end = max(t for t in (now, span.last_ready, span.last_start, span.last_end) if t is not None)
    end = max(end, start)
    return start, end, max((end - start) / bins, MIN_BIN_S)


def _step_up(graph: Graph, event_id: int, step: PathRow) -> tuple[str, list[object]]:
    """The statement for the step before ``step`` on the path: the latest of the tasks it waited
    for, one candidate per edge (an index lookup for a task, an index range for a node)."""
    parts, params = [], []
    for i, dep in enumerate(graph.node(step.node).edges()):
        if not graph.node(dep.upstream).partitioned:
            partition: str | None = UNPARTITIONED
        else:
            partition = step.partition if dep.mode is DepMode.SAME else None  # None: the whole node
        where = "event_id = ? AND node = ?" + (" AND partition = ?" if partition is not None else "")
        parts.append(f"SELECT * FROM (SELECT {_PATH_COLUMNS} FROM tasks WHERE {where} {LATEST_FIRST} LIMIT 1) AS c{i}")
        params += [event_id, dep.upstream, *([] if partition is None else [partition])]
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS candidates {LATEST_FIRST} LIMIT 1", params


class SqlTimelineReads:
    """The event page's verbs of a SQL backend (mixed into :class:`~baton.store.sql.SqlStore`)."""

    transaction: Callable[..., AbstractContextManager[Tx]]
    floor_sql: str  # a dialect's SQL that rounds ``{}`` down to a whole number (for non-negative values)
    event: Callable[[int], EventRecord]  # reads beside these in SqlStore (baton.store.reads)

    def waiting(self, event_id: int) -> list[WaitingGroup]:
        event = self.event(event_id)
        if event.state is EventState.SUBMITTED:
            return self._queued(event)
        return gather(cast(WaitingReads, self), event)

    @retried
    def _queued(self, event: EventRecord) -> list[WaitingGroup]:
        """A submitted event waiting for a place under its graph's event limit: its place in the
        queue (as ``count``: 1 is next), and the events running."""
        with self.transaction(write=False) as tx:
            limit = tx.graph_of(event.graph_id).event_limit
            if limit is None or limit.policy != "queue":
                return []
            found = event_limits.place(tx, event.id, event.graph_name)
        if len(found.running) < limit.max_running:
            return []  # a place is free: the controller plans it at its next round
        shown = ", ".join(str(i) for i in found.running[:MAX_NAMED_EVENTS])
        more = f" and {len(found.running) - MAX_NAMED_EVENTS} more" if len(found.running) > MAX_NAMED_EVENTS else ""
        sentence = (f"the event waits for a place: graph {event.graph_name} runs {len(found.running)} of its "
                    f"{limit.max_running} at once (events {shown}{more}); {found.ahead} submitted before it "
                    "wait too")  # fmt: skip
        return [WaitingGroup("", "queued", found.ahead + 1, sentence)]

    @retried
    def timeline(self, event_id: int, bins: int = 200) -> Timeline:
        """Per node in the graph's order (every node, with or without tasks): its envelope, the
        queue and run seconds of its tasks, and per bin how many became ready, started and ended.
        See :func:`window` for the bins."""
        if not 1 <= bins <= MAX_BINS:
            raise UsageError(f"a timeline has 1 to {MAX_BINS} bins (got {bins})")
        with self.transaction(write=False) as tx:
            head = _event_head(tx, event_id)
            span = read_one(tx, Span, _SPAN, (event_id,))
            assert span is not None  # an aggregate without GROUP BY always answers a row
            start, end, bin_s = window(head, span, tx.now, bins)
            rows = read_rows(tx, BinRow, self._bins_sql(), (start, bin_s) * 3 + (event_id,))
            totals = read_rows(tx, NodeTotal, "SELECT node, total FROM event_nodes WHERE event_id = ?", (event_id,))
            graph = tx.graph_of(head.graph_id)
        sums = {node.name: _LaneSums(bins) for node in graph.nodes}
        for row in rows:
            sums[row.node].add(row)
        for t in totals:
            sums[t.node].tasks = t.total
        return Timeline(event_id, start, end, bin_s, tuple(sums[n.name].lane(n.name) for n in graph.nodes))

    def _bins_sql(self) -> str:
        def bin_of(column: str) -> str:
            return self.floor_sql.format(f"({column} - ?) / ?")

        columns = select_list(
            BinRow,
            ready_bin=bin_of("ready_at"),
            start_bin=f"CASE WHEN {STARTED} THEN {bin_of('started_at')} END",
            end_bin=f"CASE WHEN {STARTED} AND finished_at IS NOT NULL THEN {bin_of('finished_at')} END",
            tasks="COUNT(*)",
            first_ready_at="MIN(ready_at)",
            first_start_at="MIN(started_at)",
            last_end_at="MAX(finished_at)",
            queue_s="SUM(started_at - ready_at)",
            run_s="SUM(finished_at - started_at)",
        )
        # Tasks never made ready are only counted (event_nodes has those counts): most of a young
        # event's tasks. The node last: SQLite then reads the tasks in id order (tasks_event), not
        # in node order through the unique index, a seek per task.
        return (f"SELECT {columns} FROM tasks WHERE event_id = ? AND ready_at IS NOT NULL "
                "GROUP BY ready_bin, start_bin, end_bin, node")  # fmt: skip

    @retried
    def critical_path(self, event_id: int) -> list[PathStep]:
        """Oldest first, ending at the event's latest task: the latest unfinished one that became
        ready (the most recently started, or made ready, of those running or waiting), or when
        every one has finished, the last to finish. Each step before it is the latest of the tasks
        the next one waited for: per edge, the same partition's task (``same``) or the upstream
        node's latest task (``all``, ``broadcast``), unfinished ones counting as latest. Empty
        when no task has become ready."""
        with self.transaction(write=False) as tx:
            head = _event_head(tx, event_id)
            graph = tx.graph_of(head.graph_id)
            step = None
            if not EventState(head.state).terminal:  # an ended event's tasks have all finished
                step = read_one(tx, PathRow, _LATEST_UNFINISHED, (event_id,))
            step = step or read_one(tx, PathRow, _LAST_FINISHED, (event_id,))
            path = []
            while step is not None:
                path.append(step.step())
                if not graph.node(step.node).edges():  # a root: where every path begins
                    break
                step = read_one(tx, PathRow, *_step_up(graph, event_id, step))
        return path[::-1]

    @retried
    def backoffs(self, event_id: int, now: float) -> list[RetryWait]:
        """By node name: how many ready tasks may not be claimed yet at ``now`` (their retry delay
        ends after it), and when the first of them may be."""
        with self.transaction(write=False) as tx:
            rows = read_rows(tx, BackoffRow, _BACKOFFS, (now, event_id))
            if not rows:
                _event_head(tx, event_id)
        return [RetryWait(r.node, r.tasks, r.until) for r in rows]

    @retried
    def key_waits(self, event_id: int) -> list[KeyWait]:
        """By node and key: the event's tasks waiting for a concurrency key, with the key's state
        and a few holders: those parked, and while the key is full the other ready ones too (the
        next claim that sees them parks them). Read only for graphs that declare keys (others
        cost nothing here)."""
        with self.transaction(write=False) as tx:
            head = _event_head(tx, event_id)
            if not any(n.concurrency for n in tx.graph_of(head.graph_id).nodes):
                return []
            rows = read_rows(tx, ParkedRow, _PARKED, (event_id,))
            states = {s.key: s for s in limits.key_states(tx, sorted({r.key for r in rows}))}
            holders = {key: _holders(tx, key) for key in states}
        waits = []
        for r in rows:
            state = states.get(r.key)
            if state is None:
                continue
            waiting = r.tasks if state.running >= state.max_running else r.parked
            if waiting:
                waits.append(KeyWait(r.node, r.key, waiting, state.running, state.max_running, holders[r.key]))
        return waits

    @retried
    def pauses(self, event_id: int | None = None) -> list[PauseRecord]:
        with self.transaction(write=False) as tx:
            if event_id is None:
                return pauses.in_force(tx)
            head = _event_head(tx, event_id)
            return pauses.in_force(tx, event_id, tx.graph_of(head.graph_id).name)

    @retried
    def limit_keys(self, after: str | None = None, limit: int = 100) -> list[LimitKeyRecord]:
        with self.transaction(write=False) as tx:
            found = limits.key_states(tx, after=after, limit=limit)
        return [LimitKeyRecord(s.key, s.max_running, s.running, s.ready, s.parked) for s in found]

    @retried
    def held_waits(self, event_id: int) -> list[HeldWait]:
        """Read through the held tasks' partial index (a few per worker), so an event of any size
        costs as little as the holds do."""
        sql = ("SELECT node, held_by AS worker_id, COUNT(*) AS tasks FROM tasks WHERE parked = 4 AND event_id = ? "
               "GROUP BY node, held_by ORDER BY node, held_by")  # fmt: skip
        with self.transaction(write=False) as tx:
            return [HeldWait(*r) for r in read_rows(tx, HeldRow, sql, (event_id,))]

    @retried
    def rate_waits(self, event_id: int) -> list[RateWait]:
        """By node and rate key: the event's tasks parked until their rate limit allows a start,
        with the key's starts in the current window and when its next start is allowed. Read
        only for graphs that declare rate limits (others cost nothing here)."""
        with self.transaction(write=False) as tx:
            head = _event_head(tx, event_id)
            if not any(n.rate_limit for n in tx.graph_of(head.graph_id).nodes):
                return []
            rows = read_rows(tx, RateParkedRow, _RATE_PARKED, (event_id,))
            states = {s.key: s for s in rates.rate_states(tx, sorted({r.key for r in rows}))}
        return [RateWait(r.node, r.key, r.tasks, s.started, s.max_starts, s.period_s, s.next_start_at)
                for r in rows if (s := states.get(r.key)) is not None]  # fmt: skip

    @retried
    def rate_keys(self, after: str | None = None, limit: int = 100) -> list[RateKeyRecord]:
        with self.transaction(write=False) as tx:
            found = rates.rate_states(tx, after=after, limit=limit)
        return [RateKeyRecord(*s) for s in found]

    @retried
    def partition_rows(self, event_id: int, after: str | None = None, limit: int = 100) -> list[PartitionRow]:
        """Up to ``limit`` of the event's partitions after ``after``, in the database's order of
        strings (bytewise on SQLite; PostgreSQL's collation, bytewise under ``C``), each with its
        task of every partitioned node. Every partitioned node has a task in every partition (the
        planner makes them together), so the keys are read from the first one's."""
        if not 1 <= limit <= MAX_PARTITION_ROWS:
            raise UsageError(f"a page holds 1 to {MAX_PARTITION_ROWS} partitions (got limit {limit})")
        with self.transaction(write=False) as tx:
            graph = tx.graph_of(_event_head(tx, event_id).graph_id)
            nodes = [n.name for n in graph.nodes if n.partitioned]
            if not nodes:
                return []
            leading, *_ = nodes
            sql = ("SELECT partition FROM tasks WHERE event_id = ? AND node = ? AND partition > ? "
                   "ORDER BY partition LIMIT ?")  # fmt: skip
            keys = [r.partition for r in read_rows(tx, KeyRow, sql, (event_id, leading, after or "", limit))]
            if not keys:
                return []
            *_, last = keys  # the page is every key in (after, last]
            sql = (f"SELECT {select_list(CellRow)} FROM tasks WHERE event_id = ? AND node IN ({in_list(nodes)}) "
                   "AND partition > ? AND partition <= ?")  # fmt: skip
            cells = read_rows(tx, CellRow, sql, (event_id, *nodes, after or "", last))
        order = {name: i for i, name in enumerate(nodes)}
        tasks: dict[str, dict[str, tuple[int, str]]] = {key: {} for key in keys}
        for c in sorted(cells, key=lambda c: order[c.node]):
            if c.partition in tasks:
                tasks[c.partition][c.node] = (c.id, c.state)
        return [PartitionRow(key, tasks[key]) for key in keys]


def _event_head(tx: Tx, event_id: int) -> EventHead:
    sql = f"SELECT {select_list(EventHead)} FROM events WHERE id = ?"
    head = read_one(tx, EventHead, sql, (event_id,))
    if head is None:
        raise NotFound(f"no event {event_id}")
    return head
