"""Rate limits in the store: what each claim's gate needs of a key, what it records, and the
return of rate-parked tasks.

The rules are :mod:`baton.engine.rates`'; this module reads and writes what they need:

- :func:`declare` (planning): each key's limit and period, the latest declaration winning;
- :func:`held` (claim): locks the candidates' keys' rows (PostgreSQL, ``SKIP LOCKED``: a claim
  never waits holding the rows it picked; a SQLite transaction is the only writer) and says how
  many starts each key has left now. A key whose clock is past this transaction's (a claim that
  read a later time has counted it) is left out, so recorded starts never go back in time;
- :func:`record` (claim): the starts admitted, at this transaction's time, and the end of the
  starts whose window has passed;
- :func:`park` (claim): the candidates refused, out of the queue (``parked = 3``);
- :func:`release` (the controller's :class:`~baton.controller.duties.UnparkRated`): returns
  parked tasks to keys that may start them now, and says when the next of the others may.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from baton.engine.rates import allowance, in_window, next_look_at, next_start_at, to_return
from baton.store.claims import READY_ORDER
from baton.store.tx import Tx, in_list, read_rows

PARKED = 3  # tasks.parked of a task waiting for its rate limit
RELEASE_KEYS = 200  # keys looked at per look
HELD_LOOK_S = 0.05  # a key a claim held (for the milliseconds of its transaction) is looked at again this soon


class RateKey(NamedTuple):
    key: str
    max_starts: int
    period_s: float
    clock_at: float


class Start(NamedTuple):
    key: str
    at: float
    n: int


class KeyCount(NamedTuple):
    key: str
    parked: int
    n: int


class KeyOnly(NamedTuple):
    key: str


def declare(tx: Tx, rates: Mapping[str, tuple[int, float]]) -> None:
    """Write each key's (limit, period) (a new event's plan declares them; the latest wins)."""
    if not rates:
        return
    tx.many(
        "INSERT INTO rate_keys (key, max_starts, period_s) VALUES (?, ?, ?) ON CONFLICT (key) "
        "DO UPDATE SET max_starts = excluded.max_starts, period_s = excluded.period_s",
        [(key, limit, period) for key, (limit, period) in sorted(rates.items())],
    )


def _rows(tx: Tx, keys: Sequence[str], skip_locked: bool) -> list[RateKey]:
    lock = f"{tx.key_lock} SKIP LOCKED" if skip_locked and tx.key_lock else tx.key_lock
    sql = (f"SELECT key, max_starts, period_s, clock_at FROM rate_keys WHERE key IN ({in_list(keys)}) "
           f"ORDER BY key {lock}")  # fmt: skip
    return read_rows(tx, RateKey, sql, keys)


def _starts(tx: Tx, rows: Sequence[RateKey]) -> dict[str, list[tuple[float, int]]]:
    """Each key's recorded starts (those not yet deleted: at most a window's and the passed ones
    the last claim left)."""
    out: dict[str, list[tuple[float, int]]] = defaultdict(list)
    if rows:
        keys = [r.key for r in rows]
        for s in read_rows(tx, Start, f"SELECT key, at, n FROM rate_starts WHERE key IN ({in_list(keys)})", keys):
            out[s.key].append((s.at, s.n))
    return out


class Held(NamedTuple):
    """The rate keys a claim holds: each one's starts left now, and its row."""

    allowances: dict[str, int]
    rows: dict[str, RateKey]


def held(tx: Tx, keys: Sequence[str]) -> Held:
    """Lock the keys' rows (skipping those another claim holds) and count their starts left."""
    rows = [r for r in _rows(tx, keys, skip_locked=True) if r.clock_at <= tx.now]
    starts = _starts(tx, rows)
    left = {r.key: allowance(starts[r.key], r.max_starts, r.period_s, tx.now) for r in rows}
    return Held(left, {r.key: r for r in rows})


def record(tx: Tx, started: Mapping[str, int], rows: Mapping[str, RateKey]) -> None:
    """Record the starts admitted at this transaction's time; forget those whose window passed."""
    keys = sorted(started)
    if not keys:
        return
    tx.many("INSERT INTO rate_starts (key, at, n) VALUES (?, ?, ?) ON CONFLICT (key, at) "
            "DO UPDATE SET n = rate_starts.n + excluded.n", [(k, tx.now, started[k]) for k in keys])  # fmt: skip
    tx.many("DELETE FROM rate_starts WHERE key = ? AND at + ? <= ?", [(k, rows[k].period_s, tx.now) for k in keys])
    tx.many("UPDATE rate_keys SET clock_at = ? WHERE key = ?", [(tx.now, k) for k in keys])


