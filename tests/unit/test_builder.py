"""The Python builder yields exactly what the YAML route yields, checks included."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.errors import GraphInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Dependency, DepMode, Graph
from baton.graphs.spec import graph_digest, graph_from_dict, graph_to_dict, load_graph_file, load_graph_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "year_end_report" / "graph.yaml"
TASKS = "year_end_report.tasks"
DEPARTMENTS = [
    "sales",
    "marketing",
    "engineering",
    "operations",
    "customer_service",
    "branch_shanghai",
    "branch_shenzhen",
    "branch_chengdu",
]


def example_builder(yaml_graph: Graph) -> GraphBuilder:
    """The example graph written with the builder; free-text descriptions copied over."""
    node_text = {n.name: n.description for n in yaml_graph.nodes}
    param_text = {p.name: p.description for p in yaml_graph.params}
    g = GraphBuilder(
        "year_end_report",
        event="year_end_report",
        description=yaml_graph.description,
        python_path=[".."],
        defaults={"retries": 2, "retry_delay_s": 1.0, "timeout_s": 300},
    )
    g.param("year", "integer", default=2025, description=param_text["year"])
    g.param("departments", "list", default=DEPARTMENTS, description=param_text["departments"])
    g.param("out_dir", "string", default="year_end_report_out", description=param_text["out_dir"])
    g.param("source_dir", "string", default="", description=param_text["source_dir"])
    g.partitions(param="departments")
    schedule = yaml_graph.schedule("year_end")
    assert schedule is not None
    g.schedule("year_end", description=schedule.description, cron="0 2 * 1 *", timezone="Asia/Shanghai",
               calendar="cn_business", business_day="first", params={"year": "{fire.previous_year}"},
               deadline="09:00", catch_up="latest", overlap="skip")  # fmt: skip
    for name in ("extract_finance", "extract_erp", "extract_crm"):
        labels = ["erp"] if name == "extract_erp" else []
        g.python(name, f"{TASKS}:{name}", description=node_text[name], labels=labels)
    g.python(
        "process",
        f"{TASKS}:process",
        after=["extract_finance", "extract_erp", "extract_crm"],
        description=node_text["process"],
    )
    g.python("summarize", f"{TASKS}:summarize", after=["process"], description=node_text["summarize"])
    g.python(
        "dept_report",
        f"{TASKS}:dept_report",
        after=["summarize"],
        description=node_text["dept_report"],
    )
    g.python(
        "hq_summary",
        f"{TASKS}:hq_summary",
        after=["summarize"],
        partitioned=False,
        cost={"slots": 2},
        description=node_text["hq_summary"],
    )
    g.command(
        "hq_report",
        ["{python}", "-m", "year_end_report.render_hq"],
        after=["hq_summary"],
        partitioned=False,
        description=node_text["hq_report"],
    )
    return g


def test_builder_equals_the_yaml_example() -> None:
    from_yaml = load_graph_file(EXAMPLE)
    built = example_builder(from_yaml).build(base_dir=EXAMPLE.parent)
    assert built == from_yaml
    assert graph_to_dict(built) == graph_to_dict(from_yaml)
    assert graph_digest(built) == graph_digest(from_yaml)


def test_builder_python_path_follows_base_dir(tmp_path: Path) -> None:
    from_yaml = load_graph_file(EXAMPLE)
    built = example_builder(from_yaml).build(base_dir=tmp_path / "inner")
    assert built.python_path == (str(tmp_path.resolve()),)
    assert built != from_yaml


def test_builder_dict_is_what_yaml_would_hold() -> None:
    g = GraphBuilder("g", python_path=["lib"]).partitions(values=["A", "B"])
    g.python("a", "m:f", labels=("gpu",), retries=1)
    g.command("b", ["run", "{partition}"], after=[("a", "all")], env={"K": "v"}, cwd="work")
    g.python("c", "m:f", after=["b"], partitioned=False)
    assert g.to_dict() == {
        "graph": "g",
        "python_path": ["lib"],
        "params": {},
        "partitions": {"values": ["A", "B"]},
        "nodes": {
            "a": {"run": "m:f", "labels": ["gpu"], "retries": 1},
            "b": {
                "command": ["run", "{partition}"],
                "env": {"K": "v"},
                "after": [{"node": "a", "mode": "all"}],
                "cwd": "work",
            },
            "c": {"run": "m:f", "after": ["b"], "partitioned": False},
        },
    }
    built = g.build()
    assert built.node("b").after == (Dependency("a", DepMode.ALL),)
    assert built.node("c").after == (Dependency("b", DepMode.ALL),)
    assert graph_from_dict(g.to_dict()) == built


def test_builder_params() -> None:
    g = GraphBuilder("g").python("a", "m:f")
    g.param("needed", "string").param("opt", "integer", default=3).param("maybe", "string", required=False)
    built = g.build()
    assert [(p.name, p.required, p.default) for p in built.params] == [
        ("needed", True, None),
        ("opt", False, 3),
        ("maybe", False, None),
    ]


def test_builder_errors_come_through_graph_invalid() -> None:
    g = GraphBuilder("g").python("a", "not-a-target").python("b", "m:f", after=["nope"], colour=1)
    with pytest.raises(GraphInvalid) as info:
        g.build()
    err = info.value
    assert err.source == "builder:g"
    assert str(err).startswith("invalid graph builder:g (3 problems)")
    assert [p.where for p in err.problems] == [
        "builder:g: nodes.a.run",
        "builder:g: nodes.b.colour",
        "builder:g: nodes.b.after[0]",
    ]
    with pytest.raises(GraphInvalid) as same:
        graph_from_dict(g.to_dict(), source="builder:g")
    assert same.value.problems == err.problems


def test_builder_reports_a_cycle() -> None:
    g = GraphBuilder("g").python("a", "m:f", after=["b"]).python("b", "m:f", after=["a"])
    with pytest.raises(GraphInvalid, match=r"dependency cycle: (a → b → a|b → a → b)"):
        g.build()


def test_builder_bad_mode_for_shape() -> None:
    g = GraphBuilder("g").partitions(values=["A"])
    g.python("one", "m:f", partitioned=False).python("many", "m:f", after=[("one", "same")])
    with pytest.raises(GraphInvalid, match="allowed: broadcast"):
        g.build()


def test_the_builder_declares_schedules_chains_and_retention_as_yaml_would() -> None:
    text = """
graph: publish
params: {year: {type: integer}}
raised_by: [{event: report, when: [succeeded], params: {year: "{source.params.year}"}}]
retention: {succeeded_days: 30}
nodes: {copy: {run: "m:f"}}
"""
    g = GraphBuilder("publish").param("year", "integer").python("copy", "m:f")
    g.raised_by("report", params={"year": "{source.params.year}"}).retention(succeeded_days=30)
    assert g.build() == load_graph_text(text)
