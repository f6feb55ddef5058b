"""A graph as inline SVG: pure, O(nodes + edges) whatever the partition count, every name escaped.

Layout: one column per depth (the longest path from a root), left to right, each column ordered
by where its upstream nodes sit (one barycentre pass), so most edges run straight.

Theming: every colour comes from a CSS class (``state-*`` on a node, ``seg-*`` on its progress
bar, ``edge-same``/``edge-all``/``edge-broadcast`` on an edge) and a rule in the SVG's own
``<style>``. The rules read custom properties with defaults (``--baton-failed``,
``--baton-edge-all``…), so the SVG looks right standalone (as a file or an ``<img>``) and a page
themes it by setting those properties. The rules are scoped under ``.baton-graph`` so that,
inlined in HTML, they never restyle the rest of the page; the UI's Content-Security-Policy allows
that ``<style>`` by its digest (:mod:`baton.server.ui.security`), and nothing in the drawing carries a
``style`` attribute.

Text to read (names, titles, the label) shows invisible characters as markers
(:mod:`baton.server.ui.invisibles`); attributes that are data (``data-node``) hold the name as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache

from baton.engine.states import TaskState
from baton.graphs.model import DepMode, Graph, Node
from baton.server.ui.invisibles import reveal

__all__ = ["STATE_COLOURS", "escape", "graph_css", "graph_svg", "layers", "node_state", "shown"]

Counts = Mapping[str, Mapping[str, int]]

BOX_W, COL_GAP, ROW_GAP, PAD = 200, 72, 18, 16
BOX_H_PLAIN, BOX_H_COUNTS = 48, 76
BAR_X, BAR_Y, BAR_W, BAR_H = 10, 42, 180, 10
CHAR_W = 7.4  # a rough width of one character of the 13 px name, to truncate long names
LEGEND_ROW_H = 22
TIMES = "\u00d7"  # the multiplication sign of the note "(times) 1000 partitions"

STATE_COLOURS: Mapping[str, str] = {
    "pending": "#dadce0",
    "ready": "#8ab4f8",
    "running": "#1a73e8",
    "succeeded": "#1e8e3e",
    "failed": "#d93025",
    "upstream_failed": "#f29900",
    "cancelled": "#5f6368",
}
BAR_ORDER = ("succeeded", "running", "ready", "pending", "failed", "upstream_failed", "cancelled")
EDGE_MEANING = {
    DepMode.SAME: "same: each partition waits for its own upstream task",
    DepMode.ALL: "all: every task waits for the whole upstream node",
    DepMode.BROADCAST: "broadcast: the single upstream task feeds every task",
}
EDGE_LEGEND = {DepMode.SAME: "same partition", DepMode.ALL: "all (fan-in)", DepMode.BROADCAST: "broadcast"}

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """``text`` safe as SVG/XML text or a quoted attribute: markup escaped (quotes too), and the
    characters XML cannot hold at all dropped, so hostile input can neither inject markup nor
    make the document unparseable."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def shown(text: str) -> str:
    """``text`` to be read (an SVG text, title or label): invisible characters shown as markers
    (:mod:`baton.server.ui.invisibles`), then escaped. Attributes that are data (``data-node``) are
    only escaped."""
    return escape(reveal(text))


def _var(name: str) -> str:
    return f"var(--baton-{name.replace('_', '-')}, {STATE_COLOURS[name]})"


@cache
def graph_css() -> str:
    """The rules of the drawing's own ``<style>`` (the page's Content-Security-Policy allows
    exactly this text by its digest: :mod:`baton.server.ui.security`)."""
    states = "".join(
        f".baton-graph .seg-{s},.baton-graph .swatch-{s}{{fill:{_var(s)}}}"
        f".baton-graph .state-{s} .box{{stroke:{_var(s)}}}"
        for s in STATE_COLOURS
    )
    return (
        ".baton-graph text{font:11px system-ui,sans-serif;fill:var(--baton-text,#202124)}"
        ".baton-graph .name{font-weight:600;font-size:13px}.baton-graph .muted{fill:var(--baton-muted,#5f6368)}"
        ".baton-graph .box{fill:var(--baton-box,#fff);stroke-width:1.5}.baton-graph a:hover .box{stroke-width:3}"
        ".baton-graph .state-pending .box{stroke:var(--baton-pending-border,#9aa0a6)}"
        ".baton-graph .track{fill:var(--baton-track,#f1f3f4)}.baton-graph .edge .line{fill:none}"
        ".baton-graph .edge-same .line{stroke:var(--baton-edge-same,#80868b);stroke-width:1.5}"
        ".baton-graph .edge-all .line{stroke:var(--baton-edge-all,#3c4043);stroke-width:3;stroke-dasharray:7 4}"
        ".baton-graph .edge-broadcast .line{stroke:var(--baton-edge-broadcast,#9334e6);stroke-width:2;"
        "stroke-dasharray:1 4;stroke-linecap:round}"
        ".baton-graph .edge-same .head{fill:var(--baton-edge-same,#80868b)}"
        ".baton-graph .edge-all .head{fill:var(--baton-edge-all,#3c4043)}"
        f".baton-graph .edge-broadcast .head{{fill:var(--baton-edge-broadcast,#9334e6)}}{states}"
    )


