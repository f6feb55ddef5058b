"""``baton calendar register | list | show`` and ``baton schedule list | show | pause | resume |
trigger``: business calendars and the schedules graphs declare, against the database (``--db``)
or a server (``--server``), printing the same either way.

Next fires are worked out here, from each schedule as the store keeps it and the registered
calendars (:mod:`baton.engine.upcoming`), by the same rules the controller fires by; times are
shown in the schedule's own zone, with its offset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import date
from itertools import groupby
from pathlib import Path
from typing import Any

import click

from baton.cli import show
from baton.cli.events import wait_for_event
from baton.cli.options import EventStore, Opened, handle_errors, json_option, opens_store, wait_option
from baton.cli.types import Text
from baton.engine.fires import BusinessDays
from baton.engine.upcoming import MAX_NEXT_FIRES, NEXT_FIRES, Day, DayKind, Upcoming, calendar_year, upcoming
from baton.engine.upcoming import wall_text as wall
from baton.errors import CalendarInvalid, NotFound, UsageError
from baton.graphs.calendars import MAX_CALENDAR_BYTES, Calendar, calendar_from_dict, load_calendar_text
from baton.store.records import CalendarRecord, ScheduleRecord

ITEM = Text(100)  # a schedule's or calendar's name


def calendars_of(store: EventStore) -> dict[str, BusinessDays]:
    """The registered calendars' rules by name (one this Baton no longer accepts is left out)."""
    found = {}
    for record in store.calendars():
        try:
            found[record.name] = BusinessDays(calendar_from_dict(record.spec, source=f"calendar {record.name}"))
        except CalendarInvalid:
            continue
    return found


# --- calendars ---------------------------------------------------------------------------------


@click.group("calendar")
def calendar_group() -> None:
    """Business calendars: which days are working days, for schedules (docs/schedules.md)."""


