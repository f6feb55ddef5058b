"""Pure planning: tasks and wait counters, failure blocking, critical path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from baton.engine.planner import (
    UNPARTITIONED,
    PlannedTask,
    Scope,
    blocked_by,
    critical_path,
    node_stages,
    plan,
    unsatisfied_edges,
    upstream_nodes,
)
from baton.errors import ParamsInvalid
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.graphs.spec import graph_from_dict, load_graph_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "year_end_report" / "graph.yaml"
PARTITIONED_NODES = (
    "extract_finance",
    "extract_erp",
    "extract_crm",
    "process",
    "summarize",
    "dept_report",
)


@pytest.fixture(scope="module")
def example() -> Graph:
    return load_graph_file(EXAMPLE)


def departments(count: int) -> dict[str, Any]:
    return {"departments": [f"d{i}" for i in range(count)]}


@pytest.mark.parametrize("count", [1, 2, 8])
def test_example_plan_has_6p_plus_2_tasks(example: Graph, count: int) -> None:
    planned = plan(example, validate_params(example, departments(count)))
    assert len(planned.tasks) == 6 * count + 2
    assert planned.counts() == {n.name: count if n.partitioned else 1 for n in example.nodes}
    per_node = Counter(t.node for t in planned.tasks)
    assert per_node == {**dict.fromkeys(PARTITIONED_NODES, count), "hq_summary": 1, "hq_report": 1}


def test_example_pending_counts(example: Graph) -> None:
    planned = plan(example, validate_params(example, {"departments": ["A", "B"]}))
    pending = {(t.node, t.partition): t.pending for t in planned.tasks}
    for part in ("A", "B"):
        assert pending["extract_finance", part] == 0
        assert pending["extract_erp", part] == 0
        assert pending["extract_crm", part] == 0
        assert pending["process", part] == 3
        assert pending["summarize", part] == 1
        assert pending["dept_report", part] == 1
    assert pending["hq_summary", UNPARTITIONED] == 1
    assert pending["hq_report", UNPARTITIONED] == 1
    assert len(pending) == len(planned.tasks)


def test_tasks_come_partition_by_partition_in_topological_order_then_the_unpartitioned(example: Graph) -> None:
    planned = plan(example, validate_params(example, departments(3)))
    partitioned = [t for t in planned.tasks if t.partition != UNPARTITIONED]
    rest = planned.tasks[len(partitioned) :]
    assert all(t.partition == UNPARTITIONED for t in rest) and rest  # the unpartitioned come last
    blocks = [t.partition for i, t in enumerate(partitioned) if i == 0 or partitioned[i - 1].partition != t.partition]
    assert len(blocks) == len(set(blocks)) == 3  # each partition's tasks side by side
    for block in [[t for t in partitioned if t.partition == p] for p in blocks] + [list(rest)]:
        position = {t.node: i for i, t in enumerate(block)}
        for task in block:
            for dep in example.node(task.node).after:
                assert dep.upstream not in position or position[dep.upstream] < position[task.node]


def test_stage_is_the_longest_path_from_a_root() -> None:
    g = graph_from_dict(
        {
            "graph": "g",
            "nodes": {
                "a": {"run": "m:f"},
                "b": {"run": "m:f", "after": ["a"]},
                "c": {"run": "m:f", "after": ["b"]},
                "d": {"run": "m:f", "after": ["a", "c"]},
                "e": {"run": "m:f"},
            },
        }
    )
    assert node_stages(g) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}
    assert {t.node: t.stage for t in plan(g, {}).tasks} == node_stages(g)


def test_priority_is_copied_to_tasks() -> None:
    graph = graph_from_dict({"graph": "g", "nodes": {"a": {"run": "m:f", "priority": 7}}})
    assert plan(graph, {}).tasks == (PlannedTask("a", UNPARTITIONED, 0, 7),)


def test_plan_refuses_bad_partitions(example: Graph) -> None:
    with pytest.raises(ParamsInvalid):
        plan(example, {"departments": ["a", "a"]})


def test_ten_thousand_partitions(example: Graph) -> None:
    planned = plan(example, validate_params(example, departments(10_000)))
    assert len(planned.tasks) == 60_002
    assert len(set((t.node, t.partition) for t in planned.tasks)) == 60_002
    assert planned.counts()["process"] == 10_000


# --- barrier ------------------------------------------------------------------------------


def gate_graph(barrier: bool) -> Graph:
    """load (partitioned) and config (unpartitioned) feed gate, which feeds after_gate."""
    return graph_from_dict(
        {
            "graph": "g",
            "partitions": {"values": ["A", "B"]},
            "nodes": {
                "load": {"run": "m:f"},
                "config": {"run": "m:f", "partitioned": False},
                "gate": {"run": "m:f", "barrier": barrier, "after": ["load", "config"]},
                "after_gate": {"run": "m:f", "after": ["gate"]},
            },
        }
    )


def test_barrier_keeps_one_counter_per_edge_but_waits_for_the_whole_node() -> None:
    graph = gate_graph(barrier=True)
    pending = {(t.node, t.partition): t.pending for t in plan(graph, {}).tasks}
    assert pending["gate", "A"] == 2
    # load[A] succeeded but load[B] did not: a barrier still waits; a plain edge would not.
    assert unsatisfied_edges(graph, "gate", "A", {("load", "A")}, {"config"}) == 1
    assert unsatisfied_edges(graph, "gate", "A", {("load", "A")}, {"config", "load"}) == 0
    plain = gate_graph(barrier=False)
    assert unsatisfied_edges(plain, "gate", "A", {("load", "A")}, {"config"}) == 0


def test_barrier_turns_a_partition_failure_into_a_whole_node_block() -> None:
    graph = gate_graph(barrier=True)
    assert blocked_by(graph, "load", "A") == [Scope("gate", None), Scope("after_gate", None)]
    plain = gate_graph(barrier=False)
    assert blocked_by(plain, "load", "A") == [Scope("gate", "A"), Scope("after_gate", "A")]


# --- blocking -----------------------------------------------------------------------------


def test_failed_extract_blocks_its_partition_and_the_fan_in(example: Graph) -> None:
    scopes = blocked_by(example, "extract_finance", "A")
    assert set(scopes) == {
        Scope("process", "A"),
        Scope("summarize", "A"),
        Scope("dept_report", "A"),
        Scope("hq_summary", None),
        Scope("hq_report", None),
    }
    assert len(scopes) == 5
    assert not any(s.partition == "B" for s in scopes)


def test_blocked_by_is_in_topological_order_and_spares_other_partitions(example: Graph) -> None:
    scopes = blocked_by(example, "extract_crm", "A")
    order = [n.name for n in example.nodes]
    assert [order.index(s.node) for s in scopes] == sorted(order.index(s.node) for s in scopes)
    assert all(s.partition in ("A", None) for s in scopes)
    assert not any(s.node.startswith("extract") for s in scopes)


def test_failed_fan_in_blocks_only_what_is_below_it(example: Graph) -> None:
    assert blocked_by(example, "hq_summary", UNPARTITIONED) == [Scope("hq_report", None)]
    assert blocked_by(example, "hq_report", UNPARTITIONED) == []
    assert blocked_by(example, "dept_report", "A") == []


def test_failed_broadcast_source_blocks_every_partition() -> None:
    graph = graph_from_dict(
        {
            "graph": "g",
            "partitions": {"values": ["A", "B"]},
            "nodes": {
                "setup": {"run": "m:f", "partitioned": False},
                "work": {"run": "m:f", "after": ["setup"]},
                "more": {"run": "m:f", "after": ["work"]},
            },
        }
    )
    assert blocked_by(graph, "setup", UNPARTITIONED) == [Scope("work", None), Scope("more", None)]


def test_unsatisfied_edges_counts_same_and_node_level_edges(example: Graph) -> None:
    succeeded = {("extract_finance", "A"), ("extract_erp", "B")}
    assert unsatisfied_edges(example, "process", "A", succeeded, set()) == 2
    assert unsatisfied_edges(example, "hq_summary", UNPARTITIONED, set(), {"summarize"}) == 0
    assert unsatisfied_edges(example, "hq_summary", UNPARTITIONED, set(), set()) == 1


# --- shape --------------------------------------------------------------------------------


def test_critical_path_of_the_example(example: Graph) -> None:
    assert critical_path(example) == [
        "extract_finance",
        "process",
        "summarize",
        "hq_summary",
        "hq_report",
    ]


def test_critical_path_of_a_single_node() -> None:
    graph = graph_from_dict({"graph": "g", "nodes": {"only": {"run": "m:f"}}})
    assert critical_path(graph) == ["only"]


def test_upstream_nodes(example: Graph) -> None:
    assert upstream_nodes(example, ["summarize"]) == {
        "summarize",
        "process",
        "extract_finance",
        "extract_erp",
        "extract_crm",
    }
    assert upstream_nodes(example, ["extract_erp"]) == {"extract_erp"}
    assert upstream_nodes(example, ["hq_report"]) == {n.name for n in example.nodes} - {"dept_report"}


def test_critical_path_follows_the_longest_branch() -> None:
    graph = graph_from_dict(
        {
            "graph": "g",
            "nodes": {
                "short": {"run": "m:f"},
                "a": {"run": "m:f"},
                "b": {"run": "m:f", "after": ["a"]},
                "c": {"run": "m:f", "after": ["b"]},
                "join": {"run": "m:f", "after": ["short", "c"]},
                "side": {"run": "m:f", "after": ["short"]},
            },
        }
    )
    assert critical_path(graph) == ["a", "b", "c", "join"]