def park(tx: Tx, parked: Mapping[str, list[int]]) -> None:
    """Take the refused candidates out of the queue until their key may start them."""
    for key, ids in sorted(parked.items()):
        tx.q(f"UPDATE tasks SET parked = {PARKED} WHERE id IN ({in_list(ids)}) AND state = 'ready'", ids)
        tx.audit("controller", "task.rate_parked", f"rate limit {key} is spent", key=key, tasks=len(ids))


def _counts(tx: Tx, keys: Sequence[str]) -> dict[str, dict[int, int]]:
    """Each key's ready tasks, by parked (0: in the queue, 3: parked on the rate, 1: on a key)."""
    sql = (f"SELECT rate_key AS key, parked, COUNT(*) AS n FROM tasks WHERE rate_key IN ({in_list(keys)}) "
           "AND state = 'ready' GROUP BY rate_key, parked")  # fmt: skip
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for r in read_rows(tx, KeyCount, sql, keys):
        out[r.key][r.parked] = r.n
    return out


def release(tx: Tx) -> tuple[int, float | None]:
    """Return rate-parked tasks to keys that may start them now, best first (priority, then
    depth, then age), as many as the starts left that the key's queued tasks will not take.
    Returns how many went back, and in how many seconds to look again: when the next of the
    others may start, or soon for keys a claim held (None: nothing left parked that it knows of)."""
    sql = ("SELECT DISTINCT rate_key AS key FROM tasks WHERE rate_key IS NOT NULL AND state = 'ready' "
           f"AND parked = {PARKED}")  # fmt: skip
    keys = sorted(r.key for r in read_rows(tx, KeyOnly, f"{sql} LIMIT ?", (RELEASE_KEYS,)))
    if not keys:
        return 0, None
    rows = _rows(tx, keys, skip_locked=True)
    starts, counts = _starts(tx, rows), _counts(tx, [r.key for r in rows]) if rows else {}
    back, waits = 0, [HELD_LOOK_S] if len(rows) < len(keys) else []
    for r in rows:
        left = allowance(starts[r.key], r.max_starts, r.period_s, tx.now)
        parked, queued = counts[r.key].get(PARKED, 0), counts[r.key].get(0, 0)
        n = to_return(left, queued, parked)
        if n < parked:  # the others may start once the starts the queue now holds have left the window
            starting = min(left, queued + n)
            waits.append(next_look_at(starts[r.key], r.max_starts, r.period_s, tx.now, starting) - tx.now)
        if n:
            back += tx.q(
                "UPDATE tasks SET parked = 0 WHERE id IN (SELECT id FROM tasks WHERE rate_key = ? AND state = 'ready' "
                f"AND parked = {PARKED} ORDER BY {READY_ORDER} LIMIT ?)",
                (r.key, n),
            ).rowcount
    if back:
        tx.made_ready(back)
    return back, min(waits, default=None)


class RateState(NamedTuple):
    """A rate key as the CLI, the API and the UI show it."""

    key: str
    max_starts: int
    period_s: float
    started: int  # starts in the window that ends now
    queued: int
    parked: int
    next_start_at: float | None  # None: a start is allowed now


def rate_states(
    tx: Tx, keys: Sequence[str] | None = None, *, after: str | None = None, limit: int = 1000
) -> list[RateState]:
    """Each key's limit, period, starts in the current window, queued and parked tasks, and
    when its next start is allowed: the given keys, or a page of all keys in order."""
    base = "SELECT key, max_starts, period_s, clock_at FROM rate_keys"
    if keys is None:
        where = "" if after is None else " WHERE key > ?"
        params: Sequence[object] = (limit,) if after is None else (after, limit)
        rows = read_rows(tx, RateKey, f"{base}{where} ORDER BY key LIMIT ?", params)
    elif not keys:
        return []
    else:
        rows = read_rows(tx, RateKey, f"{base} WHERE key IN ({in_list(keys)}) ORDER BY key", list(keys))
    starts, counts = _starts(tx, rows), _counts(tx, [r.key for r in rows]) if rows else {}
    out = []
    for r in rows:
        s = starts[r.key]
        started = sum(n for _, n in in_window(s, r.period_s, tx.now))
        c = counts.get(r.key, {})
        at = next_start_at(s, r.max_starts, r.period_s, tx.now)
        out.append(RateState(r.key, r.max_starts, r.period_s, started, c.get(0, 0), c.get(PARKED, 0),
                             at if at > tx.now else None))  # fmt: skip
    return out
