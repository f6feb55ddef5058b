"""When a schedule fires: pure functions of a schedule, its calendar and instants the caller gives.

Instants are floats, seconds since the epoch (UTC). Nothing here reads a clock: the controller
passes ``now``. A fire's identity is its scheduled instant, :attr:`Fire.at`.

**How fires are found.** The *raw* fires come from the cron expression or the interval
(:mod:`baton.engine.wallclock`). A business calendar then maps each raw fire's local date (its
*source* day) to the day it fires on (its *target* day): the same day, none (``on_holiday:
skip``), the next or previous business day (``next``, ``previous``), or, with ``business_day:
first|last``, only the first or last cron-selected business day of each month. As source days
advance, target days never go back, so fires are produced a target day at a time, lazily,
forwards or backwards: asking for five fires of a per-second schedule computes about five.

**Daylight saving.** A cron expression of five fields whose minute field and hour field both do
not start with ``*`` (``30 2 * * *``, ``0 1-3 * * *``, ``0 9,17 * * 1-5``) runs on the wall
clock, as in cronsim and Debian's cron: it selects local wall times; a wall time that occurs
twice (the clocks go back) fires once, at its first occurrence; a wall time that does not occur
(the clocks go forward) fires at the first wall minute after it that exists, the end of the gap.
Every other expression (``0 * * * *``, ``*/15 * * * *``, ``* 2 * * *``, any six-field
expression) follows real time: it fires at every real instant whose local wall time it selects,
so twice in a repeated hour and never in a skipped one. Intervals (``every_s``) are real time,
anchored at ``start`` (or the epoch), untouched by daylight saving. A fire the calendar moves to
another day keeps its wall time, placed on the new day by the wall-clock rule. Fires that land on
the same instant are one fire.

**Catch-up** (:func:`catch_up`) decides, after the controller was away, which fires in
(handled_through, now] to raise; see its docstring.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from baton.engine.wallclock import (
    ONE_DAY,
    CronSource,
    IntervalSource,
    Source,
    clock_instants,
    follows_wall_clock,
    to_local,
    wall_bound,
    wall_instant,
)
from baton.graphs.calendars import Calendar
from baton.graphs.schedules import (
    TEMPLATE_RE,
    BusinessDay,
    CatchUpPolicy,
    OnHoliday,
    Schedule,
    lone_integer,
)

SEARCH_DAYS = 366  # how far next_business and previous_business look
HORIZON_S = 5 * 366 * 86_400.0  # how far next_fire looks
FIRST_INSTANT = datetime(1900, 1, 2, tzinfo=UTC).timestamp()  # instants are clamped to this range
LAST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC).timestamp()
MAX_ON_TIME = 1_000  # on-time fires raised by one catch-up, at most
MAX_MISSED_LISTED = 100  # missed fires listed by one catch-up (the most recent)
MAX_MISSED_COUNTED = 10_000  # missed fires counted by one catch-up before it says -1
COUNT_HORIZON_S = 2 * 366 * 86_400.0  # how far back a catch-up counts missed fires


class BusinessDays:
    """A calendar's rules as questions about local dates (see :mod:`baton.graphs.calendars` for
    the order of the rules). The `holidays` package is asked once per year and the answer kept."""

    def __init__(self, calendar: Calendar) -> None:
        self.calendar = calendar
        self._years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}

    def is_business(self, day: date) -> bool:
        cal = self.calendar
        if day in cal.working_days:
            return True
        if day in cal.holidays:
            return False
        off, moved = self._country(day.year)
        if day in off:
            return False
        return day in moved or day.weekday() not in cal.weekend

    def next_business(self, day: date) -> date | None:
        """The first business day after ``day``, or None within SEARCH_DAYS."""
        return self._step(day, 1)

    def previous_business(self, day: date) -> date | None:
        """The last business day before ``day``, or None within SEARCH_DAYS."""
        return self._step(day, -1)

    def _step(self, day: date, step: int) -> date | None:
        for n in range(1, SEARCH_DAYS + 1):
            candidate = day + timedelta(days=step * n)
            if self.is_business(candidate):
                return candidate
        return None

    def _country(self, year: int) -> tuple[frozenset[date], frozenset[date]]:
        """The country's holidays in ``year`` and its working days moved onto a weekend."""
        if year not in self._years:
            self._years[year] = _country_days(self.calendar, year)
        return self._years[year]


def _country_days(cal: Calendar, year: int) -> tuple[frozenset[date], frozenset[date]]:
    if cal.country is None:
        return frozenset(), frozenset()
    import holidays  # loaded when a calendar names a country: it is large

    found = holidays.country_holidays(cal.country, subdiv=cal.subdivision, years=year)
    moved = frozenset(d for d in getattr(found, "weekend_workdays", ()) if d.year == year)
    return frozenset(found), moved