def depths(graph: Graph) -> dict[str, int]:
    """Each node's longest path from a root (``graph.nodes`` is topological, so one pass)."""
    depth: dict[str, int] = {}
    for node in graph.nodes:
        depth[node.name] = 1 + max((depth[d.upstream] for d in node.edges()), default=-1)
    return depth


def layers(graph: Graph) -> list[list[str]]:
    """Node names by depth, each layer ordered by the mean position of its nodes' upstreams in
    the layers before (ties keep graph order), which removes most edge crossings."""
    depth = depths(graph)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for node in graph.nodes:
        columns[depth[node.name]].append(node.name)
    position: dict[str, float] = {}
    ordered = []
    for column in columns:
        column = sorted(column, key=lambda name: _barycentre(graph.node(name), position))
        position.update({name: i - (len(column) - 1) / 2 for i, name in enumerate(column)})
        ordered.append(column)
    return ordered


def _barycentre(node: Node, position: Mapping[str, float]) -> float:
    ups = [position[d.upstream] for d in node.edges()]
    return sum(ups) / len(ups) if ups else 0.0


def node_state(row: Mapping[str, int]) -> str:
    """A node's overall state from its task counts by state, worst news first."""
    n = {s.value: row.get(s.value, 0) for s in TaskState}
    total = sum(n.values())
    if n["failed"] or n["upstream_failed"]:
        return "failed"
    if n["running"]:
        return "running"
    if total and n["succeeded"] == total:
        return "succeeded"
    if n["cancelled"] and n["succeeded"] + n["cancelled"] == total:
        return "cancelled"
    return "ready" if n["ready"] else "pending"


def _boxes(columns: list[list[str]], box_h: int) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Top-left corner of every node's box, and the drawing's width and height (before the legend)."""
    tallest = max((len(c) for c in columns), default=0)
    height = tallest * box_h + max(tallest - 1, 0) * ROW_GAP
    corners = {}
    for i, column in enumerate(columns):
        top = PAD + (height - (len(column) * box_h + (len(column) - 1) * ROW_GAP)) // 2
        for j, name in enumerate(column):
            corners[name] = (PAD + i * (BOX_W + COL_GAP), top + j * (box_h + ROW_GAP))
    width = 2 * PAD + len(columns) * BOX_W + max(len(columns) - 1, 0) * COL_GAP
    return corners, width, height + 2 * PAD


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _bar(row: Mapping[str, int], total: int) -> str:
    """The node's tasks as one stacked bar, a segment per state that has any."""
    parts = [f'<rect class="track" x="{BAR_X}" y="{BAR_Y}" width="{BAR_W}" height="{BAR_H}" rx="2"/>']
    x = float(BAR_X)
    for state in BAR_ORDER:
        count = row.get(state, 0)
        if count <= 0 or total <= 0:
            continue
        w = BAR_W * count / total
        parts.append(
            f'<rect class="seg seg-{state}" x="{x:.1f}" y="{BAR_Y}" width="{w:.1f}" height="{BAR_H}">'
            f"<title>{count} {state.replace('_', ' ')}</title></rect>"
        )
        x += w
    return "".join(parts)


def _progress_text(row: Mapping[str, int], total: int) -> str:
    text = f"{row.get('succeeded', 0)}/{total} done"
    failed = row.get("failed", 0) + row.get("upstream_failed", 0)
    if failed:
        return f"{text} · {failed} failed"
    cancelled = row.get("cancelled", 0)
    return f"{text} · {cancelled} cancelled" if cancelled else text


