"""``baton validate``, ``plan`` and ``graph``: graph files checked, planned and registered."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from baton.cli.options import Opened, handle_errors, json_option, opens_store, param_option
from baton.engine.planner import critical_path, plan
from baton.graphs.model import Graph
from baton.graphs.params import parse_cli_params, validate_params
from baton.graphs.spec import load_graph_file


def event_params(graph: Graph, pairs: Sequence[str]) -> dict[str, Any]:
    """An event's parameters from ``-p NAME=VALUE`` pairs, checked against the graph."""
    return validate_params(graph, parse_cli_params(graph, pairs))


@click.command()
@click.argument("graph_file", type=click.Path())
@handle_errors
def validate(graph_file: str) -> None:
    """Check a graph file; print a one-line summary or every problem found."""
    graph = load_graph_file(graph_file)
    click.echo(
        f"ok: graph {graph.name} (event type {graph.event_type}), {len(graph.nodes)} nodes, "
        f"{len(graph.params)} parameters"
    )


@click.command("plan")
@click.argument("graph_file", type=click.Path())
@param_option
@json_option
@handle_errors
def plan_cmd(graph_file: str, params: Sequence[str], as_json: bool) -> None:
    """Show the tasks an event would create: per node, total and the critical path."""
    graph = load_graph_file(graph_file)
    planned = plan(graph, event_params(graph, params))
    path = critical_path(graph)
    data = {
        "graph": graph.name,
        "tasks": len(planned.tasks),
        "nodes": dict(planned.node_totals),
        "critical_path": path,
        "waves": len(path),
    }
    dynamic = {n.name: {"partitions_from": n.partitions_from, "max_partitions": n.max_partitions}
               for n in graph.nodes if n.dynamic}  # fmt: skip
    if dynamic:
        data["dynamic"] = dynamic
    if as_json:
        click.echo(json.dumps(data))
        return
    for node in graph.nodes:
        deps = ", ".join(f"{d.upstream} ({d.mode})" for d in node.edges()) or "-"
        count = f"{planned.node_totals[node.name]:>7} task(s)"
        if node.dynamic:
            count = f"a task per partition {node.partitions_from} lists (at most {node.max_partitions:,})"
        click.echo(f"{node.name:<24} {count}   after: {deps}")
    more = " (and the dynamic partitions' when their discoveries succeed)" if dynamic else ""
    click.echo(f"total {len(planned.tasks)} tasks{more}; critical path ({len(path)} waves): {' → '.join(path)}")


@click.group("graph")
def graph_group() -> None:
    """Register and list graph versions (events are routed by type to the latest)."""


@graph_group.command("register")
@click.argument("graph_files", nargs=-1, required=True, type=click.Path())
@handle_errors
@opens_store(server=False)
def graph_register(opened: Opened, graph_files: Sequence[str]) -> None:
    """Validate and register graph files; an unchanged graph keeps its version."""
    graphs = [(f, load_graph_file(f)) for f in graph_files]  # validate all before writing any
    for file, g in graphs:
        record = opened.store.register_graph(g, source=str(Path(file).resolve()))
        click.echo(f"{record.name} v{record.version} (event type {record.event_type}) id {record.id}")


@graph_group.command("list")
@handle_errors
@opens_store(server=False)
def graph_list(opened: Opened) -> None:
    """List registered graphs and versions."""
    for record in opened.store.graphs():
        registered = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.registered_at))
        click.echo(f"{record.id:>4}  {record.name} v{record.version}  event type {record.event_type}  {registered}")


def register(cli: click.Group) -> None:
    for command in (validate, plan_cmd, graph_group):
        cli.add_command(command)
