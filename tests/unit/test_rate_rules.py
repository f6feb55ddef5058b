"""Rate limits' pure rules: the sliding window (what counts, how many may start, when the next
may), admission together with concurrency keys, how many parked tasks go back, and the graph
declaration with its refusals (file, path and line)."""

from __future__ import annotations

import random

import pytest

from baton.engine.limits import admit
from baton.engine.rates import allowance, in_window, next_look_at, next_start_at, to_return
from baton.errors import GraphInvalid
from baton.graphs.spec import graph_to_dict, load_graph_text


def test_a_start_counts_until_its_window_has_passed_and_not_at_its_end() -> None:
    starts = [(100.0, 2), (104.0, 1)]
    assert in_window(starts, 10.0, 109.999) == [(100.0, 2), (104.0, 1)]
    assert in_window(starts, 10.0, 110.0) == [(104.0, 1)]  # [100, 110) is over at 110
    assert allowance(starts, 3, 10.0, 105.0) == 0
    assert allowance(starts, 3, 10.0, 110.0) == 2
    assert allowance(starts, 2, 10.0, 105.0) == 0  # never negative, even past a lowered limit


def test_the_next_start_is_when_the_limit_th_most_recent_start_leaves_the_window() -> None:
    starts = [(100.0, 2), (104.0, 1), (107.0, 1)]
    assert next_start_at(starts, 4, 10.0, 108.0) == 110.0  # the two at 100 leave together
    assert next_start_at(starts, 2, 10.0, 108.0) == 114.0  # the limit counts back to 104
    assert next_start_at(starts, 5, 10.0, 108.0) == 108.0  # a start is allowed now
    assert next_start_at([], 1, 10.0, 50.0) == 50.0


def test_the_next_look_counts_the_tasks_about_to_start() -> None:
    """Two of the limit of 4 have left the window at 110: two parked tasks go back and start
    then, so the next of the others may start when the starts at 104 leave (114), not at 110."""
    starts = [(100.0, 2), (104.0, 1), (107.0, 1)]
    assert next_look_at(starts, 4, 10.0, 110.0, starting=2) == 114.0
    assert next_look_at(starts, 4, 10.0, 110.0, starting=1) == 110.0  # one more may start now
    assert next_look_at(starts, 4, 10.0, 108.0, starting=0) == next_start_at(starts, 4, 10.0, 108.0) == 110.0


def test_starting_whenever_allowed_never_puts_more_than_the_limit_in_any_window() -> None:
    """A model of the claim: at random times, start as many as allowed (some at once), and
    check every interval [s, s + period) that begins at a start."""
    rng = random.Random(7)
    for limit, period in ((1, 1.0), (3, 2.5), (10, 0.25)):
        now, starts = 0.0, []
        for _ in range(400):
            now += rng.choice([0.0, 0.01, 0.1, period / limit, period])
            n = rng.randint(0, allowance(starts, limit, period, now))
            if n:
                starts.append((now, n))
            if allowance(starts, limit, period, now) == 0:
                assert next_start_at(starts, limit, period, now) > now
        for s, _ in starts:
            assert sum(n for t, n in starts if s <= t < s + period) <= limit


def test_admission_spends_a_start_only_on_tasks_it_admits() -> None:
    """1 and 2 take erp's two slots and two starts; 3's key is full (parked on erp, no start
    spent); 4 has no key but the rate is spent (parked on api, no slot held); 5 has only erp,
    which 4 did not take."""
    candidates = [(1, "erp"), (2, "erp"), (3, "erp"), (4, None), (5, "erp")]
    rate_keys = {1: "api", 2: "api", 3: "api", 4: "api"}
    gate = admit(candidates, {"erp": 3}, {"erp": 1}, {"api": 2}, rate_keys)
    assert gate.admitted == [1, 2]
    assert gate.parked == {"erp": [3, 5]}
    assert gate.rate_parked == {"api": [4]}
    assert gate.started == {"api": 2}
    gate = admit([(1, "erp"), (2, "erp"), (3, "erp")], {"erp": 2}, {}, {"api": 1}, {1: "api"})
    assert (gate.admitted, gate.rate_parked, gate.parked) == ([1, 2], {}, {"erp": [3]})
    gate = admit([(1, "erp"), (2, "erp")], {"erp": 1}, {}, {"api": 0}, {1: "api"})
    assert (gate.admitted, gate.rate_parked) == ([2], {"api": [1]})  # 1 waits on its rate: 2 takes erp


def test_a_rate_key_without_a_known_allowance_admits_nothing() -> None:
    assert admit([(1, None)], {}, {}, {}, {1: "lost"}).rate_parked == {"lost": [1]}


@pytest.mark.parametrize(
    ("allowed", "queued", "parked", "expected"),
    [(3, 0, 10, 3), (3, 2, 10, 1), (3, 5, 10, 0), (3, 0, 1, 1), (0, 0, 9, 0)],
)
def test_returning_fills_the_starts_the_queue_will_not_take(
    allowed: int, queued: int, parked: int, expected: int
) -> None:
    assert to_return(allowed, queued, parked) == expected


GRAPH = """
graph: rated
params: {{year: {{type: integer, default: 2025}}}}
partitions: {{values: [A, B]}}
nodes:
  call:
    run: "m:f"
    concurrency: {{key: erp, limit: 2}}
    rate_limit: {rate}
"""


def test_a_graph_declares_a_rate_limit_and_the_loader_names_what_is_wrong() -> None:
    graph = load_graph_text(GRAPH.format(rate="{key: 'api:{partition}', limit: 100, period_s: 60}"))
    rate = graph.node("call").rate_limit
    assert rate is not None and (rate.key, rate.limit, rate.period_s) == ("api:{partition}", 100, 60.0)
    assert graph.node("call").concurrency is not None  # both on one node
    assert graph_to_dict(graph)["nodes"]["call"]["rate_limit"] == {"key": "api:{partition}", "limit": 100,
                                                                  "period_s": 60.0}  # fmt: skip
    cases = {
        "{key: api, limit: 3}": "nodes.call.rate_limit (line 9): must be a mapping {key: TEMPLATE, limit: N",
        "{key: api, limit: 0, period_s: 1}": "nodes.call.rate_limit.limit",
        "{key: api, limit: 100001, period_s: 1}": "between 1 and 100,000",
        "{key: api, limit: 1.5, period_s: 1}": "nodes.call.rate_limit.limit",
        "{key: api, limit: 1, period_s: 0}": "nodes.call.rate_limit.period_s",
        "{key: api, limit: 1, period_s: 604801}": "between 0.001 and 604,800",
        "{key: api, limit: 1, period_s: .nan}": "nodes.call.rate_limit.period_s",
        "{key: '{params.region}', limit: 1, period_s: 1}": "unknown parameter 'region'",
        "{key: '{attempt}', limit: 1, period_s: 1}": "is not a placeholder",
        "{key: api, limit: 1, period_s: 1, burst: 2}": "burst",
        "[api, 1, 1]": "must be a mapping",
    }
    for raw, expected in cases.items():
        with pytest.raises(GraphInvalid) as refused:
            load_graph_text(GRAPH.format(rate=raw), source="rated.yaml")
        assert expected in str(refused.value), (raw, str(refused.value))
        assert "rated.yaml" in str(refused.value)
