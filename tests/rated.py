"""Graphs with a rate limit, a store on a test's clock, and the check of the guarantee
(tests/integration/test_rates.py, tests/api/test_rates_api.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from limited import sql

from baton.clock import FakeClock
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.store import rates
from baton.store.protocol import Store
from baton.store.tx import read_rows

PARTS = [f"p{i:03}" for i in range(120)]
LONG_LEASE_S = 3600.0  # no lease runs out while a test moves its clock on


def rated(limit: int = 5, period_s: float = 10.0, parts: Sequence[str] = PARTS, key: str = "partner-api") -> Graph:
    """``call`` starts at most ``limit`` times in any ``period_s``; ``free`` has no limit."""
    g = GraphBuilder("rated", defaults={"retries": 0})
    g.param("parts", "list", default=list(parts)).partitions(param="parts")
    g.python("call", "m:f", rate_limit={"key": key, "limit": limit, "period_s": period_s}, priority=1)
    g.python("free", "m:f")
    return g.build()


def on_clock(backend: Store) -> FakeClock:
    """Run the store's transactions at a fake clock's time (its wall time), from a round start."""
    clock = FakeClock(wall_start=1_800_000_000.0)
    sql(backend).clock = clock.wall
    return clock


class Started(NamedTuple):
    started_at: float


def start_times(backend: Store, node: str = "call") -> list[float]:
    """When each task of ``node`` started, by the store's record (tasks run once here)."""
    with sql(backend).transaction(write=False) as tx:
        sql_text = "SELECT started_at FROM tasks WHERE node = ? AND started_at IS NOT NULL ORDER BY started_at"
        return [r.started_at for r in read_rows(tx, Started, sql_text, (node,))]


def most_in_a_window(starts: Sequence[float], period_s: float) -> int:
    """The most starts any interval [a, a + period_s) holds: an interval holding the most can
    begin at one of them, so it suffices to count from each (with the store's own comparison)."""
    ordered = sorted(starts)
    return max((sum(1 for t in ordered if s <= t and not s + period_s <= t) for s in ordered), default=0)


def rate_state(backend: Store, key: str = "partner-api") -> rates.RateState:
    with sql(backend).transaction(write=False) as tx:
        (state,) = rates.rate_states(tx, [key])
    return state
