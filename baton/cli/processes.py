"""``baton controller`` and ``baton worker``: the long-running processes, until interrupted."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from baton.cli.options import DEFAULT_SLOTS, backend_for, db_option, handle_errors, server_options, settings_from
from baton.cli.types import BYTES, EVENT_ID, HOLD, NAME, RESOURCE, SECONDS, TEXT, Seconds
from baton.controller.loop import Controller, ControllerConfig
from baton.store.protocol import WorkerLink
from baton.wire.workers import MAX_HOLD


@click.command()
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


@click.command()
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
@click.option("--hold", type=HOLD, default="auto", show_default=True,
              help="Tasks held beyond the free slots, started the moment a slot frees (0: claim only what runs "
                   "now). auto: up to 8 per slot, as many as the round trip and run times ask (none for long "
                   "tasks), through a server or on PostgreSQL; none on SQLite.")  # fmt: skip
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
    hold: int | None,
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
        held = _held(hold, slots, round_trips=not settings.db.startswith("sqlite"))
        config = WorkerConfig.from_settings(settings, hold=held, hold_adapts=hold is None, **shape)
    else:
        from baton.client.session import Session
        from baton.client.timing import CallTimes
        from baton.client.worker_link import HttpLink

        times = CallTimes() if stats_file else None
        remote = HttpLink(Session(server, token or "", ca_file=ca_file, times=times))
        terms = remote.terms()
        config = WorkerConfig.from_settings(
            settings, lease_s=terms.lease_s, heartbeat_s=terms.heartbeat_s, max_result_bytes=terms.max_result_bytes,
            max_log_bytes=terms.max_log_bytes, idle_poll_s=max(settings.idle_poll_s, 3 * terms.long_poll_s),
            hold=_held(hold, slots, round_trips=True) if terms.hold_s > 0 else 0, hold_adapts=hold is None,
            hold_s=terms.hold_s, **shape,
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


HOLD_PER_SLOT = 8


def _held(hold: int | None, slots: int, round_trips: bool) -> int:
    """``--hold`` as a number: ``auto`` (None) holds where a claim costs a round trip worth hiding."""
    if hold is not None:
        return hold
    return min(MAX_HOLD, HOLD_PER_SLOT * slots) if round_trips else 0


def register(cli: click.Group) -> None:
    for command in (controller, worker):
        cli.add_command(command)
