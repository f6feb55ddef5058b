"""The forecast of an event's end from its graph's earlier runs (pure)."""

from __future__ import annotations

from baton.engine.forecast import NodeNow, NodeRun, Typical, forecast, history
from baton.graphs.spec import load_graph_text

GRAPH = load_graph_text("""
graph: two
partitions: {values: [a, b]}
nodes:
  extract: {run: "m:f"}
  load: {run: "m:f", after: [extract]}
  report: {run: "m:f", partitioned: false, after: [load]}
""")


def run(start: float, extract: float, load: float, report: float) -> dict[str, NodeRun]:
    """One earlier run: each node's first start and last end, from ``start``."""
    return {"extract": NodeRun(start, start + extract), "load": NodeRun(start + 1, start + load),
            "report": NodeRun(start + load, start + report)}  # fmt: skip


def test_history_takes_each_nodes_median_lag() -> None:
    runs = [run(0, 100, 130, 200), run(1000, 120, 150, 210), run(5000, 900, 930, 1000)]  # the last is odd
    typical = history(GRAPH, runs)
    assert typical["extract"] == Typical(lag_s=120, runs=3)
    assert typical["load"].lag_s == 30  # pipelined: ends soon after extract, whatever its own span
    assert typical["report"].lag_s == 70


def test_a_node_missing_from_a_run_gives_no_figure_for_it_or_what_follows() -> None:
    partial = {"extract": NodeRun(0, 10)}
    typical = history(GRAPH, [partial])
    assert set(typical) == {"extract"}
    assert forecast(GRAPH, typical, {}, started_at=0, now=5) is None  # no history for load: no guess


def test_the_forecast_chains_lags_from_the_start_and_keeps_what_has_ended() -> None:
    typical = history(GRAPH, [run(0, 100, 130, 200)])
    start = 10_000.0
    assert forecast(GRAPH, typical, {}, started_at=start, now=start) == start + 200
    ended = {"extract": NodeNow(2, 0, ended_at=start + 50)}  # faster than usual this time
    assert forecast(GRAPH, typical, ended, started_at=start, now=start + 50) == start + 50 + 30 + 70


def test_a_node_slower_than_its_history_pushes_the_forecast_out() -> None:
    typical = history(GRAPH, [run(0, 100, 130, 200)])
    start = 10_000.0
    slow = {"extract": NodeNow(2, 1)}  # at 500 s one of its two tasks is still going
    at = forecast(GRAPH, typical, slow, started_at=start, now=start + 500)
    assert at == start + 500 + 50 + 30 + 70  # half its lag left, then the lags of what follows
