"""Held tasks: ready tasks a worker holds beyond its free slots, so that a slot that frees starts
the next task at once instead of waiting a claim's round trip (``baton worker --hold``).

A held task is **not running**: it stays ``ready`` with ``parked = HELD`` (out of the claims'
queue), ``held_by`` its worker, and a hold that ends at ``hold_expires_at`` unless the worker's
heartbeats renew it. Holding uses no attempt and starts no timeout. The worker starts a held task
on its own and says so in its next claim (``ClaimRequest.starts``); the store then moves it to
running under a lease, with its next attempt, in the same transaction that records the reports.

What keeps this as safe as a claim:

- **the same queue and filters**: holds are taken from the head of the ready queue, in its
  order, for the worker's labels and capacity; tasks under a concurrency key or a rate limit are
  never held (a start the store has not admitted would pass their limits), nor a task whose
  holds were lost :data:`MAX_HOLD_LOSSES` times (a task that kills its worker before the worker
  says it started would otherwise never use an attempt);
- **fenced starts**: a start is recorded only while the worker still holds that task with that
  attempt; otherwise it is refused and the worker stops the attempt;
- **no copy without a fence**: a hold the store has let lapse may be held by another worker; the
  worker never starts a hold after its own deadline, which ends well before the store's (see
  ``baton.worker``), so at most a worker frozen past it starts one late, and that start is refused;
- **returned without an attempt**: a hold comes back to the queue when its worker gives it back
  (recalled, shutting down), leaves, or stops renewing it (:func:`expire`, the controller's sweep);
- **recalls**: the store asks a hold back (``hold_recall``) for a pause, for a higher priority
  waiting behind it (:func:`recall_below_head`), or for a worker with idle slots and nothing to
  take (:func:`recall_for`); the worker gives back those it has not started, at its next claim
  or heartbeat. Until then the hold is the worker's: a start still wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from baton.store.claims import READY_ORDER, Candidate, Taken
from baton.store.pauses import COVERED_TASK, HELD, PAUSED
from baton.store.records import STOP_HOLD_LOST, STOP_HOLD_WANTED, STOP_RECALLED, StopOrder
from baton.store.tx import Cursor, Tx, fetch_all, in_list, read_rows, scalar, select_list

MAX_HOLD_LOSSES = 2  # a task whose holds ran out this often is only claimed to run

# tasks.hold_recall: why the store asks a hold back (0: it does not)
RECALL = 1  # a pause, or a higher priority waiting: give it back and hold again from the queue's head
RECALL_FOR_IDLE = 2  # a worker with idle slots: give it back and hold no more for now
# What a hold's pick adds to the claim's (baton.store.claims.send_pick): no limit, no lost holds.
HOLDABLE = f"AND limit_key IS NULL AND rate_key IS NULL AND hold_losses < {MAX_HOLD_LOSSES} "
# Back to the queue, or to its pause: what a released hold's ``parked`` becomes.
_RETURNED = f"CASE WHEN {COVERED_TASK} THEN {PAUSED} ELSE 0 END"
_UNHOLD = "held_by = NULL, hold_expires_at = NULL, hold_recall = 0, claim_id = NULL"


def hold(tx: Tx, worker_id: str, chosen: Sequence[Candidate], hold_s: float, claim_id: str | None) -> float:
    """Hold the chosen ready tasks (picked and locked by the caller) for ``worker_id``; return the
    hold's end."""
    expires = tx.now + hold_s
    ids = [c.task_id for c in chosen]
    tx.q(
        f"UPDATE tasks SET parked = {HELD}, held_by = ?, held_at = ?, hold_expires_at = ?, claim_id = ? "
        f"WHERE id IN ({in_list(ids)})",
        (worker_id, tx.now, expires, claim_id, *ids),
    )
    tx.took(len(ids))  # out of the queue, as a claim takes them
    return expires


class StartedRow(NamedTuple):
    id: int
    attempt: int
    held_at: float | None


class AttemptRow(NamedTuple):
    id: int
    attempt: int


