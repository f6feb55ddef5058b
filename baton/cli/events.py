"""The event commands: ``run`` on this machine, and ``submit``, ``status``, ``logs``, ``audit``,
``cancel`` and ``rerun`` against a store. Each has one body, written against the store's
protocols; ``--db`` or ``--server`` chooses the store (:func:`baton.cli.options.opens_store`).
What only works against the database from this machine (``run``, ``audit``, ``rerun --workers``)
refuses ``--server``: the first two do not take it, the last asks :meth:`Opened.database`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live

from baton.cli import show
from baton.cli.dev import LOOPBACK
from baton.cli.display import node_table
from baton.cli.graphs import event_params
from baton.cli.options import (
    DEFAULT_SLOTS,
    DEFAULT_WORKERS,
    EventStore,
    Opened,
    backend_for,
    db_option,
    handle_errors,
    json_option,
    opens_store,
    param_option,
    settings_from,
    wait_option,
)
from baton.cli.types import EVENT_ID, NAME, SECONDS, TASK_ID, TEXT, Moment
from baton.controller.loop import Controller, ControllerConfig
from baton.engine.states import EventState
from baton.errors import BackendError, NotFound
from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY
from baton.graphs.spec import graph_from_dict, load_graph_file
from baton.local.stack import run_stack
from baton.local.workers import LocalWorkers, check_fits, labels_needed, local_log_dir
from baton.server.serve import DEFAULT_PORT
from baton.settings import Settings
from baton.store.protocol import Store

WORKERS_HERE = "--workers runs tasks here, against the database; through --server, leave it out"


@click.command()
@click.argument("graph_file", type=click.Path())
@param_option
@click.option(
    "--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 256), help="Local worker processes."
)
@click.option(
    "--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 4096), help="Slots per worker."
)
@click.option(
    "--label", "labels", multiple=True, type=NAME, help="Labels of the local workers (default: all the graph needs)."
)
@click.option("--key", default=None, type=TEXT, help="Idempotency key: the same key runs the event once.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object, nothing else.")
@click.option("--lease-s", type=SECONDS, default=None, help="Lease length in seconds.")
@click.option("--ui", is_flag=True, help="Serve the web UI on 127.0.0.1 and keep the run's page open until Ctrl-C.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="With --ui.")
@db_option
@handle_errors
def run(
    graph_file: str,
    params: Sequence[str],
    workers: int,
    slots: int,
    labels: Sequence[str],
    key: str | None,
    as_json: bool,
    lease_s: float | None,
    ui: bool,
    port: int,
    db: str | None,
    config_file: str | None,
) -> None:
    """Run one event of GRAPH_FILE on this machine: controller plus local workers (with --ui,
    watched in the browser)."""
    graph_def = load_graph_file(graph_file)
    values = event_params(graph_def, params)  # bad input stops here: nothing is written
    check_fits(graph_def, {"slots": slots}, labels or labels_needed(graph_def))
    settings = settings_from(config_file, db=db, lease_s=lease_s)
    backend = backend_for(settings)
    record = backend.register_graph(graph_def, source=str(Path(graph_file).resolve()))
    event, _ = backend.submit(record.id, values, key=key)
    if event.state.terminal:  # an idempotency key that already ran: report it, run nothing
        show.finish(backend, event.id, [n.name for n in graph_def.nodes], as_json)
        return
    labels = labels or labels_needed(graph_def)
    if ui:
        click.echo(f"event {event.id} submitted", err=True)
        run_stack(backend, settings, LOOPBACK, port, workers, slots, labels, lambda line: click.echo(line, err=True),
                  page=f"/ui/events/{event.id}")  # fmt: skip
        return
    _run_locally(backend, settings, event.id, [n.name for n in graph_def.nodes], workers, slots, labels, as_json)


def _run_locally(
    backend: Store,
    settings: Settings,
    event_id: int,
    order: list[str],
    workers: int,
    slots: int,
    labels: Sequence[str],
    as_json: bool,
) -> None:
    """A controller in this process and local workers, until the event is finished."""
    local = LocalWorkers(settings, workers, {"slots": slots}, local_log_dir(settings), labels, event_id=event_id)
    local.start()
    try:
        _drive(backend, settings, event_id, order, as_json, local)
    finally:
        local.stop()
    show.finish(backend, event_id, order, as_json)


def _drive(
    backend: Store, settings: Settings, event_id: int, order: list[str], as_json: bool, local: LocalWorkers
) -> None:
    """Run the controller until the event is finished, showing progress unless --json."""
    stop = threading.Event()
    controller = Controller(backend, ControllerConfig.from_settings(settings, event_id=event_id))
    thread = threading.Thread(target=controller.run_until_finished, args=(event_id, stop), daemon=True)
    thread.start()
    console = Console(stderr=True)
    live_view = not as_json and console.is_terminal
    try:
        if live_view:
            with Live(console=console, refresh_per_second=4, transient=True) as live:
                while thread.is_alive():
                    live.update(node_table(backend.event(event_id), backend.node_counts(event_id), order))
                    thread.join(0.25)
        else:
            while thread.is_alive():
                thread.join(0.25)
                if local.alive() == 0:
                    raise BackendError("every local worker exited; see the logs in " + str(local.log_dir))
    finally:
        stop.set()
        thread.join()


@click.command()
@click.argument("event_type", type=TEXT)
@param_option
@click.option("--key", default=None, type=TEXT, help="Idempotency key: the same key returns the same event.")
@click.option(
    "--deadline",
    type=Moment(),
    default=None,
    help="When it must have ended: ISO 8601 with a zone, or +4h (forecast, marked at risk and missed).",
)
@click.option(
    "--priority",
    type=click.IntRange(MIN_EVENT_PRIORITY, MAX_EVENT_PRIORITY),
    default=0,
    show_default=True,
    help=f"Added to each task's node priority ({MIN_EVENT_PRIORITY} to {MAX_EVENT_PRIORITY}; higher runs first).",
)
@wait_option
@json_option
@handle_errors
@opens_store(server=True)
def submit(opened: Opened, event_type: str, params: Sequence[str], key: str | None, deadline: float | None,
           priority: int, wait: bool, as_json: bool) -> None:  # fmt: skip
    """Raise an event; a running controller routes it to the latest graph for its type."""
    store = opened.store
    record = store.latest_graph(event_type)
    graph = graph_from_dict(record.spec, source=f"{record.name} v{record.version}", stored=True)
    event, created = store.submit(record.id, event_params(graph, params), key=key, deadline_at=deadline,
                                  priority=priority)  # fmt: skip
    if not wait:
        show.submitted(event, created, as_json)
        return
    wait_for_event(store, event.id)
    show.finish(store, event.id, list(record.spec["nodes"]), as_json)


def wait_for_event(store: EventStore, event_id: int) -> None:
    """Until the event has finished, saying once if no controller seems to take it."""
    warned = False
    started = time.monotonic()
    while not store.event_state(event_id).terminal:
        store.wait_for_change(1.0)
        if (not warned and time.monotonic() - started > show.STILL_SUBMITTED_S
                and store.event_state(event_id) is EventState.SUBMITTED):  # fmt: skip
            click.echo(show.STILL_SUBMITTED, err=True)
            warned = True


@click.command()
@click.argument("event_id", type=EVENT_ID, required=False)
@json_option
@handle_errors
@opens_store(server=True)
def status(opened: Opened, event_id: int | None, as_json: bool) -> None:
    """Show one event per node, or the most recent events."""
    store = opened.store
    if event_id is None:
        show.event_list(store.events(limit=20), as_json)
        return
    order = list(store.graph(store.event(event_id).graph_id).spec["nodes"])
    show.event_status(store, event_id, order, as_json)


@click.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--node", default=None, type=TEXT)
@click.option("--partition", default=None, type=TEXT)
@click.option("--all-attempts", is_flag=True, help="Every attempt, not only each task's last.")
@handle_errors
@opens_store(server=True)
def logs(opened: Opened, event_id: int, node: str | None, partition: str | None, all_attempts: bool) -> None:
    """Print captured output and errors of an event's tasks."""
    store = opened.store
    event = store.event(event_id)
    tasks = {t.id: t for t in store.tasks(event_id, node=node, partition=partition)}
    if not tasks:
        known = ", ".join(store.graph(event.graph_id).spec["nodes"])
        raise NotFound(f"event {event_id} has no task for node {node!r} partition {partition!r} (nodes: {known})")
    attempts = store.attempts(sorted(tasks))
    if not all_attempts:
        attempts = list({a.task_id: a for a in attempts}.values())  # each task's last
    for a in attempts:
        show.attempt_log(show.task_place(tasks[a.task_id].node, tasks[a.task_id].partition), a)


