"""Flow control at the command line, against the database (``--db``) or a server (``--server``),
printing the same either way (docs/limits.md): ``baton limits`` lists the concurrency keys, each
with its limit and its running, queued and parked tasks, or with ``--rates`` the rate limits'
keys, each with its limit and period, its starts in the window that ends now, its queued and
parked tasks and its next allowed start; ``baton pause`` and ``baton resume`` hold and release an
event, a graph or a node of an event; ``baton pauses`` lists the pauses in force."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import click

from baton.cli.options import F, Opened, handle_errors, json_option, opens_store
from baton.cli.types import EVENT_ID, Text
from baton.store.records import MAX_PAUSE_REASON_CHARS, PauseRecord, PauseTarget, RateKeyRecord, TaskCounts

KEY = Text(200)


@click.command("limits")
@click.option("--rates", is_flag=True, help="List the rate limits' keys instead of the concurrency keys.")
@click.option("--after", type=KEY, default=None, help="Start after this key (the last one of the previous page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most this many keys.")
@json_option
@handle_errors
@opens_store(server=True)
def limits_command(opened: Opened, rates: bool, after: str | None, limit: int, as_json: bool) -> None:
    """Concurrency keys: how many of each key's tasks may run at once, and how many run, wait in
    the queue and are parked until a slot frees. With --rates, rate limits' keys: how many of each
    key's tasks may start in any period, how many started in the one that ends now, how many
    wait in the queue and are parked, and when the next may start."""
    if rates:
        _rates(opened.store.rate_keys(after=after, limit=limit), as_json)
        return
    keys = opened.store.limit_keys(after=after, limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(k) for k in keys]))
        return
    if not keys:
        click.echo("no concurrency keys (a node declares one with 'concurrency: {key: ..., limit: N}')")
        return
    width = max(len(k.key) for k in keys)
    click.echo(f"{'KEY':<{width}}  {'LIMIT':>7}  {'RUNNING':>7}  {'QUEUED':>7}  {'PARKED':>7}")
    for k in keys:
        full = "  full" if k.running >= k.max_running else ""
        click.echo(f"{k.key:<{width}}  {k.max_running:>7}  {k.running:>7}  {k.ready:>7}  {k.parked:>7}{full}")


def _rates(keys: list[RateKeyRecord], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([asdict(k) for k in keys]))
        return
    if not keys:
        click.echo("no rate limits (a node declares one with 'rate_limit: {key: ..., limit: N, period_s: S}')")
        return
    width = max(len(k.key) for k in keys)
    click.echo(
        f"{'KEY':<{width}}  {'LIMIT':>7}  {'PERIOD_S':>9}  {'STARTED':>7}  {'QUEUED':>7}  {'PARKED':>7}  NEXT START"
    )
    for k in keys:
        at = k.next_start_at
        when = "now" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        click.echo(f"{k.key:<{width}}  {k.max_starts:>7}  {k.period_s:>9g}  {k.started:>7}  {k.queued:>7}  "
                   f"{k.parked:>7}  {when}")  # fmt: skip


def _target(event_id: int | None, graph: str | None, node: str | None) -> PauseTarget:
    if (event_id is None) == (graph is None):
        raise click.UsageError("name either an EVENT_ID or a --graph")
    if node is not None and event_id is None:
        raise click.UsageError("--node pauses one node of an event: give its EVENT_ID")
    return PauseTarget(graph, event_id, node)


def _tasks(n: int, what: str) -> str:
    return f"{n} {what.replace('TASK', 'task' if n == 1 else 'tasks')}"


def _since(p: PauseRecord) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(p.paused_at))
    return f"paused by {p.paused_by} since {stamp}" + (f": {p.reason}" if p.reason else "")


def _counts(c: TaskCounts) -> dict[str, int]:
    return asdict(c)


def scope_options(fn: F) -> F:
    """EVENT_ID, --graph and --node: what to pause or resume."""
    fn = click.option("--node", type=KEY, default=None, help="Only this node of the event.")(fn)
    help_graph = "A graph's name: all its events, and those raised while it is paused."
    fn = click.option("--graph", type=KEY, default=None, help=help_graph)(fn)
    return click.argument("event_id", type=EVENT_ID, required=False)(fn)


@click.command("pause")
@scope_options
@click.option("--reason", type=Text(MAX_PAUSE_REASON_CHARS), default="", help="Why, shown with the pause.")
@json_option
@handle_errors
@opens_store(server=True)
def pause_command(
    opened: Opened, event_id: int | None, graph: str | None, node: str | None, reason: str, as_json: bool
) -> None:
    """Pause an event, a graph (--graph) or a node of an event (EVENT_ID --node): none of its
    tasks starts until 'baton resume'; running ones finish."""
    answer = opened.store.pause(_target(event_id, graph, node), reason)
    if as_json:
        click.echo(json.dumps({"pause": asdict(answer.pause), "created": answer.created,
                               "held": _counts(answer.held)}))  # fmt: skip
        return
    p = answer.pause
    if not answer.created:
        click.echo(f"{p.target} was paused already ({_since(p)})")
        return
    held = answer.held
    if held == TaskCounts():
        click.echo(f"paused {p.target}: no task of it is queued or running now; its tasks will wait")
        return
    out, wait = _tasks(held.ready, "ready TASK"), _tasks(held.pending, "pending TASK")
    click.echo(f"paused {p.target}: {out} out of the queue, {wait} will wait, "
               f"{_tasks(held.running, 'running TASK')} finish")  # fmt: skip


@click.command("resume")
@scope_options
@json_option
@handle_errors
@opens_store(server=True)
def resume_command(opened: Opened, event_id: int | None, graph: str | None, node: str | None, as_json: bool) -> None:
    """Resume what 'baton pause' held: say what may start now and what other pauses still hold."""
    answer = opened.store.resume(_target(event_id, graph, node))
    if as_json:
        click.echo(json.dumps({"target": answer.target, "released": _counts(answer.released),
                               "still_paused": list(answer.still_paused)}))  # fmt: skip
        return
    r = answer.released
    click.echo(f"resumed {answer.target}: {_tasks(r.ready, 'ready TASK')} may start now, "
               f"{_tasks(r.pending, 'pending TASK')} start when their upstream is done")  # fmt: skip
    if answer.still_paused:
        click.echo(f"still paused: {', '.join(answer.still_paused)}")


@click.command("pauses")
@click.option("--event", "event_id", type=EVENT_ID, default=None, help="Only the pauses holding this event.")
@json_option
@handle_errors
@opens_store(server=True)
def pauses_command(opened: Opened, event_id: int | None, as_json: bool) -> None:
    """The pauses in force, oldest first."""
    found = opened.store.pauses(event_id)
    if as_json:
        click.echo(json.dumps([asdict(p) for p in found]))
        return
    if not found:
        click.echo("nothing is paused")
        return
    for p in found:
        click.echo(f"{p.target}  ({_since(p)})")


def register(cli: click.Group) -> None:
    for command in (limits_command, pause_command, resume_command, pauses_command):
        cli.add_command(command)
