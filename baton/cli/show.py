"""What the event commands print (submit, status, logs, audit, cancel, rerun), from the records
of whichever store they work on: the database's or a server's
(:class:`baton.client.store.HttpStore`), so the output cannot differ between the two."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

import click
from rich.console import Console

from baton.cli.display import node_table, print_summary, summary, waiting_lines, waiting_notes
from baton.cli.options import EXIT_FAILED
from baton.engine.states import EventState
from baton.store.protocol import ReadStore
from baton.store.records import AttemptRecord, EventRecord

STILL_SUBMITTED_S = 10.0
STILL_SUBMITTED = "still waiting for a controller to pick up the event (is 'baton controller' running?)"


def submitted(event: EventRecord, created: bool, as_json: bool) -> None:
    click.echo(
        json.dumps({"event_id": event.id, "created": created, "state": event.state.value})
        if as_json
        else f"event {event.id} {'submitted' if created else 'already exists'} ({event.state})"
    )


def finish(reads: ReadStore, event_id: int, order: list[str], as_json: bool) -> None:
    """The end-of-run summary; exit 1 unless the event succeeded."""
    event = reads.event(event_id)
    if as_json:
        click.echo(json.dumps(summary(reads, event_id)))
    else:
        print_summary(Console(), reads, event_id, order)
    if event.state is not EventState.SUCCEEDED:
        sys.exit(EXIT_FAILED)


def event_list(events: Iterable[EventRecord], as_json: bool) -> None:
    """``baton status`` without an event: the most recent events, one line each."""
    if as_json:
        click.echo(json.dumps([{"event_id": e.id, "type": e.type, "state": e.state.value,
                                "tasks_total": e.tasks_total, "tasks_active": e.tasks_active, "priority": e.priority}
                               for e in events]))  # fmt: skip
        return
    for e in events:
        click.echo(f"{e.id:>6}  {e.type:<24} {e.state:<10} {e.tasks_total - e.tasks_active}/{e.tasks_total} done")


def event_status(reads: ReadStore, event_id: int, order: list[str], as_json: bool) -> None:
    """``baton status EVENT``: the table per node, why it failed, and why ready tasks may wait."""
    if as_json:
        click.echo(json.dumps(summary(reads, event_id)))
        return
    event = reads.event(event_id)
    Console().print(node_table(event, reads.node_counts(event_id), order))
    if event.error:
        click.echo(f"event {event_id} failed: {event.error}")
    if event.finished_at is None:
        for line in waiting_lines(reads.waiting(event_id)):
            click.echo(line)
    for note in waiting_notes(reads, event_id):
        click.echo(f"waiting: {note}", err=True)


def attempt_log(where: str, a: AttemptRecord) -> None:
    """One attempt in ``baton logs``: a header line, its error, then each stream that has text."""
    click.echo(f"=== {where} attempt {a.attempt} {a.outcome} worker {a.worker_id} "
               f"exit {a.exit_code if a.exit_code is not None else '-'}")  # fmt: skip
    if a.error:
        click.echo(f"error: {a.error}")
    for label, text in (("stdout", a.stdout), ("stderr", a.stderr)):
        if text:
            click.echo(f"--- {label}\n{text.rstrip()}")


def task_place(node: str, partition: str) -> str:
    return f"{node}[{partition}]" if partition else node


def cancelled(event: EventRecord) -> None:
    click.echo(f"event {event.id}: {'cancelled' if event.state.terminal else 'cancelling'}")


def rerun_queued(event_id: int, count: int, as_json: bool) -> None:
    click.echo(json.dumps({"event_id": event_id, "reset": count}) if as_json
               else f"event {event_id}: {count} task(s) re-queued")  # fmt: skip