@click.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--task", "task_id", type=TASK_ID, default=None)
@handle_errors
@opens_store(server=False)
def audit(opened: Opened, event_id: int, task_id: int | None) -> None:
    """Why things are as they are: every decision about an event, with its cause."""
    store = opened.store
    store.event(event_id)  # an unknown event is an error (exit 2), not an empty audit
    for a in store.audit(event_id=event_id, task_id=task_id):
        stamp = time.strftime("%H:%M:%S", time.localtime(a.at)) + f".{int(a.at * 1000) % 1000:03d}"
        detail = json.dumps(dict(a.detail)) if a.detail else ""
        click.echo(f"{stamp} {a.actor:<22} {a.action:<22} {a.cause} {detail}")


@click.command()
@click.argument("event_id", type=EVENT_ID)
@handle_errors
@opens_store(server=True)
def cancel(opened: Opened, event_id: int) -> None:
    """Cancel an event: queued tasks are dropped, running ones are stopped."""
    show.cancelled(opened.store.cancel(event_id))


@click.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--partition", default=None, type=TEXT, help="Only this partition's failed tasks (and what they block).")
@click.option("--node", default=None, type=TEXT, help="Only this node's failed tasks (and what they block).")
@wait_option
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Run here with N local workers.")
@click.option(
    "--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 4096), help="Slots per local worker."
)
@json_option
@handle_errors
@opens_store(server=True)
def rerun(
    opened: Opened,
    event_id: int,
    partition: str | None,
    node: str | None,
    wait: bool,
    workers: int | None,
    slots: int,
    as_json: bool,
) -> None:
    """Re-run failed or cancelled tasks and what depends on them; successes are kept.

    --node naming a discovery (the partitions_from of other nodes) runs it again even if it
    succeeded: the new partitions it lists are planned, the others keep their tasks.

    With --workers N it runs them here, like 'baton run' (controller plus N local workers);
    otherwise a running controller and workers pick them up."""
    here = None if workers is None else (workers, *opened.database(WORKERS_HERE))  # refused before any change
    store = opened.store
    count = store.rerun(event_id, partition=partition, node=node)
    if here is None and not wait:
        show.rerun_queued(event_id, count, as_json)
        return
    graph_def = store.graph_of(store.event(event_id).graph_id)
    order = [n.name for n in graph_def.nodes]
    if here is None:
        wait_for_event(store, event_id)
        show.finish(store, event_id, order, as_json)
        return
    local_workers, settings, database = here
    _run_locally(database, settings, event_id, order, local_workers, slots, labels_needed(graph_def), as_json)


def register(cli: click.Group) -> None:
    for command in (run, submit, status, logs, audit, cancel, rerun):
        cli.add_command(command)
