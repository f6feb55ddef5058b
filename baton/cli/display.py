"""What people see: live progress per node while an event runs, and the summary after."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from baton.engine.diagnose import live_workers, unplaceable
from baton.engine.states import TaskState
from baton.store.protocol import ReadStore
from baton.store.records import EventRecord, WaitingGroup

COLUMNS = [s.value for s in TaskState]
STYLE = {"succeeded": "green", "failed": "red", "upstream_failed": "red", "running": "yellow", "cancelled": "magenta"}


def node_table(event: EventRecord, counts: Mapping[str, Mapping[str, int]], order: list[str]) -> Group:
    """A header line (event, graph version, state, elapsed) over a table of tasks per node and state."""
    elapsed = (event.finished_at or time.time()) - event.submitted_at
    header = Text(f"event {event.id} · {event.type} v{event.graph_version} · {event.state} · {elapsed:.1f}s")
    if event.paused:
        header.append(" · paused")
    if event.priority:
        header.append(f" · priority {event.priority:+d}")
    deadline = deadline_line(event)
    if deadline:
        header.append(f"\n{deadline}")
    table = Table()
    table.add_column("node")
    shown = [c for c in COLUMNS if any(counts.get(n, {}).get(c) for n in order)] or ["pending"]
    for column in shown:
        table.add_column(column, justify="right", style=STYLE.get(column))
    table.add_column("total", justify="right")
    for node in order:
        row = counts.get(node, {})
        table.add_row(node, *[str(row.get(c, 0) or "") for c in shown], str(sum(row.values())))
    return Group(header, table)


def deadline_line(event: EventRecord) -> str:
    """``deadline 2027-01-04 08:00:00 +08:00 · at risk · forecast end ...``; "" without a deadline."""
    if event.deadline_at is None:
        return ""
    mark = ("missed" if event.missed_at else "at risk" if event.at_risk_at
            else "met" if event.finished_at else "on track")  # fmt: skip
    line = f"deadline {_local(event.deadline_at)} · {mark}"
    if event.finished_at is None:
        forecast = _local(event.predicted_end_at) if event.predicted_end_at else "none yet (no history)"
        line += f" · forecast end {forecast}"
    return line


def _local(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(at))


def waiting_lines(groups: Sequence[WaitingGroup]) -> list[str]:
    """``baton status``: each group of tasks not running, with why (baton.store.waiting)."""
    if not groups:
        return []
    names = [g.node or "(event)" for g in groups]
    width = max(len(n) for n in names)
    return ["not running:"] + [
        f"  {n:<{width}}  {g.reason:<9}  {g.sentence}" for n, g in zip(names, groups, strict=True)
    ]


def totals(counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in counts.values():
        for state, n in row.items():
            out[state] = out.get(state, 0) + n
    return out


def waiting_notes(backend: ReadStore, event_id: int) -> list[str]:
    """Why ready tasks of a running event may never start (see baton.engine.diagnose)."""
    event = backend.event(event_id)
    if event.state.terminal:
        return []
    counts = backend.node_counts(event_id)
    ready = {node: states.get("ready", 0) for node, states in counts.items()}
    workers = live_workers(backend.workers(), time.time())
    return unplaceable(backend.graph_of(event.graph_id), ready, workers)


def summary(backend: ReadStore, event_id: int) -> dict[str, Any]:
    """The machine-readable end-of-run summary (``--json``)."""
    event = backend.event(event_id)
    counts = backend.node_counts(event_id)
    failed = backend.tasks(event_id, state=TaskState.FAILED, limit=20)
    end = event.finished_at or time.time()
    return {
        "event_id": event.id,
        "type": event.type,
        "graph_version": event.graph_version,
        "state": event.state.value,
        "error": event.error,
        "tasks_total": event.tasks_total,
        "tasks": totals(counts),
        "nodes": {n: dict(c) for n, c in counts.items()},
        "duration_s": round(end - event.submitted_at, 3),
        "waiting": waiting_notes(backend, event_id),
        "waiting_reasons": [asdict(g) for g in backend.waiting(event_id)] if event.finished_at is None else [],
        "priority": event.priority,
        "deadline_at": event.deadline_at,
        "predicted_end_at": event.predicted_end_at,
        "at_risk_at": event.at_risk_at,
        "missed_at": event.missed_at,
        "failed": [
            {"task_id": t.id, "node": t.node, "partition": t.partition, "attempts": t.attempt, "error": t.error}
            for t in failed
        ],
    }


def print_summary(console: Console, backend: ReadStore, event_id: int, order: list[str]) -> None:
    event = backend.event(event_id)
    console.print(node_table(event, backend.node_counts(event_id), order))
    data = summary(backend, event_id)
    if event.error:
        console.print(f"[red]event {event_id} failed[/red]: {escape(event.error)}", highlight=False)
    for f in data["failed"]:
        where = f"{f['node']}[{f['partition']}]" if f["partition"] else f["node"]
        console.print(f"[red]failed[/red] {escape(where)} after {f['attempts']} attempt(s): {escape(str(f['error']))}")
    if data["failed"]:
        console.print(
            f"see: baton logs {event_id} --node NODE [--partition P]; fix the cause, then baton rerun {event_id}"
        )
    sinks = _sink_results(backend, event_id, order)
    for node, result in sinks.items():
        console.print(f"[bold]{escape(node)}[/bold] → {escape(result)}", soft_wrap=True)


def _sink_results(backend: ReadStore, event_id: int, order: list[str]) -> dict[str, str]:
    """Results of the last node when it is a single task (e.g. the HQ report's files)."""
    if not order:
        return {}
    tasks = backend.tasks(event_id, node=order[-1], limit=2)  # only whether there is exactly one
    if len(tasks) != 1 or tasks[0].result_json is None:
        return {}
    text = json.dumps(json.loads(tasks[0].result_json))
    return {order[-1]: text if len(text) < 400 else text[:397] + "..."}


def stderr_console() -> Console:
    return Console(file=sys.stderr)
