"""An event's timeline as an inline SVG Gantt chart, one swimlane per node, never one bar per task.

A node of 100,000 partitions draws as much as a node of one: its envelope (first task ready to
last task ended), and per time bin how many of its tasks were queued and how many running, as
two step-shaped areas whose heights are rounded to whole pixels of the lane (so a long run of
equal bins is one path command). The output is O(lanes x bins) and stays a few tens of
kilobytes at the backend's default 200 bins.

The critical path (the chain of tasks, each the last its successor waited for) is drawn over
the lanes: per step a lighter bar for its queue wait and a strong one for its run.

Colours come from classes and a ``<style>`` scoped under ``.baton-timeline`` that reads the same
custom properties as the graph drawing (``--baton-ready`` for queued, ``--baton-running``), see
:mod:`baton.server.ui.drawing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate, groupby

from baton.engine.durations import humanize_s
from baton.server.ui.drawing import escape, shown
from baton.server.ui.invisibles import reveal
from baton.store.records import PathStep, Timeline, TimelineLane

__all__ = ["TIMELINE_CSS", "humanize_s", "running_series", "timeline_svg"]

LABEL_W, PAD, AXIS_H, LANE_H, LANE_GAP, STRIP_H, LEGEND_H = 250, 12, 28, 34, 6, 26, 28
CHAR_W = 7.4  # a rough width of one character of the 13 px lane name
NICE_STEPS_S = (
    *(m * 10.0**e for e in range(-3, 1) for m in (1, 2, 5)),
    10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip
TIMELINE_CSS = (  # the page's Content-Security-Policy allows exactly this text by its digest
    ".baton-timeline text{font:11px system-ui,sans-serif;fill:var(--baton-text,#202124)}"
    ".baton-timeline .name{font-weight:600;font-size:13px}.baton-timeline .muted{fill:var(--baton-muted,#5f6368)}"
    ".baton-timeline .envelope{fill:var(--baton-envelope,#e8eaed)}"
    ".baton-timeline .queued{fill:var(--baton-ready,#8ab4f8)}"
    ".baton-timeline .running{fill:var(--baton-running,#1a73e8)}"
    ".baton-timeline .grid{stroke:var(--baton-grid,#dadce0);stroke-width:1}"
    ".baton-timeline .now{stroke:var(--baton-now,#d93025);stroke-dasharray:4 3}"
    ".baton-timeline .path-queued{fill:var(--baton-path-queued,#fdd663);stroke:#fff;stroke-width:1}"
    ".baton-timeline .path-run{fill:var(--baton-path,#e37400);stroke:#fff;stroke-width:1}"
    ".baton-timeline .path-link{fill:none;stroke:var(--baton-path,#e37400);stroke-width:1.5;stroke-dasharray:3 2}"
)
STYLE = f"<style>{TIMELINE_CSS}</style>"


def running_series(lane: TimelineLane) -> tuple[list[int], list[int]]:
    """Per bin, how many of the lane's tasks were queued (ready, not started) and running
    (started, not ended) at the bin's end, from the cumulative per-bin counts."""
    ready = accumulate(lane.ready)
    started = list(accumulate(lane.started))
    ended = accumulate(lane.ended)
    queued = [max(r - s, 0) for r, s in zip(ready, started, strict=True)]
    running = [max(s - e, 0) for s, e in zip(started, ended, strict=True)]
    return queued, running


class _Scale:
    """Seconds since the timeline's start to x, over the plot right of the labels."""

    def __init__(self, timeline: Timeline, now: float | None, width: int) -> None:
        self.start = timeline.start
        self.right = max(timeline.end, now if now is not None else timeline.end)
        self.span = self.right - self.start if self.right > self.start else 1.0
        self.plot_w = width - LABEL_W - PAD

    def x(self, t: float) -> float:
        return LABEL_W + (min(max(t, self.start), self.right) - self.start) / self.span * self.plot_w


def _lane_top(i: int) -> int:
    return AXIS_H + i * (LANE_H + LANE_GAP)


