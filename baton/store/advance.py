"""The controller's rule, executed inside the transaction that records an attempt's end.

When an attempt ends (a worker's report, or an expired lease) this module, in the same
transaction: writes the attempt row (and deletes the attempt's live log), moves the task by
:func:`baton.engine.states.decide`, decrements the wait counters of exactly the tasks that depended on
it (never a rescan), marks what can no longer run as ``upstream_failed``, and settles the event
when its last active task is done. Every decision is written to the audit log with its cause.
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from baton.engine.planner import blocked_by, discovered_keys
from baton.engine.states import Decision, EventState, Outcome, TaskState, decide
from baton.graphs.model import DepMode
from baton.store import limits, live_logs, outbox, plans
from baton.store.records import Report
from baton.store.tx import (
    COUNTED,
    Batch,
    Cursor,
    Tx,
    exists,
    fetch_all,
    fetch_one,
    id_array,
    read_one,
    read_rows,
    select_list,
)

_rng = random.Random()


@dataclass(frozen=True)
class Ended:
    """How an attempt ended (a worker's report, or an expired lease), with its task's row."""

    report: Report
    event_id: int
    graph_id: int
    node: str
    partition: str
    failures: int
    worker_id: str | None
    cancelling: bool = False  # the event has been asked to cancel

    @property
    def task_id(self) -> int:
        return self.report.task_id

    @property
    def attempt(self) -> int:
        return self.report.attempt

    @property
    def outcome(self) -> Outcome:
        return self.report.outcome


_SUCCEEDED = (
    "UPDATE tasks SET state = 'succeeded', result = ?, finished_at = ?, error = NULL, "
    "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'"
)
# The same for a batch, where the database binds arrays (see baton.store.tx): one statement. The
# planner takes a batch for 100 rows, whatever its size, and would rather scan the whole table
# than look each row up: ``t.id = ANY(?)`` makes it walk the key.
_SUCCEEDED_ROWS = Batch(("id", "bigint"), ("attempt", "int"), ("result", "text"), ("finished_at", "float8"))
_SUCCEEDED_ALL = (
    "UPDATE tasks t SET state = 'succeeded', result = u.result, finished_at = u.finished_at, error = NULL, "
    f"worker_id = NULL, lease_expires_at = NULL FROM {_SUCCEEDED_ROWS.source} "
    "WHERE t.id = ANY(?::bigint[]) AND t.id = u.id AND t.attempt = u.attempt AND t.state = 'running'"
)
ATTEMPT_ROWS = Batch(("task_id", "bigint"), ("attempt", "int"), ("worker_id", "text"), ("outcome", "text"),
                     ("started_at", "float8"), ("finished_at", "float8"), ("exit_code", "int"), ("error", "text"),
                     ("stdout", "text"), ("stderr", "text"))  # fmt: skip


Sent = list[tuple[Cursor, Any]]  # statements sent, each with what reading its answer needs


@dataclass
class Releases:
    """The ``same`` releases of dependants, sent, answers not read: each answer row is a
    :class:`ReleasedOf`, and ``causes`` says what released each dependant."""

    cursors: list[Cursor] = field(default_factory=list)
    causes: dict[Dependants, list[str]] = field(default_factory=dict)


@dataclass
class CountedDown:
    """The node counters' updates, sent, answers not read (rows :class:`Remaining`)."""

    cursors: list[Cursor] = field(default_factory=list)
    graphs: dict[tuple[int, str], int] = field(default_factory=dict)  # (event, node) -> graph id


class Released(NamedTuple):
    """A dependant a release reached (``RETURNING id, state``): ready when it waits no more."""

    id: int
    state: str


class ReleasedOf(NamedTuple):
    """A dependant a ``same`` release reached, with its key: ready when it waits no more."""

    id: int
    state: str
    event_id: int
    node: str
    partition: str


class Remaining(NamedTuple):
    event_id: int
    node: str
    remaining: int


class Settled(NamedTuple):
    tasks_active: int
    cancel_requested: int
    state: str


class StateCount(NamedTuple):
    state: str
    n: int


class Dependants(NamedTuple):
    """The tasks of one node and partition of an event that a release decrements."""

    event_id: int
    node: str
    partition: str


class NodeKey(NamedTuple):
    event_id: int
    graph_id: int
    node: str


@dataclass
class Tally:
    """Counter updates owed after attempts ended: each node's remaining count and each event's
    active count. Those rows are shared by every report of the event, so a caller that has more
    to do in the transaction (claiming) applies the tally last, holding their row locks only for
    the commit."""

    succeeded: list[Ended] = field(default_factory=list)
    terminal: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    planned: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # tasks a discovery added
    released: Releases = field(default_factory=lambda: Releases())  # dependants' releases, answers not read
    counters: tuple[CountedDown, list[tuple[int, Cursor]]] | None = None

    def read_released(self, tx: Tx) -> None:
        """Read the answers to the dependants' releases (audit rows for what became ready). A
        caller may send more statements first, so that both travel in one round trip."""
        _read_released(tx, self.released)
        self.released = Releases()

    def send(self, tx: Tx) -> None:
        """Send the counter updates (their answers are read by :meth:`read`)."""
        counted = _send_count_down(tx, self.succeeded)
        for event_id, n in sorted(self.planned.items()):  # before the settle, which must see them
            tx.q("UPDATE events SET tasks_total = tasks_total + ?, tasks_active = tasks_active + ? WHERE id = ?",
                 (n, n, event_id))  # fmt: skip
        self.planned.clear()
        self.counters = (counted, _send_settle(tx, self.terminal))

    def read(self, tx: Tx) -> int:
        """Finish the counter updates; return how many tasks became ready through them."""
        if self.counters is None:
            self.send(tx)
        assert self.counters is not None
        counted, settled = self.counters
        self.counters = None
        released = _read_counted(tx, counted)
        _read_settled(tx, settled)
        return released

    def apply(self, tx: Tx) -> int:
        """Everything still owed, in order; return how many tasks the counters made ready."""
        self.read_released(tx)
        return self.read(tx)


def finish_attempts(tx: Tx, ended: list[Ended], actor: str) -> None:
    """Apply the end of each attempt, counters included."""
    end_attempts(tx, ended, actor).apply(tx)


def end_attempts(tx: Tx, ended: list[Ended], actor: str) -> Tally:
    """Apply the end of each attempt and send the release of its dependants; return what is
    still owed (reading those releases, the counter updates). The caller has checked each
    attempt is the current one and holds its row."""
    tally = Tally()
    if not ended:
        return tally
    keyed = [e.task_id for e in ended if tx.graph_of(e.graph_id).node(e.node).concurrency is not None]
    if keyed:  # their slots come free: as many parked tasks of each key go back to the queue
        # (first: waiting for a key's row, this transaction then holds no row but the reported ones)
        limits.unpark(tx, limits.freed_by(tx, keyed))
    rows = [(e.task_id, e.attempt, e.worker_id, e.outcome.value, *_attempt_columns(e.report)) for e in ended]
    tx.insert("attempts", ATTEMPT_ROWS, rows)
    live_logs.forget(tx, [e.task_id for e in ended])  # the attempt row's output replaces them
    ended, discovered = _discovered(tx, ended)
    succeeded = tally.succeeded = [e for e in ended if e.outcome is Outcome.SUCCEEDED]
    _succeed(tx, succeeded)
    for e in succeeded:
        tx.audit(actor, "task.succeeded", f"attempt {e.attempt} succeeded", e.event_id, e.task_id,
                 node=e.node, partition=e.partition)  # fmt: skip
        tally.terminal[e.event_id] += 1
    for e in succeeded:
        if e.task_id in discovered:
            _plan_partitions(tx, e, discovered[e.task_id], actor, tally)
    failed = []
    for e in ended:
        if e.outcome is Outcome.SUCCEEDED:
            continue
        d = decide(e.outcome, tx.graph_of(e.graph_id).node(e.node).retry, e.failures, e.cancelling, _rng)
        _move(tx, e, d, actor)
        tally.terminal[e.event_id] += d.state.terminal
        if d.state is TaskState.FAILED:
            failed.append(e)
    for event_id, count in block(tx, failed).items():
        tally.terminal[event_id] += count
    tally.released = _send_release_same(tx, succeeded)
    return tally


def _succeed(tx: Tx, succeeded: list[Ended]) -> None:
    """Move the succeeded tasks to their final state, guarded by state and attempt (the fence)."""
    if tx.batches(len(succeeded)):
        rows = [(e.task_id, e.attempt, e.report.result_json, e.report.finished_at) for e in succeeded]
        tx.q(_SUCCEEDED_ALL, (_SUCCEEDED_ROWS.param(rows), id_array(e.task_id for e in succeeded)))
    else:
        tx.many(_SUCCEEDED, [(e.report.result_json, e.report.finished_at, e.task_id, e.attempt) for e in succeeded])


def _discovered(tx: Tx, ended: list[Ended]) -> tuple[list[Ended], dict[int, tuple[str, ...]]]:
    """The keys each succeeded discovery task listed, by task id; a success whose result cannot
    be planned (not a list, a bad key, over the cap) becomes an invalid result, with the cause."""
    keys: dict[int, tuple[str, ...]] = {}
    out = []
    for e in ended:
        graph = tx.graph_of(e.graph_id)
        if e.outcome is Outcome.SUCCEEDED and e.node in graph.discoveries:
            try:
                found, problem = discovered_keys(graph, e.node, e.report.result_json)
            except (ValueError, RecursionError) as exc:
                found, problem = (), f"the result is not JSON: {exc}"
            if problem is None:
                keys[e.task_id] = found
            else:
                error = f"invalid result: {problem}"
                report = dataclasses.replace(e.report, outcome=Outcome.INVALID_RESULT, result_json=None, error=error)
                e = dataclasses.replace(e, report=report)
        out.append(e)
    return out, keys


def _plan_partitions(tx: Tx, e: Ended, keys: tuple[str, ...], actor: str, tally: Tally) -> None:
    """Plan the partitions a discovery listed; a dynamic node left with nothing to run is
    complete, and satisfies its node-level edges downstream."""
    graph = tx.graph_of(e.graph_id)
    planned = plans.plan_partitions(tx, e.event_id, graph, e.node, keys, e.cancelling, actor)
    tally.planned[e.event_id] += planned.tasks
    tally.terminal[e.event_id] += planned.cancelled
    for node in planned.complete:
        tx.audit("controller", "node.succeeded", f"discovery {e.node} listed no new partition", e.event_id, node=node)
        for down, mode in graph.downstream[node]:
            if mode.node_level:
                _release_node(tx, e.event_id, down.name, f"node {node} succeeded")


def _attempt_columns(r: Report) -> tuple[object, ...]:
    return (r.started_at, r.finished_at, r.exit_code, r.error, r.stdout, r.stderr)


def _move(tx: Tx, e: Ended, d: Decision, actor: str) -> None:
    """Move one running task that did not succeed, guarded by state and attempt (the fence)."""
    fence = (e.task_id, e.attempt)
    failures = int(d.counts_as_failure)
    if d.state is TaskState.READY:
        at = tx.now + d.delay_s
        tx.q(
            "UPDATE tasks SET state = 'ready', failures = failures + ?, available_at = ?, ready_at = ?, "
            "error = ?, worker_id = NULL, lease_expires_at = NULL, cancel_requested = 0 "
            "WHERE id = ? AND attempt = ? AND state = 'running'",
            (failures, at, at, e.report.error, *fence),
        )
        tx.changed()  # claimable again (after its backoff, announced by the controller's sweep)
    else:
        tx.q(
            "UPDATE tasks SET state = ?, failures = failures + ?, finished_at = ?, error = ?, "
            "worker_id = NULL, lease_expires_at = NULL WHERE id = ? AND attempt = ? AND state = 'running'",
            (d.state.value, failures, e.report.finished_at, e.report.error, *fence),
        )
    if d.state.value in COUNTED:  # a retry (running -> ready) moves no counted state
        tx.moved(e.event_id, e.node, "running", d.state.value)
    action = "retry" if d.state is TaskState.READY and failures else d.state.value
    cause = f"attempt {e.attempt} {e.outcome}" + (f": {d.reason}" if d.reason else "")
    tx.audit(actor, f"task.{action}", cause, e.event_id, e.task_id, node=e.node, partition=e.partition)


# Satisfy ``?`` edges of a pending task; it becomes ready when none are left.
_RELEASE = (
    "UPDATE tasks SET pending = pending - ?, "
    "state = CASE WHEN pending = ? THEN 'ready' ELSE state END, "
    "ready_at = CASE WHEN pending = ? THEN ? ELSE ready_at END, "
    "available_at = CASE WHEN pending = ? THEN ? ELSE available_at END "
    "WHERE event_id = ? AND node = ? AND state = 'pending'"
)
_RELEASED = f" RETURNING {select_list(Released)}"
# The same for a batch of (event, node, partition, count), where the database binds arrays: one
# statement. ``l`` looks each row up by its key and locks it, in the batch's order (the order
# the statements one by one would lock them); ``OFFSET 0`` keeps that a lookup per row, since the
# planner takes the batch for 100 rows and would rather scan the table. The update then finds
# the locked rows by their ids.
_RELEASE_ROWS = Batch(("event_id", "bigint"), ("node", "text"), ("partition", "text"), ("n", "int"))
_RELEASE_ALL = (
    f"WITH l AS (SELECT x.id, u.n FROM {_RELEASE_ROWS.source} CROSS JOIN LATERAL (SELECT id FROM tasks "
    "WHERE event_id = u.event_id AND node = u.node AND partition = u.partition AND state = 'pending' "
    "OFFSET 0 FOR UPDATE) x) "
    "UPDATE tasks t SET pending = t.pending - l.n, "
    "state = CASE WHEN t.pending = l.n THEN 'ready' ELSE t.state END, "
    "ready_at = CASE WHEN t.pending = l.n THEN ? ELSE t.ready_at END, "
    "available_at = CASE WHEN t.pending = l.n THEN ? ELSE t.available_at END "
    "FROM l WHERE t.id = ANY(ARRAY(SELECT id FROM l)) AND t.id = l.id AND t.state = 'pending' "
    f"RETURNING {select_list(ReleasedOf, 't.')}"
)


def _release_params(tx: Tx, n: int) -> tuple[object, ...]:
    return (n, n, n, tx.now, n, tx.now)


def _send_release_same(tx: Tx, succeeded: list[Ended]) -> Releases:
    """Decrement each dependant's wait counter by the number of its ``same`` edges satisfied
    here: a statement per dependant (or one for all where the database binds arrays), all sent
    before any answer is read."""
    causes: dict[Dependants, list[str]] = defaultdict(list)
    for e in succeeded:
        for down, mode in tx.graph_of(e.graph_id).downstream[e.node]:
            if mode is DepMode.SAME:
                causes[Dependants(e.event_id, down.name, e.partition)].append(f"{e.node}[{e.partition}] succeeded")
    # one order for every transaction (event, partition, node): concurrent reports lock alike
    keys = sorted(causes, key=lambda k: (k.event_id, k.partition, k.node))
    sent = Releases(causes=causes)
    if tx.batches(len(keys)):
        rows = [(*k, len(causes[k])) for k in keys]
        sent.cursors.append(tx.q(_RELEASE_ALL, (_RELEASE_ROWS.param(rows), tx.now, tx.now)))
        return sent
    sql = _RELEASE + " AND partition = ?" + f" RETURNING {select_list(ReleasedOf)}"
    sent.cursors += [tx.q(sql, (*_release_params(tx, len(causes[k])), *k)) for k in keys]
    return sent


def _read_released(tx: Tx, sent: Releases) -> None:
    rows = [r for cursor in sent.cursors for r in fetch_all(cursor, ReleasedOf)]
    for r in sorted(rows, key=lambda r: (r.event_id, r.partition, r.node)):
        if r.state == "ready":
            key = Dependants(r.event_id, r.node, r.partition)
            tx.made_ready()
            tx.moved(r.event_id, r.node, "pending", "ready")
            tx.audit("controller", "task.ready", ", ".join(sent.causes[key]), r.event_id, r.id, node=r.node,
                     partition=r.partition)  # fmt: skip


def _send_count_down(tx: Tx, succeeded: list[Ended]) -> CountedDown:
    """Subtract the successes from each node's remaining count (in one order: these rows are
    shared by every report of the event)."""
    per_node: dict[NodeKey, int] = defaultdict(int)
    for e in succeeded:
        per_node[NodeKey(e.event_id, e.graph_id, e.node)] += 1
    keys = sorted(per_node, key=lambda k: (k.event_id, k.node))
    sent = CountedDown(graphs={(k.event_id, k.node): k.graph_id for k in keys})
    if tx.batches(len(keys)):
        rows = [(k.event_id, k.node, per_node[k]) for k in keys]
        sent.cursors.append(tx.q(_COUNT_DOWN_ALL, (_COUNT_DOWN_ROWS.param(rows),)))
    else:
        sent.cursors += [tx.q(_COUNT_DOWN, (per_node[k], k.event_id, k.node)) for k in keys]
    return sent


_COUNT_DOWN = (
    "UPDATE event_nodes SET remaining = remaining - ? WHERE event_id = ? AND node = ? "
    f"RETURNING {select_list(Remaining)}"
)
# The same for a batch, where the database binds arrays: the rows are locked one by one in the
# batch's order first, as in _RELEASE_ALL.
_COUNT_DOWN_ROWS = Batch(("event_id", "bigint"), ("node", "text"), ("n", "int"))
_COUNT_DOWN_ALL = (
    f"WITH l AS (SELECT u.event_id, u.node, u.n FROM {_COUNT_DOWN_ROWS.source} CROSS JOIN LATERAL "
    "(SELECT 1 FROM event_nodes WHERE event_id = u.event_id AND node = u.node OFFSET 0 FOR UPDATE) x) "
    "UPDATE event_nodes c SET remaining = c.remaining - l.n FROM l "
    "WHERE c.event_id = ANY(ARRAY(SELECT event_id FROM l)) AND c.node = ANY(ARRAY(SELECT node FROM l)) "
    f"AND c.event_id = l.event_id AND c.node = l.node RETURNING {select_list(Remaining, 'c.')}"
)


def _read_counted(tx: Tx, sent: CountedDown) -> int:
    """A node whose last task succeeded satisfies its node-level edges (``all``, ``broadcast``);
    returns how many tasks became ready."""
    ready = 0
    rows = sorted(r for cursor in sent.cursors for r in fetch_all(cursor, Remaining))
    for event_id, node, remaining in rows:
        if remaining != 0:
            continue
        graph = tx.graph_of(sent.graphs[(event_id, node)])
        discovery = graph.node(node).partitions_from
        if discovery is not None and not _succeeded(tx, event_id, discovery):
            continue  # its discovery runs again (a re-run) and may list more: it completes after
        tx.audit("controller", "node.succeeded", "all tasks succeeded", event_id, node=node)
        for down, mode in graph.downstream[node]:
            if mode.node_level:
                ready += _release_node(tx, event_id, down.name, f"node {node} succeeded")
    return ready


def _succeeded(tx: Tx, event_id: int, node: str) -> bool:
    """Whether an unpartitioned node's task has succeeded."""
    sql = "SELECT 1 FROM tasks WHERE event_id = ? AND node = ? AND partition = '' AND state = 'succeeded'"
    return exists(tx, sql, (event_id, node))


def _release_node(tx: Tx, event_id: int, node: str, cause: str) -> int:
    """Satisfy one node-level edge of every task of the node; return how many became ready."""
    rows = read_rows(tx, Released, _RELEASE + _RELEASED, (*_release_params(tx, 1), event_id, node))
    ready = [r.id for r in rows if r.state == "ready"]
    if ready:
        tx.made_ready(len(ready))
        tx.moved(event_id, node, "pending", "ready", len(ready))
        tx.audit("controller", "task.ready", cause, event_id, node=node, tasks=len(ready))
    return len(ready)


def block(tx: Tx, failed: Iterable[Ended]) -> dict[int, int]:
    """Mark everything downstream of failed tasks upstream_failed; return counts per event."""
    counts: dict[int, int] = defaultdict(int)
    for e in failed:
        graph = tx.graph_of(e.graph_id)
        for scope in blocked_by(graph, e.node, e.partition):
            sql = (
                "UPDATE tasks SET state = 'upstream_failed', finished_at = ?, error = ? "
                "WHERE event_id = ? AND node = ? AND state = 'pending'"
            )
            params: tuple[object, ...] = (tx.now, f"upstream {e.node}[{e.partition}] failed", e.event_id, scope.node)
            if scope.partition is not None:
                sql += " AND partition = ?"
                params += (scope.partition,)
            n = tx.q(sql, params).rowcount
            if n:
                tx.moved(e.event_id, scope.node, "pending", "upstream_failed", n)
                counts[e.event_id] += n
                cause = f"{e.node}[{e.partition or '-'}] failed"
                tx.audit(
                    "controller",
                    "task.upstream_failed",
                    cause,
                    e.event_id,
                    node=scope.node,
                    partition=scope.partition,
                    tasks=n,
                )
    return counts


def settle(tx: Tx, terminal: dict[int, int]) -> None:
    """Count tasks that reached a final state; finish each event whose last one did."""
    _read_settled(tx, _send_settle(tx, terminal))


def _send_settle(tx: Tx, terminal: dict[int, int]) -> list[tuple[int, Cursor]]:
    sent = []
    for event_id, count in sorted(terminal.items()):
        if count:
            sent.append((event_id, tx.q(_SETTLE, (count, event_id))))
    return sent


_SETTLE = f"UPDATE events SET tasks_active = tasks_active - ? WHERE id = ? RETURNING {select_list(Settled)}"


def _read_settled(tx: Tx, sent: list[tuple[int, Cursor]]) -> None:
    for event_id, cursor in sent:
        row = fetch_one(cursor, Settled)
        if row is not None and row.tasks_active == 0 and row.state == EventState.RUNNING:
            finish_event(tx, event_id, bool(row.cancel_requested))


def finish_event(tx: Tx, event_id: int, cancel_requested: bool) -> EventState:
    sql = "SELECT state, COUNT(*) AS n FROM tasks WHERE event_id = ? GROUP BY state"
    counts = {r.state: r.n for r in read_rows(tx, StateCount, sql, (event_id,))}
    if counts.get("failed") or counts.get("upstream_failed"):
        final = EventState.FAILED
    elif counts.get("cancelled") or cancel_requested:
        final = EventState.CANCELLED
    else:
        final = EventState.SUCCEEDED
    ended = read_one(
        tx,
        outbox.Late,
        "UPDATE events SET state = ?, finished_at = ? WHERE id = ? AND state = 'running' "
        "RETURNING deadline_at, missed_at",
        (final.value, tx.now, event_id),
    )
    tx.audit("controller", f"event.{final.value}", "no active tasks left", event_id, tasks=counts)
    outbox.notice(tx, outbox.Kind.ended(final.value), event_id)
    if ended is not None:
        outbox.missed_at_end(tx, event_id, ended.deadline_at, ended.missed_at)
    tx.changed()
    return final
