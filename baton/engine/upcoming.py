"""What schedules and calendars hold for people to read: a schedule's next fires (or why it waits),
the first and last fires of a backfill's range, the bounds a person writes for that range, and a
calendar's year day by day. Pure: the caller passes the schedule as the store keeps it, the
calendars and the clock.

The store keeps each schedule in its canonical form (``schedule_to_dict``), rewritten by every
version of its graph, so :func:`stored_schedule` rebuilds it from that row alone: a page or a
command listing many schedules reads the schedules and the calendars (two reads), never a graph
per schedule. The rebuilt schedule leaves the parameters out: they decide what a fire raises, not
when it fires (the controller, which raises, reads the graph's newest version).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from baton.engine.fires import HORIZON_S, BusinessDays, Fire, fires_before, fires_between
from baton.engine.wallclock import wall_instant
from baton.errors import GraphInvalid, Problem
from baton.graphs.calendars import Calendar
from baton.graphs.schedules import Schedule, schedules_from_dict

NEXT_FIRES = 5  # shown per schedule unless asked otherwise
MAX_NEXT_FIRES = 100  # asked for at most
PREVIEW_FIRES = 3  # a backfill's preview: its first and last few fires
_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WALL_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")


@dataclass
class _Problems:
    """Collects validation problems (the graphs' ``Problems`` protocol), naming the schedule."""

    where: str
    found: list[Problem] = field(default_factory=list)

    def add(self, path: tuple[str, ...], message: str) -> None:
        self.found.append(Problem(".".join((self.where, *path[2:])), message))


def stored_schedule(name: str, spec: Mapping[str, Any]) -> Schedule:
    """The schedule a stored row describes, parameters left out (see the module's docstring);
    GraphInvalid when the row holds what this version of Baton does not accept."""
    problems = _Problems(f"schedule {name}")
    found = schedules_from_dict(problems, {name: {**spec, "params": {}}}, ())
    if not found:
        raise GraphInvalid(f"schedule {name}", problems.found or [Problem(name, "unreadable")])
    return found[0]


def business_days(calendars: Iterable[Calendar]) -> dict[str, BusinessDays]:
    """Each calendar's rules by name, shared by the schedules that name it (each asks the
    `holidays` package once per year)."""
    return {c.name: BusinessDays(c) for c in calendars}


@dataclass(frozen=True)
class Upcoming:
    """What a schedule does next: ``fires``, its next fires (none unless it is active), and
    ``waiting``, why it raises nothing even when active (its calendar is not registered, or its
    stored form cannot be read). ``schedule`` is None only in that last case."""

    schedule: Schedule | None
    fires: tuple[Fire, ...]
    waiting: str | None = None


def upcoming(
    name: str, spec: Mapping[str, Any], state: str, days: Mapping[str, BusinessDays], after: float,
    count: int = NEXT_FIRES,
) -> Upcoming:  # fmt: skip
    """The next ``count`` fires after ``after`` of a stored schedule in ``state`` (active,
    paused, ended, retired), with ``days`` the registered calendars' rules by name."""
    try:
        schedule = stored_schedule(name, spec)
    except GraphInvalid as exc:
        return Upcoming(None, (), f"its stored form cannot be read: {exc.problems[0]}")
    if state not in ("active", "paused"):
        return Upcoming(schedule, ())
    calendar = schedule.calendar
    if calendar is not None and calendar not in days:
        return Upcoming(schedule, (), f"waiting for calendar {calendar}, which is not registered")
    if state != "active":
        return Upcoming(schedule, ())
    rules = days[calendar] if calendar is not None else None
    return Upcoming(schedule, tuple(fires_between(schedule, rules, after, after + HORIZON_S, count)))


def days_of(schedule: Schedule, days: Mapping[str, BusinessDays]) -> BusinessDays | None:
    """The schedule's calendar rules; ValueError when it names a calendar not registered."""
    if schedule.calendar is None:
        return None
    if schedule.calendar not in days:
        raise ValueError(f"schedule {schedule.name} names calendar {schedule.calendar}, which is not registered")
    return days[schedule.calendar]


def fire_range(
    schedule: Schedule, days: BusinessDays | None, from_at: float, to_at: float, count: int = PREVIEW_FIRES
) -> tuple[tuple[Fire, ...], tuple[Fire, ...]]:
    """The first ``count`` fires in ``[from_at, to_at]`` and the last ``count`` after those
    (none when the first ones are all there are): a backfill's preview, cheap however long the
    range, since the last ones are found walking back from its end."""
    after = math.nextafter(from_at, -math.inf)
    first = fires_between(schedule, days, after, to_at, count)
    if len(first) < count:
        return tuple(first), ()
    last = [f for f in fires_before(schedule, days, after, to_at, count) if f.at > first[-1].at]
    return tuple(first), tuple(last)


def range_bound(text: str, zone: ZoneInfo, *, end: bool) -> float:
    """The instant a person means by one bound of a backfill's range, read in the schedule's
    zone (``zone``): a date (``2021-01-01``) is the start of that day, or with ``end`` its end
    (its last second, 23:59:59, so the day is included: fires fall on whole seconds); a date and
    time without a zone (``2021-01-01T08:00``) is that wall time there; with an offset or ``Z``,
    that instant. ValueError, saying which forms are taken, for anything else."""
    written = text.strip()
    if _DAY_RE.fullmatch(written):
        try:
            day = date.fromisoformat(written)
        except ValueError as exc:
            raise ValueError(f"{written!r} is not a date: {exc}") from None
        if not end:
            return wall_instant(datetime.combine(day, time()), zone)
        return wall_instant(datetime.combine(day + timedelta(days=1), time()), zone) - 1.0
    try:
        when = datetime.fromisoformat(written.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or not (_WALL_RE.match(written) and 1 < when.year < 9999):
        raise ValueError(f"{written[:40]!r} is not a date (2021-01-31) or a date and time (2021-01-31T08:00, "
                         "with an offset or Z for an instant elsewhere)")  # fmt: skip
    return when.timestamp() if when.tzinfo is not None else wall_instant(when, zone)


def wall_text(at: float | None, zone: str) -> str:
    """An instant as a wall time in ``zone`` with its offset, for people: ``2027-01-04 02:00
    +08:00`` (with the seconds when there are any: ``23:59:59``); ``—`` for None."""
    if at is None:
        return "—"
    local = datetime.fromtimestamp(at, ZoneInfo(zone))
    offset = local.strftime("%z")
    clock = "%H:%M:%S" if local.second else "%H:%M"
    return local.strftime(f"%Y-%m-%d {clock}") + f" {offset[:3]}:{offset[3:]}"


# --- a calendar's year -----------------------------------------------------------------------


class DayKind(StrEnum):
    BUSINESS = "business"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    WORKING_WEEKEND = "working weekend"  # a business day on the calendar's weekend (a moved working day)


@dataclass(frozen=True)
class Day:
    """One date of a calendar's year: what kind of day it is and, for a holiday, its name."""

    day: date
    kind: DayKind
    name: str = ""

    @property
    def business(self) -> bool:
        return self.kind in (DayKind.BUSINESS, DayKind.WORKING_WEEKEND)


def calendar_year(days: BusinessDays, year: int) -> list[Day]:
    """Every date of ``year`` under the calendar's rules (the same :class:`BusinessDays` the
    controller fires by), holidays named by the calendar or the `holidays` package."""
    cal = days.calendar
    names = _country_names(cal, year)
    out = []
    first = date(year, 1, 1)
    for n in range((date(year + 1, 1, 1) - first).days):
        day = first + timedelta(days=n)
        weekend = day.weekday() in cal.weekend
        if days.is_business(day):
            out.append(Day(day, DayKind.WORKING_WEEKEND if weekend else DayKind.BUSINESS))
            continue
        name = cal.holidays.get(day) or names.get(day, "")
        out.append(Day(day, DayKind.HOLIDAY if name or not weekend else DayKind.WEEKEND, name))
    return out


def _country_names(cal: Calendar, year: int) -> dict[date, str]:
    if cal.country is None:
        return {}
    import holidays  # loaded when a calendar names a country: it is large

    found = holidays.country_holidays(cal.country, subdiv=cal.subdivision, years=year, language="en_US")
    return {d: str(name) for d, name in found.items()}
