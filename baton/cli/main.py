"""The ``baton`` command. Thin: it builds settings and objects and calls the library.

Exit codes: 0 success; 1 the event failed (or was cancelled); 2 bad input or usage;
3 the backend failed (database unreachable, schema mismatch).
"""

from __future__ import annotations

import gc
import json
import logging
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live

from baton.cli import dev as cli_dev
from baton.cli import remote as cli_remote
from baton.cli import server as cli_server
from baton.cli import show as cli_show
from baton.cli.dev import LOOPBACK
from baton.cli.display import node_table
from baton.cli.options import (
    backend_for,
    db_option,
    handle_errors,
    json_option,
    param_option,
    server_options,
    settings_from,
    wait_option,
)
from baton.cli.remote import through_server
from baton.cli.types import BYTES, EVENT_ID, NAME, RESOURCE, SECONDS, TASK_ID, TEXT, Seconds
from baton.controller.loop import Controller, ControllerConfig
from baton.engine.planner import critical_path, plan
from baton.engine.states import EventState
from baton.errors import BackendError, NotFound
from baton.graphs.model import Graph
from baton.graphs.params import parse_cli_params, validate_params
from baton.graphs.spec import load_graph_file
from baton.local.stack import run_stack
from baton.local.workers import LocalWorkers, check_fits, labels_needed, local_log_dir
from baton.server.serve import DEFAULT_PORT
from baton.settings import Settings
from baton.store.migrate import HEAD
from baton.store.protocol import Store, WorkerLink

# The shape of local runs and of a worker (per process, so flags, not settings).
DEFAULT_WORKERS, DEFAULT_SLOTS = 2, 4