def start(
    tx: Tx, worker_id: str, starts: Sequence[tuple[int, int]], lease_s: float
) -> tuple[list[tuple[int, int]], list[float]]:
    """Record that ``worker_id`` started these held tasks, as (task_id, attempt): each moves to
    running with that attempt under a lease, if the worker still holds it. Returns the starts
    refused (the hold was lost) and how long each recorded one was held. A start recorded
    before (the same claim sent again) is neither."""
    if not starts:
        return [], []
    pairs = sorted(set(starts))
    values = ", ".join("(?, ?)" for _ in pairs)
    flat = [v for task_id, attempt in pairs for v in (task_id, attempt - 1)]
    rows = read_rows(
        tx,
        StartedRow,
        "UPDATE tasks SET state = 'running', attempt = attempt + 1, worker_id = ?, lease_expires_at = ?, "
        f"started_at = ?, cancel_requested = 0, parked = CASE WHEN hold_recall <> 0 THEN {_RETURNED} ELSE 0 END, "
        f"held_by = NULL, hold_expires_at = NULL, hold_recall = 0 WHERE parked = {HELD} AND held_by = ? "
        f"AND state = 'ready' AND (id, attempt) IN (VALUES {values}) RETURNING {select_list(StartedRow)}",
        (worker_id, tx.now + lease_s, tx.now, worker_id, *flat),
    )
    started = {(r.id, r.attempt) for r in rows}
    held_s = [max(0.0, tx.now - r.held_at) for r in rows if r.held_at is not None]  # held_at stays: when last held
    left = [p for p in pairs if p not in started]
    if not left:
        return [], held_s
    ids = sorted({task_id for task_id, _ in left})
    again = read_rows(
        tx,
        AttemptRow,
        f"SELECT id, attempt FROM tasks WHERE id IN ({in_list(ids)}) AND state = 'running' AND worker_id = ?",
        (*ids, worker_id),
    )
    recorded = {(r.id, r.attempt) for r in again}
    return [p for p in left if p not in recorded], held_s


class HeldRow(NamedTuple):
    id: int
    held_by: str


def release(tx: Tx, worker_id: str, task_ids: Iterable[int], lost: bool = False) -> int:
    """Give ``worker_id``'s holds of these tasks back to the queue (or to their pause); ``lost``:
    the worker stopped renewing them. Returns how many went back; others are not held by it."""
    ids = sorted(set(task_ids))
    if not ids:
        return 0
    rows = read_rows(
        tx,
        ParkedRow,
        f"UPDATE tasks SET parked = {_RETURNED}, hold_losses = hold_losses + ?, {_UNHOLD} "
        f"WHERE id IN ({in_list(ids)}) AND parked = {HELD} AND held_by = ? RETURNING parked",
        (1 if lost else 0, *ids, worker_id),
    )
    queued = sum(1 for r in rows if r.parked == 0)
    if queued:
        tx.made_ready(queued)
    return len(rows)


class ParkedRow(NamedTuple):
    parked: int


def expire(tx: Tx, limit: int, lock: str = "") -> int:
    """Return to the queue up to ``limit`` holds whose time ran out (their worker stopped
    renewing them: it died, froze or lost the store); each counts as a lost hold."""
    rows = read_rows(
        tx,
        HeldRow,
        f"SELECT t.id, t.held_by FROM tasks t WHERE t.parked = {HELD} AND t.hold_expires_at < ? "
        f"ORDER BY t.hold_expires_at LIMIT ? {lock}",
        (tx.now, limit),
    )
    by_worker: dict[str, list[int]] = {}
    for r in rows:
        by_worker.setdefault(r.held_by, []).append(r.id)
    for worker_id, ids in by_worker.items():
        release(tx, worker_id, ids, lost=True)
        tx.audit("controller", "hold.expired", f"worker_lost: hold of worker {worker_id} expired",
                 tasks=ids[:100], count=len(ids))  # fmt: skip
    return len(rows)


class IdOnly(NamedTuple):
    id: int


class Recalled(NamedTuple):
    id: int
    hold_recall: int


# The tasks a worker holds that the store asks back (sent early in a claim, read at its end).
RECALLED = f"SELECT id, hold_recall FROM tasks WHERE held_by = ? AND parked = {HELD} AND hold_recall <> 0 ORDER BY id"


def read_recalled(cursor: Cursor | None) -> tuple[list[int], bool]:
    """The tasks a query of :data:`RECALLED` answered (none if it was not sent), and whether any
    was asked back for an idle worker."""
    rows = [] if cursor is None else fetch_all(cursor, Recalled)
    return [r.id for r in rows], any(r.hold_recall == RECALL_FOR_IDLE for r in rows)


def recall_for(tx: Tx, worker_id: str, req_ids: Sequence[int], count: int) -> int:
    """Ask back up to ``count`` tasks other workers hold that ``worker_id`` could run (their
    requirement is one of ``req_ids``): it has idle slots and the queue had nothing for them.
    The holds last in the queue's order go first."""
    if count <= 0 or not req_ids:
        return 0
    ids = sorted(req_ids)
    asked = tx.q(
        f"UPDATE tasks SET hold_recall = {RECALL_FOR_IDLE} WHERE id IN (SELECT id FROM tasks "
        f"WHERE parked = {HELD} AND hold_recall = 0 AND held_by <> ? AND req_id IN ({in_list(ids)}) "
        "ORDER BY priority, held_at DESC LIMIT ?)",
        (worker_id, *ids, count),
    ).rowcount
    return _recalled(tx, asked, f"worker {worker_id} has idle slots")