@calendar_group.command("register")
@click.argument("calendar_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@handle_errors
@opens_store(server=True)
def calendar_register(opened: Opened, calendar_files: Sequence[str]) -> None:
    """Validate calendar files and register them (a calendar of the same name is replaced): every
    schedule naming one works out its next fire again."""
    calendars = [(f, _load(f)) for f in calendar_files]  # validate all before writing any
    for file, calendar in calendars:
        record = opened.store.register_calendar(calendar, source=str(Path(file).resolve()))
        click.echo(f"calendar {record.name} registered: {_calendar_line(record)}")


def _load(file: str) -> Calendar:
    try:
        with Path(file).open("rb") as f:
            raw = f.read(MAX_CALENDAR_BYTES * 4 + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{file} is not UTF-8 text") from None
    return load_calendar_text(text, source=file)


@calendar_group.command("list")
@json_option
@handle_errors
@opens_store(server=True)
def calendar_list(opened: Opened, as_json: bool) -> None:
    """Every registered calendar."""
    records = opened.store.calendars()
    if as_json:
        click.echo(json.dumps([{"name": c.name, "spec": dict(c.spec), "updated_at": c.updated_at} for c in records]))
        return
    for c in records:
        click.echo(f"{c.name:<24} {_calendar_line(c)}")


def _calendar_line(c: CalendarRecord) -> str:
    spec = c.spec
    region = "/".join(str(spec[k]) for k in ("country", "subdivision") if spec.get(k)) or "no country"
    extra = f"{len(spec.get('holidays', {}))} holiday(s), {len(spec.get('working_days', []))} working day(s) listed"
    about = f" — {spec['description']}" if spec.get("description") else ""
    return f"{region}, weekend {','.join(spec.get('weekend', []))}; {extra}{about}"


@calendar_group.command("show")
@click.argument("name", type=ITEM)
@click.option("--year", type=click.IntRange(1900, 2999), default=None, help="Which year (default: this one).")
@json_option
@handle_errors
@opens_store(server=True)
def calendar_show(opened: Opened, name: str, year: int | None, as_json: bool) -> None:
    """The business days of a year, month by month, and its holidays and moved working days."""
    record = next((c for c in opened.store.calendars() if c.name == name), None)
    if record is None:
        raise NotFound(f"no calendar {name!r} (see 'baton calendar list')")
    rules = BusinessDays(calendar_from_dict(record.spec, source=f"calendar {name}"))
    days = calendar_year(rules, year or date.today().year)
    if as_json:
        click.echo(json.dumps(_year_json(name, days)))
        return
    business = sum(d.business for d in days)
    click.echo(f"calendar {name}, {days[0].day.year}: {business} business days, {len(days) - business} days off")
    for _, in_month in groupby(days, key=lambda d: d.day.month):
        listed = list(in_month)
        working = [d.day.day for d in listed if d.business]
        click.echo(f"  {listed[0].day:%Y-%m}  {len(working):>2} business days: {_ranges(working)}")
    for d in days:
        if d.kind in (DayKind.HOLIDAY, DayKind.WORKING_WEEKEND):
            what = (d.name or "holiday") if d.kind is DayKind.HOLIDAY else "working day on the weekend"
            click.echo(f"  {d.day} {d.day:%a}  {d.kind.value:<15}  {what}")


def _ranges(numbers: list[int]) -> str:
    """``1-2, 5-9, 12``: consecutive numbers as ranges."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _year_json(name: str, days: list[Day]) -> dict[str, Any]:
    return {"calendar": name, "year": days[0].day.year,
            "business_days": [d.day.isoformat() for d in days if d.business],
            "days_off": [{"date": d.day.isoformat(), "kind": d.kind.value, "name": d.name}
                         for d in days if not d.business],
            "working_weekends": [d.day.isoformat() for d in days if d.kind is DayKind.WORKING_WEEKEND]}  # fmt: skip


# --- schedules ---------------------------------------------------------------------------------


@click.group("schedule")
def schedule_group() -> None:
    """Schedules graphs declare: their next fires; pause, resume, fire now (docs/schedules.md)."""


def _coming(record: ScheduleRecord, days: dict[str, BusinessDays], count: int) -> Upcoming:
    return upcoming(record.name, record.spec, record.state, days, time.time(), count)


@schedule_group.command("list")
@json_option
@handle_errors
@opens_store(server=True)
def schedule_list(opened: Opened, as_json: bool) -> None:
    """Every schedule, retired ones too: its state, next fire, last fire and its event, fires missed."""
    store = opened.store
    days = calendars_of(store)
    shown = [(s, _coming(s, days, 1)) for s in store.schedules()]
    if as_json:
        click.echo(json.dumps([_schedule_json(s, c) for s, c in shown]))
        return
    for s, coming in shown:
        zone = _zone(s)
        upcoming_fire = coming.waiting or (f"next {wall(coming.fires[0].at, zone)}" if coming.fires else "next —")
        last = f"last {wall(s.last_fire_at, zone)}" + (f" (event {s.last_event_id})" if s.last_event_id else "")
        click.echo(f"{s.name:<24} {s.graph:<20} {s.state:<8} {upcoming_fire}; {last}; missed {s.missed}")


def _zone(s: ScheduleRecord) -> str:
    return str(s.spec.get("timezone", "UTC"))


def _schedule_json(s: ScheduleRecord, coming: Upcoming) -> dict[str, Any]:
    return {"name": s.name, "graph": s.graph, "state": s.state, "note": s.note, "paused_by": s.paused_by,
            "paused_at": s.paused_at, "timezone": _zone(s), "calendar": s.spec.get("calendar"),
            "next_fires": [{"at": f.at, "local": f.local} for f in coming.fires], "waiting": coming.waiting,
            "last_fire_at": s.last_fire_at, "last_event_id": s.last_event_id, "missed": s.missed,
            "handled_through": s.handled_through, "spec": dict(s.spec)}  # fmt: skip


@schedule_group.command("show")
@click.argument("name", type=ITEM)
@click.option("--next", "count", type=click.IntRange(1, MAX_NEXT_FIRES), default=NEXT_FIRES, show_default=True,
              help="How many next fires to show.")  # fmt: skip
@json_option
@handle_errors
@opens_store(server=True)
def schedule_show(opened: Opened, name: str, count: int, as_json: bool) -> None:
    """One schedule: when it fires, its state, its next fires, its last fire and its event."""
    store = opened.store
    s = store.schedule(name)
    coming = _coming(s, calendars_of(store), count)
    if as_json:
        click.echo(json.dumps(_schedule_json(s, coming)))
        return
    zone = _zone(s)
    click.echo(f"schedule {s.name} (graph {s.graph}): {s.state}")
    click.echo(f"  when: {_when_text(s)}")
    if s.state == "paused":
        click.echo(f"  paused by {s.paused_by} at {wall(s.paused_at, zone)}" + (f": {s.note}" if s.note else ""))
    if coming.waiting:
        click.echo(f"  {coming.waiting}")
    for fire in coming.fires:
        click.echo(f"  next fire: {wall(fire.at, zone)}")
    last = f" (event {s.last_event_id})" if s.last_event_id else ""
    click.echo(f"  last fire: {wall(s.last_fire_at, zone)}{last}; missed {s.missed}")


def _when_text(s: ScheduleRecord) -> str:
    spec = s.spec
    when = f'cron "{spec["cron"]}"' if spec.get("cron") else f"every {spec.get('every_s')} s"
    text = f"{when} in {_zone(s)}"
    if spec.get("calendar"):
        picks = spec.get("business_day")
        rule = f"business_day {picks}" if picks else f"on_holiday {spec['on_holiday']}"
        text += f", calendar {spec['calendar']} ({rule})"
    bounds = [f"{k} {spec[k]}" for k in ("start", "end") if spec.get(k)]
    return text + (f", {', '.join(bounds)}" if bounds else "")


@schedule_group.command("pause")
@click.argument("name", type=ITEM)
@click.option("--note", type=Text(500), default="", help="Why (shown with it in lists and the UI).")
@handle_errors
@opens_store(server=True)
def schedule_pause(opened: Opened, name: str, note: str) -> None:
    """Raise none of its fires until resumed; those of the pause are never raised (not caught up)."""
    record = opened.store.pause_schedule(name, note=note)
    click.echo(f"schedule {record.name} paused" + (f": {record.note}" if record.note else ""))


@schedule_group.command("resume")
@click.argument("name", type=ITEM)
@handle_errors
@opens_store(server=True)
def schedule_resume(opened: Opened, name: str) -> None:
    """Raise its fires again, from now on."""
    record = opened.store.resume_schedule(name)
    click.echo(f"schedule {record.name} resumed")


@schedule_group.command("trigger")
@click.argument("name", type=ITEM)
@wait_option
@json_option
@handle_errors
@opens_store(server=True)
def schedule_trigger(opened: Opened, name: str, wait: bool, as_json: bool) -> None:
    """Fire now: raise the event a fire at this instant would (its own fires are untouched)."""
    store = opened.store
    event = store.trigger_schedule(name)
    if not wait:
        click.echo(json.dumps({"event_id": event.id, "schedule": name, "state": event.state.value}) if as_json
                   else f"event {event.id} raised by schedule {name} ({event.state})")  # fmt: skip
        return
    wait_for_event(store, event.id)
    show.finish(store, event.id, list(store.graph(event.graph_id).spec["nodes"]), as_json)


def register(cli: click.Group) -> None:
    for group in (calendar_group, schedule_group):
        cli.add_command(group)