def _node(node: Node, row: Mapping[str, int] | None, corner: tuple[int, int], box_h: int) -> str:
    """One node's group: box, name, partition note and, given counts, its progress."""
    total = sum(row.get(s.value, 0) for s in TaskState) if row is not None else None
    state = node_state(row or {})
    many = str(total) if total is not None else "P"
    note = f"{TIMES} {many} partition{'' if many == '1' else 's'}" if node.partitioned else "single task"
    if node.partitions_from is not None and not total:  # planned when its discovery succeeds
        note = f"{TIMES} partitions from {node.partitions_from}"
    about = f"{node.name}: {node.description}" if node.description else node.name
    name = escape(_clip(reveal(node.name), int((BOX_W - 20) / CHAR_W)))
    parts = [
        f'<g class="node state-{state}" data-node="{escape(node.name)}" data-state="{state}" '
        f'transform="translate({corner[0]},{corner[1]})"><title>{shown(about)}</title>',
        f'<rect class="box" width="{BOX_W}" height="{box_h}" rx="8"/>',
        f'<text class="name" x="10" y="19">{name}</text>',
        f'<text class="muted" x="10" y="35">{note}</text>',
    ]
    if row is not None and total is not None:
        parts.append(_bar(row, total))
        parts.append(f'<text x="10" y="68">{_progress_text(row, total)}</text>')
    return "".join(parts) + "</g>"


def _edge(upstream: str, node: str, mode: DepMode, corners: Mapping[str, tuple[int, int]], box_h: int) -> str:
    """A curve from the upstream box's right side to the downstream box's left, with its head."""
    x1, y1 = corners[upstream][0] + BOX_W, corners[upstream][1] + box_h // 2
    x2, y2 = corners[node][0] - 2, corners[node][1] + box_h // 2
    bend = (x2 - x1) / 2
    title = f"{upstream} → {node}: {EDGE_MEANING[mode]}"
    return (
        f'<g class="edge edge-{mode.value}" data-from="{escape(upstream)}" data-to="{escape(node)}">'
        f"<title>{shown(title)}</title>"
        f'<path class="line" d="M{x1} {y1}C{x1 + bend:.0f} {y1} {x2 - bend:.0f} {y2} {x2 - 6} {y2}"/>'
        f'<path class="head" d="M{x2 - 8} {y2 - 5}L{x2} {y2}L{x2 - 8} {y2 + 5}Z"/></g>'
    )


def _legend_items(with_states: bool) -> list[tuple[int, str]]:
    """(width, markup at the origin) of each legend entry."""
    items = []
    for mode, label in EDGE_LEGEND.items():
        sample = f'<g class="edge edge-{mode.value}"><path class="line" d="M0 0H28"/></g>'
        items.append((int(46 + len(label) * 6), f'{sample}<text class="muted" x="34" y="4">{label}</text>'))
    for state in STATE_COLOURS if with_states else ():
        label = state.replace("_", " ")
        swatch = f'<rect class="swatch-{state}" y="-5" width="10" height="10" rx="2"/>'
        items.append((int(30 + len(label) * 6), f'{swatch}<text class="muted" x="14" y="4">{label}</text>'))
    return items


def _legend(items: Iterable[tuple[int, str]], top: int, width: int) -> tuple[str, int]:
    """The entries laid out in rows that wrap at ``width``; the markup and its height."""
    x, y, parts = PAD, top + LEGEND_ROW_H // 2, []
    for item_w, markup in items:
        if x > PAD and x + item_w > width - PAD:
            x, y = PAD, y + LEGEND_ROW_H
        parts.append(f'<g transform="translate({x},{y})">{markup}</g>')
        x += item_w
    return f'<g class="legend">{"".join(parts)}</g>', y + LEGEND_ROW_H // 2 - top


def graph_svg(graph: Graph, counts: Counts | None = None, *, link: Callable[[str], str] | None = None) -> str:
    """The graph as one ``<svg>`` element: nodes layered by depth, edges styled by mode and,
    given task counts per node and state, each node's progress and overall state."""
    box_h = BOX_H_COUNTS if counts is not None else BOX_H_PLAIN
    corners, width, height = _boxes(layers(graph), box_h)
    width = max(width, 420)
    edges = [(d.upstream, n.name, d.mode) for n in graph.nodes for d in n.edges()]
    body = [_edge(up, name, mode, corners, box_h) for up, name, mode in edges]
    for node in graph.nodes:
        row = None if counts is None else counts.get(node.name, {})
        markup = _node(node, row, corners[node.name], box_h)
        body.append(f'<a href="{escape(link(node.name))}">{markup}</a>' if link else markup)
    legend, legend_h = _legend(_legend_items(counts is not None), height, width)
    height += legend_h + PAD // 2
    label = f"Graph {graph.name}: {len(graph.nodes)} nodes, {len(edges)} edges"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="baton-graph" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{shown(label)}">'
        f"<style>{graph_css()}</style>{''.join(body)}{legend}</svg>"
    )
