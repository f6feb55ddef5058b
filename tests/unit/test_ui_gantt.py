"""The timeline chart: durations for people, per-bin series, lanes, critical path, size bound."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest

from baton.server.ui.gantt import humanize_s, running_series, timeline_svg
from baton.store.records import PathStep, Timeline, TimelineLane

SVG = "{http://www.w3.org/2000/svg}"
START = 1_700_000_000.0


def lane(node: str, ready: list[int], started: list[int], ended: list[int], **fields: float | None) -> TimelineLane:
    values: dict[str, float | None] = {
        "first_ready_at": START,
        "first_start_at": START + 1,
        "last_end_at": START + 50,
        "queue_s": 20.0,
        "run_s": 40.0,
        **fields,
    }
    return TimelineLane(node, sum(ready), ready=tuple(ready), started=tuple(started), ended=tuple(ended), **values)  # type: ignore[arg-type]


DONE = lane("extract", [4, 0, 0, 0], [2, 2, 0, 0], [0, 2, 1, 1])
LATE = lane("load", [0, 0, 2, 0], [0, 0, 1, 0], [0, 0, 0, 0], first_ready_at=START + 20, last_end_at=None)
TIMELINE = Timeline(9, START, START + 40, 10.0, (DONE, LATE))
PATH = [
    PathStep(11, "extract", "p1", "succeeded", START, START + 2.5, START + 14),
    PathStep(12, "load", "", "running", START + 22, START + 30, None),
]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def lanes_of(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-lane"]: g for g in root.iter(f"{SVG}g") if "data-lane" in g.attrib}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (0.85, "850 ms"),
        (0.9996, "1 s"),
        (12.34, "12.3 s"),
        (30, "30 s"),
        (59.97, "1 min"),
        (120, "2 min"),
        (245, "4 min 05 s"),
        (3599.7, "1 h"),
        (7800, "2 h 10 min"),
        (-2, "-2 s"),
        (float("nan"), "?"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert humanize_s(seconds) == text


def test_queued_and_running_are_cumulative_per_bin() -> None:
    assert running_series(DONE) == ([2, 0, 0, 0], [2, 2, 1, 0])
    assert running_series(LATE) == ([0, 0, 1, 1], [0, 0, 1, 1])


def test_one_lane_per_node_in_order_with_averages() -> None:
    root = parse(timeline_svg(TIMELINE))
    lanes = lanes_of(root)
    assert list(lanes) == ["extract", "load"]
    labels = [t.text for t in lanes["extract"].iter(f"{SVG}text")]
    assert labels == ["extract", "4 tasks · wait 5 s · run 10 s"]  # 20 s over 4 started, 40 s over 4 ended
    assert root.attrib["role"] == "img" and root.attrib["viewBox"].startswith("0 0 960 ")


def test_averages_guard_nodes_with_nothing_started() -> None:
    idle = lane("idle", [3, 0], [0, 0], [0, 0], first_start_at=None, last_end_at=None, queue_s=0, run_s=0)
    root = parse(timeline_svg(Timeline(1, START, START + 2, 1.0, (idle,))))
    assert [t.text for t in lanes_of(root)["idle"].iter(f"{SVG}text")][1] == "3 tasks · wait — · run —"


def test_envelopes_end_at_the_last_end_or_run_on_while_unfinished() -> None:
    lanes = lanes_of(parse(timeline_svg(TIMELINE, width=1000)))
    plot_left, plot_right = 250, 1000 - 12

    def span(node: str) -> tuple[float, float]:
        rect = next(r for r in lanes[node].iter(f"{SVG}rect") if r.attrib["class"] == "envelope")
        return float(rect.attrib["x"]), float(rect.attrib["x"]) + float(rect.attrib["width"])

    assert span("extract") == pytest.approx((plot_left, plot_right), abs=0.2)  # its last end (50) is past the end
    assert span("load") == pytest.approx((plot_left + (plot_right - plot_left) / 2, plot_right), abs=0.2)


def test_density_paths_show_queued_over_running() -> None:
    lanes = lanes_of(parse(timeline_svg(TIMELINE)))
    paths = {p.attrib["class"]: p.attrib["d"] for p in lanes["extract"].iter(f"{SVG}path")}
    # peak 4 (2 queued + 2 running) is the strip's full 26 px; one running task is 7 px (6.5 rounded)
    assert paths == {"queued": "M0 0V26h1V13h1V6h1V0h1V0Z", "running": "M0 0V13h2V6h1V0h1V0Z"}


def test_the_critical_path_is_drawn_in_its_nodes_lanes() -> None:
    root = parse(timeline_svg(TIMELINE, PATH, now=START + 40))
    group = next(g for g in root.iter(f"{SVG}g") if "data-critical-path" in g.attrib)
    steps = [g for g in group.iter(f"{SVG}g") if "data-task" in g.attrib]
    assert [s.findtext(f"{SVG}title") for s in steps] == [
        "extract[p1]: queued 2.5 s, ran 11.5 s (succeeded)",
        "load: queued 8 s, running for 10 s",
    ]
    assert [r.attrib["class"] for r in steps[1].iter(f"{SVG}rect")] == ["path-queued", "path-run"]
    link = group.find(f"{SVG}path")
    assert link is not None and link.attrib["d"].count("L") == 3  # two steps, two points each
    assert root.find(f"{SVG}line[@class='now']") is not None


def test_no_path_means_no_path_group() -> None:
    svg = timeline_svg(TIMELINE)
    assert "data-critical-path" not in svg and "now" not in [e.attrib.get("class") for e in parse(svg).iter()]


def test_steps_outside_the_lanes_or_without_times_are_left_out() -> None:
    path = [
        PathStep(1, "gone", "", "succeeded", START, START + 1, START + 2),
        PathStep(2, "load", "p", "pending", None, None, None),
    ]
    group = next(g for g in parse(timeline_svg(TIMELINE, path)).iter(f"{SVG}g") if "data-critical-path" in g.attrib)
    assert list(group) == []


def test_the_axis_starts_at_zero_and_uses_round_steps() -> None:
    axis = next(g for g in parse(timeline_svg(TIMELINE)).iter(f"{SVG}g") if g.attrib.get("class") == "axis")
    assert [t.text for t in axis.iter(f"{SVG}text")] == ["0 s", "10 s", "20 s", "30 s", "40 s"]
    long = Timeline(1, START, START + 5400, 27.0, (DONE,))
    axis = next(g for g in parse(timeline_svg(long)).iter(f"{SVG}g") if g.attrib.get("class") == "axis")
    assert [t.text for t in axis.iter(f"{SVG}text")] == [
        "0 s",
        "15 min",
        "30 min",
        "45 min",
        "1 h",
        "1 h 15 min",
        "1 h 30 min",
    ]


def test_names_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    timeline = Timeline(1, START, START + 40, 10.0, (lane(evil, [1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]),))
    svg = timeline_svg(timeline, [PathStep(1, evil, "<p>", "succeeded", START, START + 1, START + 2)])
    assert "<script" not in svg and "<p>" not in svg
    root = parse(svg)
    assert list(lanes_of(root)) == [evil]
    assert any((t.text or "").startswith(f"{evil}[<p>]: queued") for t in root.iter(f"{SVG}title"))


def noisy_lane(node: str, bins: int, rnd: random.Random) -> TimelineLane:
    """A lane whose counts change every bin: the worst case for the step paths."""
    ready = [rnd.randint(0, 900) for _ in range(bins)]
    started = [rnd.randint(0, r) for r in ready]
    ended = [rnd.randint(0, s) for s in started]
    return lane(node, ready, started, ended, queue_s=1e6, run_s=2e6)


def test_the_output_stays_bounded_for_8_lanes_of_200_bins() -> None:
    rnd = random.Random(7)
    lanes = tuple(noisy_lane(f"node_with_a_long_name_{i}", 200, rnd) for i in range(8))
    timeline = Timeline(1, START, START + 6000, 30.0, lanes)
    path = [
        PathStep(
            i,
            f"node_with_a_long_name_{i}",
            f"part{i}",
            "succeeded",
            START + i * 700,
            START + i * 700 + 100,
            START + i * 700 + 600,
        )
        for i in range(8)
    ]
    svg = timeline_svg(timeline, path, now=START + 6000)
    assert len(lanes_of(parse(svg))) == 8
    assert len(svg.encode()) < 30_000