def _recalled(tx: Tx, asked: int, why: str) -> int:
    if asked > 0:
        tx.changed()  # the holders' long polls end: their next claim gives the holds back
        tx.audit("store", "hold.recalled", why, count=asked)
    return asked


def recall_below_head(tx: Tx, limit: int) -> int:
    """Ask back held tasks of a lower priority than tasks waiting in the queue: as many as wait
    above the lowest held priority (at most ``limit``), the lowest first."""
    lowest = scalar(tx, f"SELECT MIN(priority) FROM tasks WHERE parked = {HELD} AND hold_recall = 0")
    if lowest is None:
        return 0
    above = scalar(
        tx,
        "SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE state = 'ready' AND parked = 0 AND priority > ? "
        f"ORDER BY {READY_ORDER} LIMIT ?) AS waiting",
        (lowest, limit),
    )
    if not above:
        return 0
    asked = tx.q(
        f"UPDATE tasks SET hold_recall = {RECALL} WHERE id IN (SELECT id FROM tasks "
        f"WHERE parked = {HELD} AND hold_recall = 0 AND priority < ? ORDER BY priority, held_at DESC LIMIT ?)",
        (_head_priority(tx), above),
    ).rowcount
    return _recalled(tx, asked, "a higher priority waits in the queue")


def _head_priority(tx: Tx) -> int:
    head = scalar(tx, f"SELECT priority FROM tasks WHERE state = 'ready' AND parked = 0 ORDER BY {READY_ORDER} LIMIT 1")
    return int(head or 0)


class HoldRow(NamedTuple):
    id: int
    attempt: int
    held_at: float
    hold_recall: int


def beat(tx: Tx, worker_id: str, listed: Iterable[tuple[int, int]], hold_s: float) -> list[StopOrder]:
    """A heartbeat's part for held tasks: renew the holds the worker lists (as (task_id, attempt
    it will be)), give back those it does not list and were taken over ``hold_s / 2`` ago (the
    claim's answer was lost), and say which listed ones to drop: recalled, or no longer held."""
    rows = read_rows(
        tx,
        HoldRow,
        f"SELECT {select_list(HoldRow)} FROM tasks WHERE held_by = ? AND parked = {HELD} ORDER BY id",
        (worker_id,),
    )
    known = set(listed)
    held = {(r.id, r.attempt + 1): r for r in rows}
    lost_reply = [r.id for pair, r in held.items() if pair not in known and r.held_at < tx.now - hold_s / 2]
    release(tx, worker_id, lost_reply)
    if len(lost_reply) < len(rows):
        tx.q(
            f"UPDATE tasks SET hold_expires_at = ? WHERE held_by = ? AND parked = {HELD}",
            (tx.now + hold_s, worker_id),
        )
    stops = [StopOrder(t, a, STOP_HOLD_LOST) for t, a in sorted(known) if (t, a) not in held]
    stops += [StopOrder(t, a, STOP_HOLD_WANTED if r.hold_recall == RECALL_FOR_IDLE else STOP_RECALLED)
              for (t, a), r in held.items() if (t, a) in known and r.hold_recall]  # fmt: skip
    return stops


def release_all(tx: Tx, worker_id: str) -> int:
    """Give back every hold of a worker that leaves."""
    sql = f"SELECT id FROM tasks WHERE held_by = ? AND parked = {HELD}"
    return release(tx, worker_id, [r.id for r in read_rows(tx, IdOnly, sql, (worker_id,))])


def held_for_claim(tx: Tx, worker_id: str, claim_id: str) -> tuple[list[Candidate], float]:
    """What an earlier claim request with this id holds still (its answer was lost), as the
    candidates they were, with the hold's end."""
    rows = read_rows(
        tx,
        Taken,
        f"SELECT {select_list(Taken, task_id='id', lease_expires_at='hold_expires_at')} FROM tasks t "
        f"WHERE held_by = ? AND parked = {HELD} AND claim_id = ? ORDER BY id",
        (worker_id, claim_id),
    )
    return [Candidate(*r[:8]) for r in rows], max((r.lease_expires_at for r in rows), default=tx.now)


def count(tx: Tx) -> int:
    """Tasks held now, by every worker."""
    return int(scalar(tx, f"SELECT COUNT(*) FROM tasks WHERE parked = {HELD}") or 0)