def _step_path(heights: Sequence[int]) -> str:
    """A step-shaped area in bin units (x) and pixels (y, up), one command pair per run."""
    parts = ["M0 0"]
    level = 0
    for value, run in groupby(heights):
        if value != level:
            parts.append(f"V{value}")
            level = value
        parts.append(f"h{sum(1 for _ in run)}")
    return "".join(parts) + "V0Z"


def _pixels(values: Sequence[int], peak: int) -> list[int]:
    """Counts as whole pixels of the strip, any nonzero count at least one pixel tall."""
    return [max(1, round(v / peak * STRIP_H)) if v > 0 else 0 for v in values]


def _average(total_s: float, count: int) -> str:
    return humanize_s(total_s / count) if count > 0 else "—"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _envelope(lane: TimelineLane, scale: _Scale) -> str:
    """The faint bar from the lane's first task ready to its last end (or on, while unfinished)."""
    if lane.first_ready_at is None:
        return ""
    done = lane.last_end_at is not None and sum(lane.ended) >= lane.tasks
    end = lane.last_end_at if done and lane.last_end_at is not None else scale.right
    x1, x2 = scale.x(lane.first_ready_at), scale.x(end)
    return f'<rect class="envelope" x="{x1:.1f}" y="2" width="{max(x2 - x1, 1):.1f}" height="{LANE_H - 4}" rx="3"/>'


def _density(lane: TimelineLane, timeline: Timeline, scale: _Scale) -> tuple[str, int, int]:
    """The queued area (stacked over running) and the running one; and both peaks."""
    queued, running = running_series(lane)
    both = [q + r for q, r in zip(queued, running, strict=True)]
    peak = max(both, default=0)
    if peak == 0:
        return "", max(queued, default=0), max(running, default=0)
    bin_w = timeline.bin_s / scale.span * scale.plot_w
    place = f'transform="translate({LABEL_W},{LANE_H - 2}) scale({bin_w:.4g},-1)"'
    markup = (
        f'<path class="queued" {place} d="{_step_path(_pixels(both, peak))}"/>'
        f'<path class="running" {place} d="{_step_path(_pixels(running, peak))}"/>'
    )
    return markup, max(queued), max(running)


def _lane(i: int, lane: TimelineLane, timeline: Timeline, scale: _Scale) -> str:
    """One node's swimlane: label, envelope and density strip."""
    density, peak_queued, peak_running = _density(lane, timeline, scale)
    wait, run = _average(lane.queue_s, sum(lane.started)), _average(lane.run_s, sum(lane.ended))
    tasks = f"{lane.tasks} task{'' if lane.tasks == 1 else 's'}"
    title = f"{lane.node}: {tasks}, at most {peak_queued} queued and {peak_running} running at once"
    name = escape(_clip(reveal(lane.node), int((LABEL_W - 2 * PAD) / CHAR_W)))
    return (
        f'<g class="lane" data-lane="{escape(lane.node)}" transform="translate(0,{_lane_top(i)})">'
        f"<title>{shown(title)}; average wait {wait}, run {run}</title>"
        f'<text class="name" x="{PAD}" y="14">{name}</text>'
        f'<text class="muted" x="{PAD}" y="29">{tasks} · wait {wait} · run {run}</text>'
        f"{_envelope(lane, scale)}{density}</g>"
    )


def _tick_step(span: float) -> float:
    """The smallest round step that puts at most six ticks on the axis."""
    for step in NICE_STEPS_S:
        if span / step <= 6:
            return float(step)
    return 86400.0 * math.ceil(span / 86400 / 6)


def _axis(scale: _Scale, bottom: int) -> str:
    """Ticks in time since the start, each with a faint line down across the lanes."""
    step = _tick_step(scale.span)
    parts = []
    for k in range(int(scale.span / step) + 1):
        x = scale.x(scale.start + k * step)
        anchor = "end" if x > LABEL_W + scale.plot_w - 24 else "middle"  # the last label stays inside
        parts.append(
            f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{bottom}"/>'
            f'<text class="muted" x="{x:.1f}" y="{AXIS_H - 10}" text-anchor="{anchor}">{humanize_s(k * step)}</text>'
        )
    return f'<g class="axis">{"".join(parts)}</g>'


