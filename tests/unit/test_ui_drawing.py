"""The graph drawing: layering, node states, edge styles, escaping and size, read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Dependency, DepMode, Graph, Node, PythonAction
from baton.graphs.spec import load_graph_file
from baton.server.ui.drawing import escape, graph_svg, layers, node_state

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "year_end_report" / "graph.yaml"
SVG = "{http://www.w3.org/2000/svg}"
COUNTS = {
    "extract_finance": {"succeeded": 1000},
    "extract_erp": {"succeeded": 812, "running": 40, "ready": 136, "failed": 12},
    "extract_crm": {"succeeded": 990, "cancelled": 10},
    "process": {"succeeded": 600, "running": 30, "pending": 370},
    "summarize": {"succeeded": 550, "ready": 20, "pending": 430},
    "dept_report": {"pending": 1000},
    "hq_summary": {"upstream_failed": 1},
}


@pytest.fixture(scope="module")
def example() -> Graph:
    return load_graph_file(EXAMPLE)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def nodes_of(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-node"]: g for g in root.iter(f"{SVG}g") if "data-node" in g.attrib}


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_the_example_graph_is_layered_by_longest_path(example: Graph) -> None:
    assert layers(example) == [
        ["extract_finance", "extract_erp", "extract_crm"],
        ["process"],
        ["summarize"],
        ["dept_report", "hq_summary"],
        ["hq_report"],
    ]


def test_a_skip_edge_puts_a_node_below_its_deepest_upstream() -> None:
    g = GraphBuilder("skip").python("a", "m:f").python("b", "m:f", after=["a"]).python("c", "m:f", after=["a", "b"])
    assert layers(g.build()) == [["a"], ["b"], ["c"]]


def test_a_layer_is_ordered_by_where_its_upstreams_sit() -> None:
    g = GraphBuilder("cross").python("x", "m:f").python("y", "m:f")
    g.python("from_y", "m:f", after=["y"]).python("from_x", "m:f", after=["x"])
    assert layers(g.build()) == [["x", "y"], ["from_x", "from_y"]]


@pytest.mark.parametrize(
    ("row", "state"),
    [
        ({"succeeded": 5, "failed": 1, "running": 3}, "failed"),
        ({"succeeded": 5, "upstream_failed": 1}, "failed"),
        ({"running": 1, "pending": 9}, "running"),
        ({"succeeded": 4}, "succeeded"),
        ({"succeeded": 4, "cancelled": 1}, "cancelled"),
        ({"succeeded": 4, "cancelled": 1, "pending": 1}, "pending"),
        ({"ready": 2, "pending": 1, "cancelled": 1}, "ready"),
        ({"pending": 3}, "pending"),
        ({}, "pending"),
    ],
)
def test_a_nodes_overall_state_is_the_worst_news_first(row: dict[str, int], state: str) -> None:
    assert node_state(row) == state


def test_every_node_is_drawn_with_its_state_and_class(example: Graph) -> None:
    drawn = nodes_of(parse(graph_svg(example, COUNTS)))
    assert list(drawn) == [n.name for n in example.nodes]
    states = {name: g.attrib["data-state"] for name, g in drawn.items()}
    assert states == {
        "extract_finance": "succeeded",
        "extract_erp": "failed",
        "extract_crm": "cancelled",
        "process": "running",
        "summarize": "ready",
        "dept_report": "pending",
        "hq_summary": "failed",
        "hq_report": "pending",  # no counts for it: nothing known yet
    }
    assert all(f"state-{states[name]}" in g.attrib["class"].split() for name, g in drawn.items())


def test_progress_is_a_stacked_bar_and_a_done_count(example: Graph) -> None:
    erp = nodes_of(parse(graph_svg(example, COUNTS)))["extract_erp"]
    segments = {
        r.attrib["class"].split()[1]: float(r.attrib["width"])
        for r in erp.iter(f"{SVG}rect")
        if "seg" in r.attrib.get("class", "")
    }
    assert set(segments) == {"seg-succeeded", "seg-running", "seg-ready", "seg-failed"}
    assert segments["seg-succeeded"] == pytest.approx(180 * 812 / 1000, abs=0.1)
    assert sum(segments.values()) == pytest.approx(180, abs=0.3)
    assert "812/1000 done · 12 failed" in texts(erp)
    assert "\u00d7 1000 partitions" in texts(erp)


def test_without_counts_nodes_say_only_whether_they_are_partitioned(example: Graph) -> None:
    root = parse(graph_svg(example))
    drawn = nodes_of(root)
    assert {g.attrib["data-state"] for g in drawn.values()} == {"pending"}
    assert "\u00d7 P partitions" in texts(drawn["process"]) and "single task" in texts(drawn["hq_report"])
    assert not [r for r in root.iter(f"{SVG}rect") if "seg" in r.attrib.get("class", "")]


def test_edges_carry_their_mode_as_class_and_title(example: Graph) -> None:
    root = parse(graph_svg(example, COUNTS))
    edges = [g for g in root.iter(f"{SVG}g") if "data-from" in g.attrib]
    modes = Counter(next(c for c in g.attrib["class"].split() if c.startswith("edge-")) for g in edges)
    assert modes == {"edge-same": 5, "edge-all": 1, "edge-broadcast": 1}
    fan_in = next(g for g in edges if g.attrib["data-to"] == "hq_summary")
    assert fan_in.attrib["data-from"] == "summarize" and "edge-all" in fan_in.attrib["class"]
    assert (fan_in.findtext(f"{SVG}title") or "").startswith("summarize → hq_summary: all")
    legend = next(g for g in root.iter(f"{SVG}g") if g.attrib.get("class") == "legend")
    assert {"same partition", "all (fan-in)", "broadcast", "upstream failed"} <= set(texts(legend))


def test_the_svg_is_accessible_and_sized(example: Graph) -> None:
    root = parse(graph_svg(example))
    assert root.tag == f"{SVG}svg" and root.attrib["role"] == "img"
    assert root.attrib["aria-label"] == "Graph year_end_report: 8 nodes, 7 edges"
    assert root.attrib["viewBox"] == f"0 0 {root.attrib['width']} {root.attrib['height']}"
    assert int(root.attrib["width"]) > 5 * 200 and root.find(f"{SVG}style") is not None


def test_links_wrap_each_node_and_are_escaped(example: Graph) -> None:
    root = parse(graph_svg(example, link=lambda name: f"/ui/events/1?node={name}&view=tasks"))
    anchors = root.findall(f"{SVG}a")
    assert [a.attrib["href"] for a in anchors][:2] == [
        "/ui/events/1?node=extract_finance&view=tasks",
        "/ui/events/1?node=extract_erp&view=tasks",
    ]
    assert all(a.find(f"{SVG}g") is not None for a in anchors) and len(anchors) == 8


def hostile_graph() -> Graph:
    evil = '<script>alert("x")</script>'
    action = PythonAction("m:f")
    first = Node(evil, action, partitioned=True, description="<img src=x onerror='boom'> & \x01")
    second = Node("b", action, partitioned=True, after=(Dependency(evil, DepMode.SAME),))
    return Graph('<g name="x">', "t", (first, second))


def test_hostile_names_and_descriptions_produce_no_markup() -> None:
    svg = graph_svg(hostile_graph(), {}, link=lambda name: f'javascript:"{name}"')
    assert "<script" not in svg and "<img" not in svg and "\x01" not in svg
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag in (f"{SVG}script", f"{SVG}img", "script", "img")]
    drawn = nodes_of(root)
    assert list(drawn) == ['<script>alert("x")</script>', "b"]
    assert drawn['<script>alert("x")</script>'].findtext(f"{SVG}title", "").endswith("onerror='boom'> & ")
    assert root.attrib["aria-label"] == 'Graph <g name="x">: 2 nodes, 1 edges'


def test_a_description_from_the_builder_is_escaped() -> None:
    graph = GraphBuilder("d").python("a", "m:f", description="Sum <b>all</b> & more").build()
    svg = graph_svg(graph)
    assert "<b>" not in svg
    assert nodes_of(parse(svg))["a"].findtext(f"{SVG}title") == "a: Sum <b>all</b> & more"


def test_escape_keeps_xml_well_formed() -> None:
    assert escape("a<b>&\"'\x00\x1f\ufffe") == "a&lt;b&gt;&amp;&quot;&#x27;"


def test_size_grows_with_the_graph_never_with_the_tasks(example: Graph) -> None:
    few = {name: {"succeeded": 3, "running": 2, "pending": 5} for name in COUNTS}
    many = {name: {"succeeded": 3_000_000, "running": 2_000_000, "pending": 5_000_000} for name in COUNTS}
    assert abs(len(graph_svg(example, many)) - len(graph_svg(example, few))) < 500  # only longer numbers
    wide = GraphBuilder("wide")
    for i in range(40):
        wide.python(f"n{i}", "m:f", after=[f"n{i - 1}"] if i else [])
    assert len(graph_svg(wide.build(), {})) < 40 * 1200