@dataclass(frozen=True)
class Fire:
    """One fire: ``at`` is the scheduled instant (its identity); ``local`` the wall time in the
    schedule's zone with its offset, such as ``2027-01-04T02:00:00+08:00``."""

    at: float
    local: str


@dataclass(frozen=True)
class CatchUp:
    """What :func:`catch_up` decided. ``missed`` lists at most MAX_MISSED_LISTED missed fires
    (the most recent), ascending; ``missed_count`` counts them all, or is -1 when there were more
    than could be counted (over MAX_MISSED_COUNTED, or older than COUNT_HORIZON_S)."""

    raise_now: tuple[Fire, ...]
    missed: tuple[Fire, ...]
    missed_count: int
    handled_through: float


# --- the plan: raw fires bent by the calendar ----------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A schedule made ready: its zone, its raw fires, its calendar and the calendar rule in
    force (``run`` when ``business_day`` picks the days), ``start`` and ``end`` as instants."""

    schedule: Schedule
    zone: ZoneInfo
    source: Source
    days: BusinessDays | None
    rule: OnHoliday
    start: float | None
    end: float | None

    def date_of(self, at: float) -> date:
        return to_local(at, self.zone).date()


def _plan(schedule: Schedule, days: BusinessDays | None) -> _Plan:
    if days is None and schedule.calendar is not None:
        raise ValueError(f"schedule {schedule.name!r} needs its calendar {schedule.calendar!r}: pass BusinessDays")
    zone = ZoneInfo(schedule.timezone)
    start = wall_instant(schedule.start, zone) if schedule.start is not None else None
    end = wall_instant(schedule.end, zone) if schedule.end is not None else None
    source: Source
    if schedule.cron is not None:
        source = CronSource(schedule.cron, zone, follows_wall_clock(schedule.cron))
    else:
        source = IntervalSource(schedule.every_s or 1, start if start is not None else 0.0, zone)
    rule = OnHoliday.RUN if days is None or schedule.business_day is not None else schedule.on_holiday
    return _Plan(schedule, zone, source, days, rule, start, end)


def _target(plan: _Plan, source: date) -> date | None:
    """The day a source day's fires fire on, or None when they are dropped."""
    if plan.rule is OnHoliday.RUN or plan.days is None or plan.days.is_business(source):
        return source
    if plan.rule is OnHoliday.SKIP:
        return None
    return plan.days.next_business(source) if plan.rule is OnHoliday.NEXT else plan.days.previous_business(source)


def _lowest_source(plan: _Plan, day: date) -> date:
    """The earliest source day whose fires may land on ``day`` or later."""
    if plan.rule is OnHoliday.NEXT and plan.days is not None:
        before = plan.days.previous_business(day)
        return before + ONE_DAY if before is not None else day - timedelta(days=SEARCH_DAYS)
    return day


def _highest_source(plan: _Plan, day: date) -> date:
    """The latest source day whose fires may land on ``day`` or earlier."""
    if plan.rule is OnHoliday.PREVIOUS and plan.days is not None:
        after = plan.days.next_business(day)
        return after - ONE_DAY if after is not None else day + timedelta(days=SEARCH_DAYS)
    return day


def _groups(plan: _Plan, first: date, last: date, forward: bool) -> Iterator[tuple[date, list[date]]]:
    """Each target day with the source days that land on it, in direction."""
    if plan.schedule.business_day is not None:
        yield from ((day, [day]) for day in _chosen_days(plan, first, last, forward))
        return
    target: date | None = None
    sources: list[date] = []
    for source in plan.source.dates(first, last, forward):
        to = _target(plan, source)
        if to is None:
            continue
        if to != target and target is not None:
            yield target, sources
            sources = []
        target = to
        sources.append(source)
    if target is not None:
        yield target, sources


def _chosen_days(plan: _Plan, first: date, last: date, forward: bool) -> Iterator[date]:
    """The first or last cron-selected business day of each month, from ``first`` to ``last``."""
    month = first.replace(day=1)
    while month <= last if forward else _month_end(month) >= last:
        chosen = _chosen_in_month(plan, month)
        inside = chosen is not None and (first <= chosen <= last if forward else last <= chosen <= first)
        if inside and chosen is not None:
            yield chosen
        month = (_month_end(month) + ONE_DAY) if forward else (month - ONE_DAY).replace(day=1)


def _chosen_in_month(plan: _Plan, month: date) -> date | None:
    assert plan.days is not None
    end = _month_end(month)
    if plan.schedule.business_day is BusinessDay.FIRST:
        candidates = plan.source.dates(month, end, True)
    else:
        candidates = plan.source.dates(end, month, False)
    return next((d for d in candidates if plan.days.is_business(d)), None)


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - ONE_DAY


