"""Dynamic partitions in the pure core: how ``partitions_from`` is validated, and what the
planner makes of a discovery's result (tests/integration/test_dynamic_partitions.py drives them
through both stores)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from baton.engine.planner import awaiting, discovered_keys, plan, plan_discovered
from baton.errors import GraphInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import DepMode, Graph
from baton.graphs.spec import graph_from_dict, graph_to_dict, load_graph_text
from baton.server.ui.drawing import graph_svg


def branches(**fetch: Any) -> Graph:
    g = GraphBuilder("branches")
    g.param("regions", "list", default=["eu", "us"]).partitions(param="regions")
    g.python("discover", "m:f", partitioned=False)
    g.python("fetch", "m:f", after=["discover"], partitions_from="discover", **fetch)
    g.python("build", "m:f", after=["fetch"], partitions_from="discover", max_partitions=5)
    g.python("summary", "m:f", after=["build"], partitioned=False)
    g.python("regional", "m:f", after=["build"])  # statically partitioned: waits for all builds
    return g.build()


def test_a_dynamic_node_is_partitioned_by_its_discovery_and_keeps_its_edges() -> None:
    graph = branches()
    fetch, build = graph.node("fetch"), graph.node("build")
    assert fetch.partitioned and fetch.dynamic and fetch.partitions_from == "discover"
    assert fetch.max_partitions == 10_000 and build.max_partitions == 5
    assert [d.mode for d in fetch.after] == [DepMode.BROADCAST] and [d.mode for d in build.after] == [DepMode.SAME]
    assert [d.mode for d in graph.node("regional").after] == [DepMode.ALL]  # another partition source
    assert graph.discoveries == {"discover": (fetch, build)}
    assert graph_from_dict(graph_to_dict(graph)) == graph
    assert "partitions_from" not in graph_to_dict(graph)["nodes"]["summary"]  # other graphs keep their digest


YAML = """
graph: g
partitions: {values: [a, b]}
nodes:
  discover: {run: "m:f", partitioned: false}
  fixed: {run: "m:f"}
  fetch: {run: "m:f", after: [discover, FETCH_AFTER], partitions_from: FROM, max_partitions: CAP}
"""


@pytest.mark.parametrize(
    ("fetch_after", "source", "cap", "problem"),
    [
        ("fixed", "nope", 5, "nodes.fetch.partitions_from (line 7): 'nope' must name an unpartitioned node"),
        ("fixed", "fixed", 5, "nodes.fetch.partitions_from (line 7): the discovery node 'fixed' must be unpartitioned"),
        ("fixed", "discover", 0, "nodes.fetch.max_partitions (line 7): 0 is out of range: must be an integer between "
                                 "1 and 100,000"),
        ("{node: fixed, mode: same}", "discover", 5, "nodes.fetch.after[1] (line 7): mode 'same' is not valid for "
                                                     "partitioned 'fixed' → partitioned node whose partitions come "
                                                     "from elsewhere (allowed: all)"),
    ],
)  # fmt: skip
def test_a_wrong_partitions_from_is_refused(fetch_after: str, source: str, cap: int, problem: str) -> None:
    text = YAML.replace("FETCH_AFTER", fetch_after).replace("FROM", source).replace("CAP", str(cap))
    with pytest.raises(GraphInvalid) as caught:
        load_graph_text(text)
    assert problem in str(caught.value)


def test_a_dynamic_node_must_follow_its_discovery_and_only_it_takes_max_partitions() -> None:
    g = GraphBuilder("g")
    g.python("discover", "m:f")
    g.python("other", "m:f")
    g.python("fetch", "m:f", after=["other"], partitions_from="discover", partitioned=False)
    g.python("late", "m:f", after=["other"], max_partitions=3)
    with pytest.raises(GraphInvalid) as caught:
        g.build()
    text = str(caught.value)
    assert "nodes.fetch.partitioned: a node with 'partitions_from' is partitioned" in text
    assert "nodes.late.max_partitions: applies only to a node with 'partitions_from'" in text


def test_an_event_plans_no_task_of_a_dynamic_node_and_counts_its_edges_downstream() -> None:
    graph = branches()
    planned = plan(graph, {"regions": ["eu", "us"]})
    assert planned.node_totals == {"discover": 1, "fetch": 0, "build": 0, "summary": 1, "regional": 2}
    assert {(t.node, t.pending) for t in planned.tasks} == {("discover", 0), ("summary", 1), ("regional", 1)}


def test_a_discovery_plans_each_key_with_the_edges_it_waits_for() -> None:
    graph = branches(concurrency={"key": "repo-{partition}", "limit": 1})
    planned = plan_discovered(graph, {}, "discover", ["a", "b"], complete={"fetch", "build"})
    assert [(t.node, t.partition, t.pending, t.key) for t in planned.tasks] == [
        ("fetch", "a", 1, "repo-a"), ("build", "a", 1, None), ("fetch", "b", 1, "repo-b"), ("build", "b", 1, None),
    ]  # fmt: skip
    assert planned.node_totals == {"fetch": 2, "build": 2}
    assert awaiting(graph, set()) == {"fetch", "build"} and awaiting(graph, {("discover", "")}) == set()


@pytest.mark.parametrize(
    ("result", "keys", "problem"),
    [
        (["a", 2], ("a", "2"), None),
        ({"partitions": ["x"], "other": 1}, ("x",), None),
        ([], (), None),
        (["a"] * 6, (), "returned 6 partitions, over the cap of 5 (max_partitions of node build)"),
        ({"keys": []}, (), "a discovery's result must be a JSON list of partition keys, or an object whose "
                           "'partitions' is one"),
        (None, (), "a discovery's result must be a JSON list"),
        (["a", "a"], (), "its partitions: duplicate partitions ['a']"),
        (["x" * 201], (), "is not a usable partition key"),
    ],
)  # fmt: skip
def test_a_discovery_result_is_read_as_keys_or_refused_with_why(result: Any, keys: tuple[str, ...],
                                                                 problem: str | None) -> None:  # fmt: skip
    found, why = discovered_keys(branches(), "discover", json.dumps(result))
    assert found == keys
    assert (why is None) if problem is None else (why is not None and problem in why)


def test_the_drawing_says_where_a_dynamic_node_s_partitions_come_from_until_they_are_planned() -> None:
    graph = branches()
    assert "partitions from discover" in graph_svg(graph)
    assert "partitions from discover" in graph_svg(graph, {"discover": {"running": 1}})
    planned = graph_svg(graph, {"fetch": {"ready": 3}, "build": {"pending": 3}})
    assert "partitions from discover" not in planned and "3 partitions" in planned
