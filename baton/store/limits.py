"""Concurrency keys in the store: each claim's gate, and the return of parked tasks.

The decisions are :mod:`baton.engine.limits`'; this module reads what they need and writes what
they decide, inside the transactions that claim and that end attempts:

- :func:`gate` (claim): locks the rows of the candidates' keys in ``limit_keys`` (PostgreSQL; a
  SQLite transaction is the only writer anyway), counts each key's running tasks, and parks the
  candidates :func:`~baton.engine.limits.admit` refuses;
- :func:`unpark` (the end of an attempt that held a key): returns as many of the key's parked
  tasks to the queue as slots came free, under the same row lock, so a claim that parked a task
  while the slot was freeing cannot leave it parked with the slot free;
- :func:`repair` (the controller's sweep): returns parked tasks to keys that have free slots
  nobody is coming for (a task returned to the queue and cancelled before it was claimed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from baton.engine.limits import admit, to_unpark
from baton.store import rates
from baton.store.claims import READY_ORDER, Candidate
from baton.store.tx import Tx, in_list, read_rows

REPAIR_KEYS = 200  # keys looked at per sweep


class KeyLimit(NamedTuple):
    key: str
    max_running: int


class KeyOnly(NamedTuple):
    key: str


class KeyCount(NamedTuple):
    key: str
    n: int


def declare(tx: Tx, limits: Mapping[str, int]) -> None:
    """Write each key's limit (a new event's plan declares them; the latest declaration wins)."""
    tx.many(
        "INSERT INTO limit_keys (key, max_running) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET max_running = excluded.max_running",
        sorted(limits.items()),
    )


def _locked_limits(tx: Tx, keys: Sequence[str], skip_locked: bool = False) -> dict[str, int]:
    """The keys' limits, their rows locked until the commit (``Tx.key_lock``; a SQLite
    transaction needs none), in one order for every transaction. ``skip_locked``: leave out the
    keys another transaction holds, rather than wait for them."""
    lock = f"{tx.key_lock} SKIP LOCKED" if skip_locked and tx.key_lock else tx.key_lock
    rows = read_rows(tx, KeyLimit, f"SELECT key, max_running FROM limit_keys WHERE key IN ({in_list(keys)}) "
                                   f"ORDER BY key {lock}", keys)  # fmt: skip
    return {r.key: r.max_running for r in rows}


def _lock(tx: Tx, keys: Sequence[str]) -> None:
    """Lock the keys' rows until the commit, where the database locks rows (a SQLite transaction
    is the only writer: nothing to read)."""
    if tx.key_lock:
        _locked_limits(tx, keys)


def _running(tx: Tx, keys: Sequence[str]) -> dict[str, int]:
    sql = (f"SELECT limit_key AS key, COUNT(*) AS n FROM tasks WHERE limit_key IN ({in_list(keys)}) "
           "AND state = 'running' GROUP BY limit_key")  # fmt: skip
    return {r.key: r.n for r in read_rows(tx, KeyCount, sql, keys)}


def gate(tx: Tx, chosen: list[Candidate]) -> tuple[list[Candidate], int]:
    """The candidates that may start now, in order, and how many others were parked on their
    concurrency key or their rate limit (whose starts the admitted ones are recorded against).

    A claim does not wait for a key another transaction holds (it would wait holding the rows
    it picked, while a report waiting for the key may hold others: a deadlock): its candidates
    with such a key stay in the queue, neither started nor parked, for the next claim."""
    if all(c.limit_key is None and c.rate_key is None for c in chosen):
        return chosen, 0
    keys = sorted({c.limit_key for c in chosen if c.limit_key is not None})
    rate_keys = sorted({c.rate_key for c in chosen if c.rate_key is not None})
    held = _locked_limits(tx, keys, skip_locked=True) if keys else {}
    rated = rates.held(tx, rate_keys) if rate_keys else rates.Held({}, {})
    later = [c for c in chosen if (c.limit_key is not None and c.limit_key not in held)
             or (c.rate_key is not None and c.rate_key not in rated.rows)]  # fmt: skip
    if later:
        tx.made_ready(len(later))  # picked and left: others may take them after the commit
        gone = {c.task_id for c in later}
        chosen = [c for c in chosen if c.task_id not in gone]
    keys = sorted(held)
    decided = admit([(c.task_id, c.limit_key) for c in chosen], held, _running(tx, keys) if keys else {},
                    rated.allowances, {c.task_id: c.rate_key for c in chosen if c.rate_key is not None})  # fmt: skip
    for key, ids in sorted(decided.parked.items()):
        tx.q(f"UPDATE tasks SET parked = 1 WHERE id IN ({in_list(ids)}) AND state = 'ready'", ids)
        tx.audit("controller", "task.parked", f"concurrency key {key} is full", key=key, tasks=len(ids))
    rates.park(tx, decided.rate_parked)
    rates.record(tx, decided.started, rated.rows)
    admitted = set(decided.admitted)
    parked = sum(len(ids) for ids in decided.parked.values()) + sum(len(ids) for ids in decided.rate_parked.values())
    return [c for c in chosen if c.task_id in admitted], parked


def unpark(tx: Tx, freed: Mapping[str, int], locked: bool = False) -> int:
    """Return up to ``freed[key]`` parked tasks of each key to the queue, best first; return
    how many went back (``locked``: the caller holds the keys' rows already)."""
    if not freed:
        return 0
    keys = sorted(freed)
    if not locked:
        _lock(tx, keys)  # waits for a claim parking on these keys to commit
    back = 0
    for key in keys:
        back += tx.q(
            "UPDATE tasks SET parked = 0 WHERE id IN (SELECT id FROM tasks WHERE limit_key = ? AND state = 'ready' "
            f"AND parked = 1 ORDER BY {READY_ORDER} LIMIT ?)",
            (key, freed[key]),
        ).rowcount
    if back:
        tx.made_ready(back)
    return back


def freed_by(tx: Tx, task_ids: Iterable[int]) -> Counter[str]:
    """The keys the given tasks held (they are ending their attempts), with how many each."""
    ids = sorted(task_ids)
    if not ids:
        return Counter()
    sql = (f"SELECT limit_key AS key, COUNT(*) AS n FROM tasks WHERE id IN ({in_list(ids)}) "
           "AND limit_key IS NOT NULL GROUP BY limit_key")  # fmt: skip
    return Counter({r.key: r.n for r in read_rows(tx, KeyCount, sql, ids)})


class KeyState(NamedTuple):
    key: str
    max_running: int
    running: int
    ready: int
    parked: int


_KEY_STATES = (
    "SELECT k.key, k.max_running, "
    "(SELECT COUNT(*) FROM tasks t WHERE t.limit_key = k.key AND t.state = 'running') AS running, "
    "(SELECT COUNT(*) FROM tasks t WHERE t.limit_key = k.key AND t.state = 'ready' AND t.parked = 0) AS ready, "
    "(SELECT COUNT(*) FROM tasks t WHERE t.limit_key = k.key AND t.state = 'ready' AND t.parked = 1) AS parked "
    "FROM limit_keys k"
)


def key_states(
    tx: Tx, keys: Sequence[str] | None = None, *, after: str | None = None, limit: int = 1000
) -> list[KeyState]:
    """Each key's limit and its running, ready and parked tasks: the given keys, or a page of
    all keys in order (those after ``after``)."""
    if keys is None:
        where = "" if after is None else "WHERE k.key > ? "
        params = (limit,) if after is None else (after, limit)
        return read_rows(tx, KeyState, f"{_KEY_STATES} {where}ORDER BY k.key LIMIT ?", params)
    if not keys:
        return []
    return read_rows(tx, KeyState, f"{_KEY_STATES} WHERE k.key IN ({in_list(keys)}) ORDER BY k.key", list(keys))


def repair(tx: Tx) -> int:
    """Return parked tasks to keys with slots no running or queued task will take; how many."""
    sql = "SELECT DISTINCT limit_key AS key FROM tasks WHERE limit_key IS NOT NULL AND state = 'ready' AND parked = 1"
    keys = sorted(r.key for r in read_rows(tx, KeyOnly, f"{sql} LIMIT ?", (REPAIR_KEYS,)))
    if not keys:
        return 0
    _lock(tx, keys)
    owed = {s.key: n for s in key_states(tx, keys) if (n := to_unpark(s.max_running, s.running, s.ready, s.parked))}
    return unpark(tx, owed, locked=True) if owed else 0