def _day_instants(plan: _Plan, target: date, sources: list[date], forward: bool, wall: time | None) -> Iterator[float]:
    """The instants of one target day's fires in direction, from wall time ``wall`` on when
    given (equal ones not yet merged)."""
    streams = [_stream(plan, source, target, forward, wall) for source in sources]
    return streams[0] if len(streams) == 1 else heapq.merge(*streams, reverse=not forward)


def _stream(plan: _Plan, source: date, target: date, forward: bool, wall: time | None) -> Iterator[float]:
    raw = plan.source.day(source, forward, wall)
    if source == target:
        return plan.source.place(raw, forward)
    walls = plan.source.walls(raw, forward)
    return (wall_instant(datetime.combine(target, w.time()), plan.zone) for w in walls)


def _instants(plan: _Plan, low: float, high: float, forward: bool) -> Iterator[float]:
    """The plan's fire instants in (low, high], ascending or descending, each once, within the
    schedule's start and end."""
    low = max(low, FIRST_INSTANT)
    high = min(high, LAST_INSTANT, plan.end if plan.end is not None else LAST_INSTANT)
    if plan.start is not None:
        low = max(low, math.nextafter(plan.start, -math.inf))
    if low >= high:
        return
    days = (_lowest_source(plan, plan.date_of(low)), _highest_source(plan, plan.date_of(high)))
    first, last = days if forward else days[::-1]
    previous = None
    for target, sources in _groups(plan, first, last, forward):
        wall = wall_bound(plan.zone, target, low if forward else high, forward)
        for at in _day_instants(plan, target, sources, forward, wall):
            if at > high if forward else at <= low:
                return
            if low < at <= high and at != previous:
                yield at
                previous = at


def _fire(at: float, zone: ZoneInfo) -> Fire:
    return Fire(at, to_local(at, zone).isoformat(timespec="seconds"))


# --- the public questions ------------------------------------------------------------------


def fires_between(schedule: Schedule, days: BusinessDays | None, after: float, until: float, limit: int) -> list[Fire]:
    """The fires with ``after < at <= until``, ascending, at most ``limit`` (computing stops there,
    so a huge range is cheap). ``days`` is the schedule's calendar, or None when it has none."""
    plan = _plan(schedule, days)
    found = itertools.islice(_instants(plan, after, until, True), max(limit, 0))
    return [_fire(at, plan.zone) for at in found]


def fires_before(schedule: Schedule, days: BusinessDays | None, after: float, until: float, limit: int) -> list[Fire]:
    """The last ``limit`` fires with ``after < at <= until``, ascending: found walking back from
    ``until``, so the end of a huge range is as cheap as its start (a backfill's preview)."""
    plan = _plan(schedule, days)
    found = list(itertools.islice(_instants(plan, after, until, False), max(limit, 0)))
    return [_fire(at, plan.zone) for at in reversed(found)]


def next_fire(schedule: Schedule, days: BusinessDays | None, after: float) -> Fire | None:
    """The first fire after ``after``; None past ``end`` or when nothing fires within five years."""
    found = fires_between(schedule, days, after, after + HORIZON_S, 1)
    return found[0] if found else None


def fire_at(schedule: Schedule, at: float) -> Fire:
    """The fire of ``schedule`` at instant ``at`` (one read back from the store)."""
    return _fire(at, ZoneInfo(schedule.timezone))


