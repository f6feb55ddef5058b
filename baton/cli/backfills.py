"""``baton backfill SCHEDULE_OR_GRAPH --from DATE --to DATE`` raises a schedule's past fires, and
``baton backfills list | show ID | cancel ID`` follow and stop them; against the database
(``--db``) or a server (``--server``), printing the same either way.

Two commands, not one group, so that no schedule's name can be mistaken for a subcommand:
``backfill`` acts on a schedule, ``backfills`` on the backfills made.

Dates are read in the schedule's own zone: ``--from 2021-01-01`` is the start of that day there,
``--to 2021-01-31`` the end of that day (it is included); a date and time without a zone is that
wall time there, and one with an offset or ``Z`` that instant (:func:`baton.engine.upcoming.range_bound`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import click

from baton.cli.options import EXIT_FAILED, EventStore, Opened, handle_errors, json_option, opens_store
from baton.cli.schedules import ITEM, calendars_of
from baton.cli.types import EVENT_ID, Text
from baton.engine.fires import Fire
from baton.engine.states import EventState
from baton.engine.upcoming import days_of, fire_range, range_bound, stored_schedule
from baton.engine.upcoming import wall_text as wall
from baton.errors import NotFound, UsageError
from baton.store.records import MAX_BACKFILL_DAYS, MAX_MAX_RUNNING, BackfillRecord, BackfillRequest, ScheduleRecord

EVENTS_SHOWN = 20


def pick_schedule(schedules: Sequence[ScheduleRecord], target: str, chosen: str | None) -> ScheduleRecord:
    """The schedule ``target`` names, or the one schedule of graph ``target`` (``chosen``: which
    of its schedules); a UsageError listing the choices otherwise."""
    named = {s.name: s for s in schedules}
    if chosen is None and target in named:
        return named[target]
    of_graph = [s for s in schedules if s.graph == target and s.state != "retired"]
    if chosen is not None:
        found = next((s for s in of_graph if s.name == chosen), None)
        if found is None:
            raise UsageError(f"graph {target} has no schedule {chosen!r} (its schedules: {_names(of_graph)})")
        return found
    if len(of_graph) == 1:
        return of_graph[0]
    if not of_graph and target in ("list", "show", "cancel"):
        raise UsageError(f"'baton backfill' takes a schedule or a graph; for backfills made: baton backfills {target}")
    if not of_graph:
        raise NotFound(f"no schedule {target!r}, and no graph of that name has schedules (see 'baton schedule list')")
    raise UsageError(f"graph {target} has several schedules ({_names(of_graph)}): name one, or add --schedule NAME")


def _names(schedules: Sequence[ScheduleRecord]) -> str:
    return ", ".join(s.name for s in schedules) or "none"


def _zone_of(record: ScheduleRecord) -> str:
    return str(record.spec.get("timezone", "UTC"))


def _range(record: ScheduleRecord, from_text: str, to_text: str) -> tuple[float, float]:
    zone = ZoneInfo(_zone_of(record))
    try:
        from_at, to_at = range_bound(from_text, zone, end=False), range_bound(to_text, zone, end=True)
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}") from None
    if to_at < from_at:
        raise UsageError(f"--to ({to_text}) is before --from ({from_text})")
    if to_at - from_at > MAX_BACKFILL_DAYS * 86_400.0:
        raise UsageError(f"the range spans over {MAX_BACKFILL_DAYS:,} days: split it")
    return from_at, to_at


@click.command("backfill")
@click.argument("target", metavar="SCHEDULE_OR_GRAPH", type=ITEM)
@click.option("--schedule", "chosen", type=ITEM, default=None, help="Which schedule of the graph.")
@click.option("--from", "from_text", type=Text(64), metavar="DATE",
              help="The first day (or time) of the range, in the schedule's zone. Required.")  # fmt: skip
@click.option("--to", "to_text", type=Text(64), metavar="DATE",
              help="The last day of the range, included (or a time), in the schedule's zone. Required.")  # fmt: skip
@click.option("--max-running", type=click.IntRange(1, MAX_MAX_RUNNING), default=1, show_default=True,
              help="Its events unfinished at once, at most.")  # fmt: skip
@click.option("--rerun", is_flag=True, help="Raise fires that already have an event again.")
@click.option("--dry-run", is_flag=True, help="Count the fires and show the first and last; change nothing.")
@click.option("--wait", is_flag=True, help="Follow it until its fires are raised and its events have ended.")
@json_option
@handle_errors
@opens_store(server=True)
def backfill(
    opened: Opened, target: str, chosen: str | None, from_text: str | None, to_text: str | None, max_running: int,
    rerun: bool, dry_run: bool, wait: bool, as_json: bool,
) -> None:  # fmt: skip
    """Raise the past fires of a schedule (or of a graph's one schedule) between two dates, in
    order, at most --max-running at once; fires that already have an event are skipped unless
    --rerun. The controller raises them; this records the backfill (see 'baton backfills')."""
    store = opened.store
    record = pick_schedule(store.schedules(), target, chosen)
    if from_text is None or to_text is None:
        raise UsageError("give the range with --from DATE and --to DATE (days in the schedule's zone)")
    from_at, to_at = _range(record, from_text, to_text)
    asked = BackfillRequest(record.name, from_at, to_at, max_running, rerun, dry_run)
    if dry_run:
        _dry_run(store, record, store.start_backfill(asked), as_json)
        return
    started = store.start_backfill(asked)
    if not wait:
        click.echo(json.dumps(_backfill_json(started)) if as_json else _started_line(started, _zone_of(record)))
        return
    click.echo(_started_line(started, _zone_of(record)), err=True)
    _finish(store, follow(store, started), _zone_of(record), as_json)


def _started_line(b: BackfillRecord, zone: str) -> str:
    again = ", fires that have an event raised again" if b.rerun else ""
    return (f"backfill {b.id} of schedule {b.schedule} started: {b.total} fire(s) from {wall(b.from_at, zone)} to "
            f"{wall(b.to_at, zone)}, at most {b.max_running} running{again}")  # fmt: skip


def _dry_run(store: EventStore, record: ScheduleRecord, plan: BackfillRecord, as_json: bool) -> None:
    """How many fires, how many already have an event, the first and last few."""
    schedule = stored_schedule(record.name, record.spec)
    try:
        rules = days_of(schedule, calendars_of(store))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    first, last = fire_range(schedule, rules, plan.from_at, plan.to_at)
    zone = _zone_of(record)
    if as_json:
        click.echo(json.dumps({"schedule": plan.schedule, "from_at": plan.from_at, "to_at": plan.to_at,
                               "fires": plan.total, "with_events": plan.skipped, "rerun": plan.rerun,
                               "first": _fires_json(first), "last": _fires_json(last)}))  # fmt: skip
        return
    click.echo(f"dry run: schedule {plan.schedule}, {wall(plan.from_at, zone)} to {wall(plan.to_at, zone)}")
    if plan.rerun:
        click.echo(f"  {plan.total} fire(s), each raised (--rerun: fires that have an event too)")
    else:
        click.echo(f"  {plan.total} fire(s), {plan.skipped} already have an event (skipped): "
                   f"{plan.total - plan.skipped} to raise")  # fmt: skip
    if first:
        click.echo(f"  first: {_fires(first, zone)}")
    if last:
        click.echo(f"  last:  {_fires(last, zone)}")
    click.echo("nothing was stored; run it again without --dry-run to start it")


def _fires_json(found: Sequence[Fire]) -> list[dict[str, Any]]:
    return [{"at": f.at, "local": f.local} for f in found]


def _fires(found: Sequence[Fire], zone: str) -> str:
    return ", ".join(wall(f.at, zone) for f in found)


def follow(store: EventStore, record: BackfillRecord) -> BackfillRecord:
    """Until its fires are raised (or it is cancelled) and its events have ended, saying on stderr
    how far it is whenever that changes."""
    said = ""
    while record.state == "running" or record.running:
        line = _progress(record)
        if line != said:
            click.echo(line, err=True)
            said = line
        store.wait_for_change(1.0)
        record = store.backfill(record.id)
    return record


def _progress(b: BackfillRecord) -> str:
    return (f"backfill {b.id}: {b.state}, {b.raised + b.skipped} of {b.total} fire(s) handled "
            f"({b.raised} raised, {b.skipped} skipped), {b.running} running")  # fmt: skip


def _finish(store: EventStore, record: BackfillRecord, zone: str, as_json: bool) -> None:
    """The backfill as it ended; exit 1 when it was cancelled or one of its events did not succeed."""
    failed = [e.id for state in (EventState.FAILED, EventState.CANCELLED)
              for e in store.events(backfill_id=record.id, state=state, limit=100)]  # fmt: skip
    if as_json:
        click.echo(json.dumps({**_backfill_json(record), "unsuccessful_events": sorted(failed)}))
    else:
        click.echo(_backfill_line(record, zone))
        if failed:
            click.echo(f"events that did not succeed: {', '.join(str(e) for e in sorted(failed))}")
    if record.state == "cancelled" or failed:
        sys.exit(EXIT_FAILED)


def _backfill_line(b: BackfillRecord, zone: str) -> str:
    rerun = ", rerun" if b.rerun else ""
    return (f"{b.id:>5}  {b.schedule:<24} {b.state:<9} {b.raised + b.skipped}/{b.total} fire(s) ({b.raised} raised, "
            f"{b.skipped} skipped), {b.running} running; {wall(b.from_at, zone)} to {wall(b.to_at, zone)}, "
            f"max {b.max_running}{rerun}")  # fmt: skip


def _backfill_json(b: BackfillRecord) -> dict[str, Any]:
    return {"id": b.id, "schedule": b.schedule, "graph": b.graph, "from_at": b.from_at, "to_at": b.to_at,
            "max_running": b.max_running, "rerun": b.rerun, "state": b.state, "cursor": b.cursor, "raised": b.raised,
            "skipped": b.skipped, "total": b.total, "running": b.running, "created_by": b.created_by,
            "created_at": b.created_at, "finished_at": b.finished_at}  # fmt: skip


# --- the backfills made ------------------------------------------------------------------------


@click.group("backfills")
def backfills_group() -> None:
    """Backfills made by 'baton backfill': list them, show or cancel one."""


def _zones(store: EventStore) -> dict[str, str]:
    return {s.name: _zone_of(s) for s in store.schedules()}


@backfills_group.command("list")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="At most this many.")
@json_option
@handle_errors
@opens_store(server=True)
def backfills_list(opened: Opened, limit: int, as_json: bool) -> None:
    """Backfills, newest first, with their progress."""
    store = opened.store
    found = store.backfills(limit=limit)
    if as_json:
        click.echo(json.dumps([_backfill_json(b) for b in found]))
        return
    zones = _zones(store) if found else {}
    for b in found:
        click.echo(_backfill_line(b, zones.get(b.schedule, "UTC")))


@backfills_group.command("show")
@click.argument("backfill_id", type=EVENT_ID)
@json_option
@handle_errors
@opens_store(server=True)
def backfills_show(opened: Opened, backfill_id: int, as_json: bool) -> None:
    """One backfill: its progress and its newest events."""
    store = opened.store
    b = store.backfill(backfill_id)
    events = store.events(backfill_id=backfill_id, limit=EVENTS_SHOWN)
    if as_json:
        shown = [{"event_id": e.id, "state": e.state.value, "scheduled_for": e.scheduled_for} for e in events]
        click.echo(json.dumps({**_backfill_json(b), "events": shown}))
        return
    zone = _zone_of(store.schedule(b.schedule))
    click.echo(_backfill_line(b, zone).strip())
    for e in events:
        click.echo(f"  event {e.id:<6} {e.state:<10} fire of {wall(e.scheduled_for, zone)}")
    if len(events) == EVENTS_SHOWN:
        click.echo(f"  (the newest {EVENTS_SHOWN}; 'baton status' lists events)")


@backfills_group.command("cancel")
@click.argument("backfill_id", type=EVENT_ID)
@handle_errors
@opens_store(server=True)
def backfills_cancel(opened: Opened, backfill_id: int) -> None:
    """Raise no more of its fires; the events it raised run on ('baton cancel' stops one)."""
    b = opened.store.cancel_backfill(backfill_id)
    click.echo(f"backfill {b.id} cancelled: {b.raised} of {b.total} fire(s) raised; {b.running} of its events running")


def register(cli: click.Group) -> None:
    for command in (backfill, backfills_group):
        cli.add_command(command)