def event_params(graph: Graph, pairs: Sequence[str]) -> dict[str, Any]:
    return validate_params(graph, parse_cli_params(graph, pairs))


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging on stderr.")
@click.version_option(package_name="baton")
def cli(verbose: int) -> None:
    """Baton: events become per-partition task graphs, run by task servers that pull work."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- graphs ---------------------------------------------------------------------------------


@cli.command()
@click.argument("graph_file", type=click.Path())
@handle_errors
def validate(graph_file: str) -> None:
    """Check a graph file; print a one-line summary or every problem found."""
    graph = load_graph_file(graph_file)
    click.echo(
        f"ok: graph {graph.name} (event type {graph.event_type}), {len(graph.nodes)} nodes, "
        f"{len(graph.params)} parameters"
    )


@cli.command("plan")
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
    if as_json:
        click.echo(json.dumps(data))
        return
    for node in graph.nodes:
        deps = ", ".join(f"{d.upstream} ({d.mode})" for d in node.edges()) or "-"
        click.echo(f"{node.name:<24} {planned.node_totals[node.name]:>7} task(s)   after: {deps}")
    click.echo(f"total {len(planned.tasks)} tasks; critical path ({len(path)} waves): {' → '.join(path)}")


@cli.group()
def graph() -> None:
    """Register and list graph versions (events are routed by type to the latest)."""


@graph.command("register")
@click.argument("graph_files", nargs=-1, required=True, type=click.Path())
@db_option
@handle_errors
def graph_register(graph_files: Sequence[str], db: str | None, config_file: str | None) -> None:
    """Validate and register graph files; an unchanged graph keeps its version."""
    graphs = [(f, load_graph_file(f)) for f in graph_files]  # validate all before writing any
    backend = backend_for(settings_from(config_file, db=db))
    for file, g in graphs:
        record = backend.register_graph(g, source=str(Path(file).resolve()))
        click.echo(f"{record.name} v{record.version} (event type {record.event_type}) id {record.id}")


@graph.command("list")
@db_option
@handle_errors
def graph_list(db: str | None, config_file: str | None) -> None:
    """List registered graphs and versions."""
    for record in backend_for(settings_from(config_file, db=db)).graphs():
        registered = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.registered_at))
        click.echo(f"{record.id:>4}  {record.name} v{record.version}  event type {record.event_type}  {registered}")


# --- running ----------------------------------------------------------------------------------


@cli.command()
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
        cli_show.finish(backend, event.id, [n.name for n in graph_def.nodes], as_json)
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
    cli_show.finish(backend, event_id, order, as_json)


def _drive(
    backend: Store, settings: Settings, event_id: int, order: list[str], as_json: bool, local: LocalWorkers
) -> None:
    """Run the controller until the event is finished, showing progress unless --json."""
    stop = threading.Event()
    controller = Controller(backend, ControllerConfig.from_settings(settings, event_id=event_id))
    thread = threading.Thread(target=controller.run_until_finished, args=(event_id, stop), daemon=True)
    thread.start()
    console = Console(stderr=True)
    show = not as_json and console.is_terminal
    try:
        if show:
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


@cli.command()
@click.option("--poll-s", type=SECONDS, default=None, help="Longest idle wait between looks at the store.")
@db_option
@handle_errors
def controller(poll_s: float | None, db: str | None, config_file: str | None) -> None:
    """Run the controller until interrupted: expand events, expire lost leases."""
    settings = settings_from(config_file, db=db, poll_s=poll_s)
    backend = backend_for(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    click.echo(f"controller running on {settings.db}", err=True)
    Controller(backend, ControllerConfig.from_settings(settings)).run(stop)


def _stop_on_signals(stop: threading.Event) -> None:
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


@cli.command()
@click.option(
    "--slots", type=click.IntRange(1, 4096), default=DEFAULT_SLOTS, show_default=True, help="Tasks of cost 1 at once."
)
@click.option("--resource", "resources", multiple=True, type=RESOURCE, help="Named capacity, e.g. mem_mb=8192.")
@click.option("--label", "labels", multiple=True, type=NAME, help="A label tasks may require; repeat for several.")
@click.option("--name", default="", type=TEXT, help="Worker name shown in status and audit (default: host name).")
@click.option("--lease-s", type=SECONDS, default=None)
@click.option("--heartbeat-s", type=SECONDS, default=None)
@click.option("--poll-s", type=SECONDS, default=None)
@click.option("--idle-poll-s", type=SECONDS, default=None, help="Safety-net poll when PostgreSQL pushes changes.")
@click.option("--drain-s", type=Seconds(inclusive=True), default=None, help="On SIGTERM, how long tasks may finish.")
@click.option("--log-tail-s", type=SECONDS, default=None, help="How often running tasks' new output is sent.")
@click.option("--max-result-bytes", type=BYTES, default=None)
@click.option("--max-log-bytes", type=BYTES, default=None)
@click.option("--exit-when-idle", "idle_s", type=SECONDS, default=None, help="Exit after this many idle seconds.")
@click.option("--event", "only_event", type=EVENT_ID, default=None, help="Take only this event's tasks.")
@click.option("--stats-file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="With --server: on exit, write each route's request count and durations here as JSON.")  # fmt: skip
@server_options
@db_option
@handle_errors
def worker(
    slots: int,
    resources: Sequence[tuple[str, int]],
    labels: Sequence[str],
    name: str,
    idle_s: float | None,
    only_event: int | None,
    stats_file: str | None,
    server: str | None,
    token: str | None,
    ca_file: str | None,
    db: str | None,
    config_file: str | None,
    **flags: Any,
) -> None:
    """Run a task server: pull tasks that fit, run them, report. SIGTERM drains it.

    With --server URL --token T it holds no database credentials: it works through a
    baton server, whose lease, heartbeat and caps it keeps."""
    from baton.worker.loop import Worker, WorkerConfig

    settings = settings_from(config_file, db=db, **flags)
    capacity = {"slots": slots, **dict(resources)}
    shape: dict[str, Any] = {"capacity": capacity, "labels": frozenset(labels), "name": name,
                             "exit_when_idle_s": idle_s, "event_id": only_event}  # fmt: skip
    link: WorkerLink
    times = None
    if stats_file and server is None:
        raise click.UsageError("--stats-file counts requests to a server: give --server too")
    if server is None:
        link, where = backend_for(settings), settings.db
        config = WorkerConfig.from_settings(settings, **shape)
    else:
        from baton.client.session import Session
        from baton.client.timing import CallTimes
        from baton.client.worker_link import HttpLink

        times = CallTimes() if stats_file else None
        remote = HttpLink(Session(server, token or "", ca_file=ca_file, times=times))
        terms = remote.terms()
        config = WorkerConfig.from_settings(
            settings, lease_s=terms.lease_s, heartbeat_s=terms.heartbeat_s, max_result_bytes=terms.max_result_bytes,
            max_log_bytes=terms.max_log_bytes, idle_poll_s=max(settings.idle_poll_s, 3 * terms.long_poll_s), **shape,
        )  # fmt: skip
        link, where = remote, server
    instance = Worker(link, config)
    instance.install_signal_handlers()
    click.echo(f"worker {instance.id} capacity {capacity} labels {sorted(labels)} on {where}", err=True)
    try:
        instance.run()
    finally:
        if times is not None and stats_file:
            times.dump(Path(stats_file))


# --- events -----------------------------------------------------------------------------------


@cli.command()
@click.argument("event_type", type=TEXT)
@param_option
@click.option("--key", default=None, type=TEXT, help="Idempotency key: the same key returns the same event.")
@wait_option
@json_option
@db_option
@handle_errors
@through_server(cli_remote.submit)
def submit(
    event_type: str,
    params: Sequence[str],
    key: str | None,
    wait: bool,
    as_json: bool,
    db: str | None,
    config_file: str | None,
) -> None:
    """Raise an event; a running controller routes it to the latest graph for its type."""
    backend = backend_for(settings_from(config_file, db=db))
    record = backend.latest_graph(event_type)
    from baton.graphs.spec import graph_from_dict

    values = event_params(graph_from_dict(record.spec, source=f"{record.name} v{record.version}", stored=True), params)
    event, created = backend.submit(record.id, values, key=key)
    if not wait:
        cli_show.submitted(event, created, as_json)
        return
    _wait_for(backend, event.id)
    cli_show.finish(backend, event.id, [n for n in record.spec["nodes"]], as_json)


def _wait_for(backend: Store, event_id: int) -> None:
    warned = False
    started = time.monotonic()
    while not backend.event_state(event_id).terminal:
        backend.wait_for_change(1.0)
        if (not warned and time.monotonic() - started > cli_show.STILL_SUBMITTED_S
                and backend.event_state(event_id) is EventState.SUBMITTED):  # fmt: skip
            click.echo(cli_show.STILL_SUBMITTED, err=True)
            warned = True


@cli.command()
@click.argument("event_id", type=EVENT_ID, required=False)
@json_option
@db_option
@handle_errors
@through_server(cli_remote.status)
def status(event_id: int | None, as_json: bool, db: str | None, config_file: str | None) -> None:
    """Show one event per node, or the most recent events."""
    backend = backend_for(settings_from(config_file, db=db))
    if event_id is None:
        cli_show.event_list(backend.events(limit=20), as_json)
        return
    order = list(backend.graph(backend.event(event_id).graph_id).spec["nodes"])
    cli_show.event_status(backend, event_id, order, as_json)


@cli.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--node", default=None, type=TEXT)
@click.option("--partition", default=None, type=TEXT)
@click.option("--all-attempts", is_flag=True, help="Every attempt, not only each task's last.")
@db_option
@handle_errors
@through_server(cli_remote.logs)
def logs(
    event_id: int, node: str | None, partition: str | None, all_attempts: bool, db: str | None, config_file: str | None
) -> None:
    """Print captured output and errors of an event's tasks."""
    backend = backend_for(settings_from(config_file, db=db))
    event = backend.event(event_id)
    tasks = {t.id: t for t in backend.tasks(event_id, node=node, partition=partition)}
    if not tasks:
        known = ", ".join(backend.graph(event.graph_id).spec["nodes"])
        raise NotFound(f"event {event_id} has no task for node {node!r} partition {partition!r} (nodes: {known})")
    attempts = backend.attempts(sorted(tasks))
    if not all_attempts:
        last = {a.task_id: a for a in attempts}
        attempts = list(last.values())
    for a in attempts:
        t = tasks[a.task_id]
        cli_show.attempt_log(cli_show.task_place(t.node, t.partition), a.attempt, str(a.outcome), a.worker_id,
                             a.exit_code, a.error, a.stdout, a.stderr)  # fmt: skip