def _step_title(step: PathStep, right: float) -> str:
    where = f"{step.node}[{step.partition}]" if step.partition else step.node
    if step.ready_at is None:
        return f"{where}: not ready yet"
    queued = humanize_s((step.started_at if step.started_at is not None else right) - step.ready_at)
    if step.started_at is None:
        return f"{where}: queued {queued} so far"
    if step.finished_at is None:
        return f"{where}: queued {queued}, running for {humanize_s(right - step.started_at)}"
    return f"{where}: queued {queued}, ran {humanize_s(step.finished_at - step.started_at)} ({step.state})"


def _path_step(step: PathStep, ready: float, y: float, scale: _Scale) -> tuple[str, float, float]:
    """One step's bars (queue part, run part) and the x where it begins and ends."""
    started = step.started_at if step.started_at is not None else scale.right
    finished = step.finished_at if step.finished_at is not None else scale.right
    x1, x2 = scale.x(ready), scale.x(started)
    x3 = scale.x(finished) if step.started_at is not None else x2
    bars = f'<rect class="path-queued" x="{x1:.1f}" y="{y - 4:.0f}" width="{max(x2 - x1, 0):.1f}" height="8"/>'
    if step.started_at is not None:
        bars += f'<rect class="path-run" x="{x2:.1f}" y="{y - 4:.0f}" width="{max(x3 - x2, 1.5):.1f}" height="8"/>'
    title = shown(_step_title(step, scale.right))
    return f'<g class="step" data-task="{step.task_id}"><title>{title}</title>{bars}</g>', x1, x3


def _critical_path(path: Sequence[PathStep], lanes: dict[str, int], scale: _Scale) -> str:
    """The path's steps in their nodes' lanes, linked in order; steps with no time are left out."""
    steps, points = [], []
    for step in path:
        ready = step.ready_at if step.ready_at is not None else step.started_at
        if step.node not in lanes or ready is None:
            continue
        y = _lane_top(lanes[step.node]) + LANE_H / 2
        markup, x1, x2 = _path_step(step, ready, y, scale)
        steps.append(markup)
        points += [f"{x1:.1f} {y:.0f}", f"{x2:.1f} {y:.0f}"]
    link = f'<path class="path-link" d="M{"L".join(points)}"/>' if points else ""
    return f'<g class="critical-path" data-critical-path="true">{link}{"".join(steps)}</g>'


def _legend(top: int, with_path: bool) -> str:
    items = [("envelope", "first ready → last end"), ("queued", "queued"), ("running", "running")]
    if with_path:
        items += [("path-queued", "critical path: queued"), ("path-run", "critical path: ran")]
    parts, x = [], PAD
    for css, label in items:
        parts.append(f'<rect class="{css}" x="{x}" y="{top + 4}" width="12" height="10"/>')
        parts.append(f'<text class="muted" x="{x + 16}" y="{top + 13}">{label}</text>')
        x += 34 + int(len(label) * 6)
    return f'<g class="legend">{"".join(parts)}</g>'


def timeline_svg(
    timeline: Timeline, path: Sequence[PathStep] = (), *, now: float | None = None, width: int = 960
) -> str:
    """The timeline as one ``<svg>``: a swimlane per node, a time axis, the critical path over
    them and, given ``now``, a line where the present is."""
    width = max(width, LABEL_W + 200)
    scale = _Scale(timeline, now, width)
    lanes_bottom = _lane_top(len(timeline.lanes))
    height = lanes_bottom + LEGEND_H + PAD // 2
    body = [_axis(scale, lanes_bottom)]
    body += [_lane(i, lane, timeline, scale) for i, lane in enumerate(timeline.lanes)]
    if path:
        body.append(_critical_path(path, {lane.node: i for i, lane in enumerate(timeline.lanes)}, scale))
    if now is not None and now >= timeline.start:
        x = scale.x(now)
        body.append(f'<line class="now" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{lanes_bottom}"/>')
    label = f"Timeline of event {timeline.event_id}: {len(timeline.lanes)} nodes over {humanize_s(scale.span)}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="baton-timeline" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{shown(label)}">'
        f"{STYLE}{''.join(body)}{_legend(lanes_bottom, bool(path))}</svg>"
    )