def raise_at(schedule: Schedule, fire: Fire) -> float:
    """When to raise the fire's event: ``fire.at`` plus a jitter in [0, jitter_s) drawn from a
    hash of the schedule's name and the fire, so every controller computes the same."""
    if schedule.jitter_s <= 0:
        return fire.at
    digest = hashlib.sha256(f"{schedule.name}\x00{fire.at!r}".encode()).digest()
    unit = (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: exact in a float, below 1
    return fire.at + min(schedule.jitter_s * unit, math.nextafter(schedule.jitter_s, 0.0))


def deadline_of(schedule: Schedule, fire: Fire) -> float | None:
    """The fire's deadline: ``deadline_after_s`` after it, or the first instant at or after it
    whose local wall clock reads ``deadline`` (a wall time in a gap: the end of the gap), or None."""
    if schedule.deadline_after_s is not None:
        return fire.at + schedule.deadline_after_s
    if schedule.deadline is None:
        return None
    zone = ZoneInfo(schedule.timezone)
    day = to_local(fire.at, zone).date()
    candidates = [clock_instants(d, schedule.deadline, zone) for d in (day, day + ONE_DAY)]
    return min(at for pair in candidates for at in pair if at >= fire.at)


# --- catch-up ------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Sorts fires met newest first into raised on time, raised late, and missed."""

    now: float
    grace_s: float
    window_s: float
    late_kept: int
    on_time: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    missed: list[float] = field(default_factory=list)
    missed_count: int = 0

    def take(self, at: float) -> bool:
        """Sort one fire; False once the count of missed fires is over its cap."""
        age = self.now - at
        if age <= self.grace_s and len(self.on_time) < MAX_ON_TIME:
            self.on_time.append(at)
        elif self.grace_s < age <= self.window_s and len(self.late) < self.late_kept:
            self.late.append(at)
        else:
            self.missed_count += 1
            if len(self.missed) < MAX_MISSED_LISTED:
                self.missed.append(at)
        return self.missed_count <= MAX_MISSED_COUNTED


def catch_up(
    schedule: Schedule, days: BusinessDays | None, handled_through: float, now: float, grace_s: float = 60.0
) -> CatchUp:
    """Which fires in (handled_through, now] to raise now, after the controller was away.

    A fire at most ``grace_s`` old is on time and raised. A late fire, older than that but at most
    ``catch_up_window_s`` old, follows the schedule's ``catch_up``: ``skip`` raises none,
    ``latest`` the most recent one, ``all`` the most recent ``max_catch_up`` ones; the rest are
    missed. Fires older than the window are missed. ``raise_now`` is ascending.

    Fires are walked newest first and the walk stops early, so a ten-year outage of a per-second
    schedule costs about MAX_MISSED_COUNTED fires: ``missed`` then lists the most recent
    MAX_MISSED_LISTED missed fires and ``missed_count`` is -1 ("more than counted"). It is -1 too
    when ``handled_through`` is older than COUNT_HORIZON_S. At most MAX_ON_TIME on-time fires are
    raised (the most recent); older on-time fires count as missed. ``handled_through`` in the
    result is ``now`` (or the given one, should the clock have gone back).
    """
    plan = _plan(schedule, days)
    kept = {CatchUpPolicy.SKIP: 0, CatchUpPolicy.LATEST: 1, CatchUpPolicy.ALL: schedule.max_catch_up}
    tally = _Tally(now, grace_s, schedule.catch_up_window_s, kept[schedule.catch_up])
    low = max(handled_through, now - COUNT_HORIZON_S)
    complete = all(tally.take(at) for at in _instants(plan, low, now, False)) and low == handled_through
    return CatchUp(
        raise_now=tuple(_fire(at, plan.zone) for at in sorted(tally.late + tally.on_time)),
        missed=tuple(_fire(at, plan.zone) for at in sorted(tally.missed)),
        missed_count=tally.missed_count if complete else -1,
        handled_through=max(handled_through, now),
    )


# --- templates -----------------------------------------------------------------------------


def fire_params(schedule: Schedule, fire: Fire, days: BusinessDays | None) -> dict[str, Any]:
    """The schedule's parameters for one fire, templates rendered: a string that is exactly one
    integer placeholder (``"{fire.year}"``) becomes an integer, unless the graph declares the
    parameter a string; otherwise placeholders are replaced as text, month and day with two digits.
    Lists and mappings are rendered item by item (keys are left alone)."""
    values = _template_values(schedule, fire, days)
    return {name: _render(value, values, name in schedule.text_params) for name, value in schedule.params.items()}


def _template_values(schedule: Schedule, fire: Fire, days: BusinessDays | None) -> dict[str, str | int]:
    local = to_local(fire.at, ZoneInfo(schedule.timezone))
    day = local.date()
    values: dict[str, str | int] = {
        "fire.date": day.isoformat(),
        "fire.time": local.strftime("%H:%M"),
        "fire.instant": datetime.fromtimestamp(fire.at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "fire.year": day.year,
        "fire.month": day.month,
        "fire.day": day.day,
        "fire.previous_year": day.year - 1,
        "fire.previous_month": (day.replace(day=1) - ONE_DAY).isoformat()[:7],
        "fire.previous_day": (day - ONE_DAY).isoformat(),
        "schedule": schedule.name,
    }
    before = days.previous_business(day) if days is not None else None
    if before is not None:
        values["fire.previous_business_day"] = before.isoformat()
    return values


def _render(value: Any, values: dict[str, str | int], as_text: bool = False) -> Any:
    if isinstance(value, str):
        lone = None if as_text else lone_integer(value)
        if lone is not None:
            return values[lone]
        return TEMPLATE_RE.sub(lambda m: _text(m.group(0), m.group(1), values), value)
    if isinstance(value, list):
        return [_render(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _render(item, values) for key, item in value.items()}
    return value


def _text(whole: str, name: str | None, values: dict[str, str | int]) -> str:
    if name is None:
        return whole[0]  # "{{" or "}}": one brace
    if name not in values:
        raise ValueError(f"placeholder {{{name}}} cannot be rendered (it needs the schedule's calendar)")
    value = values[name]
    return f"{value:02d}" if name in ("fire.month", "fire.day") else str(value)
