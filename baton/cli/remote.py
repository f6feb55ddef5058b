"""The event commands through a baton server (``--server URL --token T``, or ``BATON_SERVER``,
``BATON_TOKEN``, ``BATON_CA_FILE``): ``submit``, ``status``, ``logs``, ``cancel`` and ``rerun``
speak to ``/api/v1`` with :class:`baton.Client` and print exactly what they print from the
database (:mod:`baton.cli.show` holds the printing for both).

Exit codes stay the command line's: 0 ok, 1 the event failed or was cancelled, 2 a usage error,
and so a token the server refuses (401: unknown or revoked; 403: its role or event types do not
allow the command), 3 the server unreachable or failing (5xx, which includes its database being
down).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from baton.cli.options import server_options
from baton.cli.show import (
    STILL_SUBMITTED,
    STILL_SUBMITTED_S,
    attempt_log,
    cancelled,
    event_list,
    event_status,
    finish,
    rerun_queued,
    submitted,
    task_place,
)
from baton.engine.states import EventState, TaskState
from baton.errors import NotFound, Unauthenticated, UsageError
from baton.graphs.model import Graph
from baton.graphs.params import parse_cli_params, validate_params
from baton.graphs.spec import graph_from_dict
from baton.store.records import EventRecord, TaskRecord, WorkerRecord

if TYPE_CHECKING:  # the HTTP client is imported only by a command given --server
    from baton.client.api import Client
    from baton.client.objects import EventStatus, Task

F = TypeVar("F", bound=Callable[..., Any])
LOCAL_ONLY = {"workers": "--workers runs tasks here, against the database; through --server, leave it out"}


def through_server(remote: Callable[..., None]) -> Callable[[F], F]:
    """Give a command ``--server/--token/--ca-file``: with a server it runs ``remote(client,
    **its other arguments)`` instead of its own body (``--db`` and ``--config`` are then not
    used, and ``--db`` is refused)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def either(*args: Any, server: str | None, token: str | None, ca_file: str | None, **kwargs: Any) -> Any:
            if server is None:
                return command(*args, **kwargs)
            if kwargs.pop("db", None) is not None:
                raise UsageError("give --server or --db, not both: with --server the server reaches the database")
            kwargs.pop("config_file", None)
            from baton.client.api import Client

            for flag, why in LOCAL_ONLY.items():
                if kwargs.pop(flag, None) is not None:
                    raise UsageError(why)
            with Client(server, token or "", ca_file=ca_file) as client:
                try:
                    return remote(client, *args, **kwargs)
                except Unauthenticated as exc:
                    raise Unauthenticated(f"{server} refused the token: {exc} (check --token or BATON_TOKEN)") from exc

        return server_options(either)  # type: ignore[return-value]

    return decorate


class ApiReads:
    """What the printing reads (:class:`baton.cli.display.StatusReads`), over the API. Each event is
    read once, so one printout shows one moment; graphs are immutable and kept."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._status: dict[int, EventStatus] = {}
        self._graphs: dict[int, Graph] = {}

    def status(self, event_id: int) -> EventStatus:
        if event_id not in self._status:
            self._status[event_id] = self.client.event(event_id)
        return self._status[event_id]

    def event(self, event_id: int) -> EventRecord:
        return self.status(event_id).event

    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]:
        return {node: dict(states) for node, states in self.status(event_id).nodes.items()}

    def tasks(
        self,
        event_id: int,
        *,
        node: str | None = None,
        partition: str | None = None,
        state: TaskState | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        if after is not None:
            raise UsageError("the API pages tasks by its own cursor")
        found = self.client.tasks(event_id, node=node, partition=partition, state=state, limit=limit)
        return [task_record(t) for t in found]

    def workers(self) -> list[WorkerRecord]:
        # the wire has no process ids; nothing printed reads them
        return [WorkerRecord(w.id, w.name, w.host, 0, w.capacity, w.labels, w.started_at, w.last_seen, w.state,
                             w.running) for w in self.client.workers()]  # fmt: skip

    def graph_of(self, graph_id: int) -> Graph:
        if graph_id not in self._graphs:
            spec = self.client.graph(graph_id).spec
            self._graphs[graph_id] = graph_from_dict(spec, source=f"graph #{graph_id}", stored=True)
        return self._graphs[graph_id]


def task_record(t: Task) -> TaskRecord:
    """A listed task as the printing reads it. ``pending`` (unfinished upstream tasks) is not on
    the wire and nothing printed reads it: it is left 0."""
    result = None if t.result is None else json.dumps(t.result)
    return TaskRecord(t.id, t.event_id, t.node, t.partition, t.state, 0, t.attempt, t.failures, t.worker_id,
                      t.ready_at, t.started_at, t.finished_at, result, t.error)  # fmt: skip


def _wait(client: Client, event_id: int) -> None:
    """Wait for the event to finish, saying once if no controller seems to take it."""
    started = time.monotonic()
    warned = False

    def progress(status: EventStatus) -> None:
        nonlocal warned
        if not warned and status.state is EventState.SUBMITTED and time.monotonic() - started > STILL_SUBMITTED_S:
            click.echo(STILL_SUBMITTED, err=True)
            warned = True

    client.wait(event_id, on_progress=progress, max_poll_s=1.0)


# --- the commands ----------------------------------------------------------------------------


def submit(client: Client, event_type: str, params: Sequence[str], key: str | None, wait: bool, as_json: bool) -> None:
    record = client.latest_graph(event_type)
    graph = graph_from_dict(record.spec, source=f"{record.name} v{record.version}", stored=True)
    values = validate_params(graph, parse_cli_params(graph, params))  # refused here as from the database
    event, created = client.submit(event_type, values, key=key, graph_version=record.version)
    if not wait:
        submitted(event, created, as_json)
        return
    _wait(client, event.id)
    finish(ApiReads(client), event.id, list(record.spec["nodes"]), as_json)


def status(client: Client, event_id: int | None, as_json: bool) -> None:
    if event_id is None:
        event_list(client.events(limit=20, page_size=20), as_json)
        return
    reads = ApiReads(client)
    event = reads.event(event_id)
    event_status(reads, event_id, list(client.graph(event.graph_id).spec["nodes"]), as_json)


def logs(client: Client, event_id: int, node: str | None, partition: str | None, all_attempts: bool) -> None:
    event = client.event(event_id).event
    tasks = list(client.tasks(event_id, node=node, partition=partition))
    if not tasks:
        known = ", ".join(client.graph(event.graph_id).spec["nodes"])
        raise NotFound(f"event {event_id} has no task for node {node!r} partition {partition!r} (nodes: {known})")
    for listed in tasks:
        attempts = client.task(listed.id).attempts or ()
        for a in attempts if all_attempts else attempts[-1:]:
            stdout, stderr = client.read_log(a.id, "stdout"), client.read_log(a.id, "stderr")
            attempt_log(task_place(listed.node, listed.partition), a.attempt, str(a.outcome), a.worker_id,
                        a.exit_code, a.error, stdout, stderr)  # fmt: skip


def cancel(client: Client, event_id: int) -> None:
    cancelled(client.cancel(event_id))


def rerun(
    client: Client, event_id: int, partition: str | None, node: str | None, wait: bool, slots: int, as_json: bool
) -> None:
    count = client.rerun(event_id, partition=partition, node=node)
    if not wait:
        rerun_queued(event_id, count, as_json)
        return
    reads = ApiReads(client)
    order = [n.name for n in reads.graph_of(client.event(event_id).event.graph_id).nodes]
    _wait(client, event_id)
    finish(reads, event_id, order, as_json)
