"""Rate limits: how many tasks of a key may start now, and when the next may, as pure functions.

A node may declare ``rate_limit: {key: TEMPLATE, limit: N, period_s: S}``. Each of its tasks gets
the key rendered like a concurrency key (:func:`baton.engine.limits.render_key`) when its event is
planned. The guarantee is a **sliding window**: for every key and every interval ``[a, a + S)``
of the store's clock, at most ``N`` tasks with the key start in it, whatever the number of
workers, servers and claims. (A token bucket of burst ``N`` would let ``2N`` through in one
window: a full bucket spent at its end, then refilled and spent again.)

The store keeps, per key, the starts whose window has not passed (``at + S > now``) and serializes
the claims on one key (:mod:`baton.store.rates`). A claim at ``now`` may start as many tasks as
:func:`allowance` says, and its starts are recorded at ``now``; the store never records a start
earlier than one it already holds for the key, so every window's starts are counted by the last
claim that added to it. Proof in one line: let ``t`` be the latest start in ``[a, a + S)``; its
claim counted every earlier start ``u`` of that window (``u >= a > t - S``, so ``u + S > t``) and
admitted ``t`` only while fewer than ``N`` were counted.

A task the rate refuses is parked (``parked = 3``) out of the claim's queue, holding no
concurrency slot, and goes back when :func:`next_start_at` has come (the controller's
UnparkRated duty).
"""

from __future__ import annotations

from collections.abc import Sequence

Starts = Sequence[tuple[float, int]]
"""A key's recorded starts: (when, how many tasks started then)."""


def in_window(starts: Starts, period_s: float, now: float) -> list[tuple[float, int]]:
    """The starts whose window has not passed at ``now`` (``at + period_s > now``), oldest first."""
    return sorted((at, n) for at, n in starts if at + period_s > now)


def allowance(starts: Starts, limit: int, period_s: float, now: float) -> int:
    """How many more tasks of the key may start at ``now``."""
    return max(0, limit - sum(n for _, n in in_window(starts, period_s, now)))


def next_start_at(starts: Starts, limit: int, period_s: float, now: float) -> float:
    """When the next task of the key may start: ``now`` if one may now, otherwise when the
    ``limit``-th most recent start leaves the window."""
    seen = 0
    for at, n in reversed(in_window(starts, period_s, now)):
        seen += n
        if seen >= limit:
            return at + period_s
    return now


def next_look_at(starts: Starts, limit: int, period_s: float, now: float, starting: int) -> float:
    """When a task still parked on the key may start, if ``starting`` of the key's tasks (those
    in the queue and those just returned to it) start now."""
    return next_start_at([*starts, (now, starting)] if starting else starts, limit, period_s, now)


def to_return(allowed: int, queued: int, parked: int) -> int:
    """How many rate-parked tasks of a key to return to the queue: the starts allowed now that
    the key's tasks already in the queue will not take."""
    return max(0, min(parked, allowed - queued))
