"""Concurrency keys' pure rules: rendering a key, checking a template, admitting a claim's
candidates, and how many parked tasks go back to the queue."""

from __future__ import annotations

import pytest

from baton.engine.limits import MAX_KEY_CHARS, admit, render_key, to_unpark
from baton.errors import GraphInvalid
from baton.graphs.keys import template_problems
from baton.graphs.spec import load_graph_text


def key(template: str, partition: str = "A", **params: object) -> str:
    return render_key(template, node="extract", partition=partition, event_type="year_end", params=params)


def test_a_key_renders_its_partition_node_event_type_and_parameters() -> None:
    assert key("erp") == "erp"
    assert key("dept:{partition}", "B") == "dept:B"
    assert key("{event_type}/{node}/{params.region}", region="east") == "year_end/extract/east"
    assert key("{params.year}-{params.codes}", year=2025, codes=["x", "y"]) == '2025-["x","y"]'


def test_a_key_past_its_length_is_cut_with_a_digest_of_the_whole() -> None:
    long_a, long_b = key("{params.n}", n="a" * 300), key("{params.n}", n="a" * 299 + "b")
    assert len(long_a) == len(long_b) == MAX_KEY_CHARS
    assert long_a != long_b and long_a[:100] == long_b[:100]


def test_templates_are_checked_against_the_placeholders_and_the_declared_parameters() -> None:
    assert template_problems("dept:{partition}", {"year"}, partitioned=True) == []
    assert template_problems("", set(), True) == ["must be a non-empty string"]
    assert template_problems("{partition}", set(), partitioned=False) == [
        "{partition} is used in a node that is not partitioned"
    ]
    assert template_problems("{params.region}", {"year"}, True) == ["unknown parameter 'region' (declared: year)"]
    assert "is not a placeholder" in template_problems("{attempt}", set(), True)[0]
    assert template_problems(3, set(), True) == ["must be a non-empty string"]


def test_admission_goes_in_queue_order_and_counts_what_it_admits() -> None:
    candidates = [(1, "erp"), (2, None), (3, "erp"), (4, "erp"), (5, "crm"), (6, "erp")]
    gate = admit(candidates, {"erp": 3, "crm": 1}, {"erp": 1})
    assert gate.admitted == [1, 2, 3, 5]
    assert gate.parked == {"erp": [4, 6]}


def test_a_key_without_a_known_limit_admits_nothing() -> None:
    assert admit([(1, "lost")], {}, {}).parked == {"lost": [1]}


@pytest.mark.parametrize(
    ("limit", "running", "ready", "parked", "expected"),
    [(3, 3, 0, 10, 0), (3, 1, 0, 10, 2), (3, 1, 1, 10, 1), (3, 0, 0, 1, 1), (3, 5, 0, 4, 0)],
)
def test_unparking_fills_the_free_slots_nobody_is_coming_for(
    limit: int, running: int, ready: int, parked: int, expected: int
) -> None:
    assert to_unpark(limit, running, ready, parked) == expected


GRAPH = """
graph: limited
params: {{year: {{type: integer, default: 2025}}}}
partitions: {{values: [A, B]}}
nodes:
  extract:
    run: "m:f"
    concurrency: {concurrency}
"""


def test_a_graph_declares_a_key_and_its_limit_and_the_loader_names_what_is_wrong() -> None:
    graph = load_graph_text(GRAPH.format(concurrency="{key: 'erp:{params.year}', limit: 3}"))
    assert graph.node("extract").concurrency is not None
    assert graph.node("extract").concurrency.limit == 3
    cases = {
        "{key: erp}": "nodes.extract.concurrency (line 8): must be a mapping {key: TEMPLATE, limit: N}",
        "{key: erp, limit: 0}": "nodes.extract.concurrency.limit",
        "{key: erp, limit: 2.5}": "nodes.extract.concurrency.limit",
        "{key: '{params.region}', limit: 1}": "unknown parameter 'region'",
        "{key: erp, limit: 1, colour: red}": "colour",
        "3": "must be a mapping",
    }
    for raw, expected in cases.items():
        with pytest.raises(GraphInvalid) as refused:
            load_graph_text(GRAPH.format(concurrency=raw), source="limited.yaml")
        assert expected in str(refused.value), (raw, str(refused.value))
        assert "limited.yaml" in str(refused.value)