@cli.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--task", "task_id", type=TASK_ID, default=None)
@db_option
@handle_errors
def audit(event_id: int, task_id: int | None, db: str | None, config_file: str | None) -> None:
    """Why things are as they are: every decision about an event, with its cause."""
    backend = backend_for(settings_from(config_file, db=db))
    backend.event(event_id)  # an unknown event is an error (exit 2), not an empty audit
    for a in backend.audit(event_id=event_id, task_id=task_id):
        stamp = time.strftime("%H:%M:%S", time.localtime(a.at)) + f".{int(a.at * 1000) % 1000:03d}"
        detail = json.dumps(dict(a.detail)) if a.detail else ""
        click.echo(f"{stamp} {a.actor:<22} {a.action:<22} {a.cause} {detail}")


@cli.command()
@click.argument("event_id", type=EVENT_ID)
@db_option
@handle_errors
@through_server(cli_remote.cancel)
def cancel(event_id: int, db: str | None, config_file: str | None) -> None:
    """Cancel an event: queued tasks are dropped, running ones are stopped."""
    cli_show.cancelled(backend_for(settings_from(config_file, db=db)).cancel(event_id))


@cli.command()
@click.argument("event_id", type=EVENT_ID)
@click.option("--partition", default=None, type=TEXT, help="Only this partition's failed tasks (and what they block).")
@click.option("--node", default=None, type=TEXT, help="Only this node's failed tasks (and what they block).")
@wait_option
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Run here with N local workers.")
@click.option(
    "--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 4096), help="Slots per local worker."
)
@json_option
@db_option
@handle_errors
@through_server(cli_remote.rerun)
def rerun(
    event_id: int,
    partition: str | None,
    node: str | None,
    wait: bool,
    workers: int | None,
    slots: int,
    as_json: bool,
    db: str | None,
    config_file: str | None,
) -> None:
    """Re-run failed or cancelled tasks and what depends on them; successes are kept.

    With --workers N it runs them here, like 'baton run' (controller plus N local workers);
    otherwise a running controller and workers pick them up."""
    settings = settings_from(config_file, db=db)
    backend = backend_for(settings)
    count = backend.rerun(event_id, partition=partition, node=node)
    graph_def = backend.graph_of(backend.event(event_id).graph_id)
    order = [n.name for n in graph_def.nodes]
    if workers is not None:
        _run_locally(backend, settings, event_id, order, workers, slots, labels_needed(graph_def), as_json)
        return
    if not wait:
        cli_show.rerun_queued(event_id, count, as_json)
        return
    _wait_for(backend, event_id)
    cli_show.finish(backend, event_id, order, as_json)


@cli.command()
@click.option("--partitions", "-P", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option(
    "--variant",
    type=click.Choice(["noop", "sleep"]),
    default="noop",
    show_default=True,
    help="Task bodies: nothing, or 20 ms of sleep.",
)
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 256))
@click.option("--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 4096))
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option("--remote", is_flag=True, help="Workers reach the store through a baton server on loopback.")
@json_option
@db_option
@handle_errors
def bench(partitions: int, variant: str, workers: int, slots: int, repeat: int, remote: bool, as_json: bool,
          db: str | None, config_file: str | None) -> None:  # fmt: skip
    """Measure Baton's overhead: the year-end shape (6P + 2 tasks) with no-op or sleeping tasks.

    Without --db each run gets a fresh SQLite file; with a postgresql:// URL the runs share that
    database. With --remote, a baton server on loopback holds the database and the workers hold
    only its URL and a token. With --json, one JSON object per run."""
    from baton.bench.run import BenchConfig, describe, fresh_sqlite_url, run_once

    config = BenchConfig(partitions=partitions, variant=variant, workers=workers, slots=slots, remote=remote)
    runs = []
    for _ in range(repeat):
        url, folder = (db, None) if db else fresh_sqlite_url()
        settings = settings_from(config_file, db=url)
        figures = run_once(settings, config, (folder or Path(".baton")) / "bench-logs")
        if folder is not None:  # kept (with the workers' logs) only when the run failed
            shutil.rmtree(folder, ignore_errors=True)
        runs.append(figures)
        click.echo(json.dumps(figures) if as_json else describe(figures))
    if not as_json and repeat > 1:
        rates = sorted(r["tasks_per_s"] for r in runs if r["tasks_per_s"])
        click.echo(f"median of {repeat}: {rates[len(rates) // 2]:,.0f} tasks/s")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@db_option
@handle_errors
def db_upgrade(db: str | None, config_file: str | None) -> None:
    """Bring the schema to this release's revision (every process also does this on start)."""
    settings = settings_from(config_file, db=db)
    done = backend_for(settings, migrate=False).migrate()
    if done.before.current == done.after:
        click.echo(f"schema at revision {done.after}: up to date")
    else:
        click.echo(f"schema upgraded from {done.before.describe()} to revision {done.after}")


@db.command("current")
@db_option
@handle_errors
def db_current(db: str | None, config_file: str | None) -> None:
    """Show the schema's revision, and whether this release would upgrade it."""
    settings = settings_from(config_file, db=db)
    revision = backend_for(settings, migrate=False).schema_revision()
    if revision.at_head:
        click.echo(f"revision {revision.describe()} (head): up to date")
    else:
        click.echo(f"revision {revision.describe()}; this release is at {HEAD}: run `baton db upgrade`")


cli_server.register(cli)
cli_dev.register(cli)


def main(argv: Sequence[str] | None = None) -> None:
    # Everything imported so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise rescan it all while a plan or a batch allocates.
    gc.freeze()
    cli.main(args=argv, prog_name="baton")
