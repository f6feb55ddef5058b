"""Schedules: a graph raising its own events, declared under the graph's ``schedules:`` key.

A schedule says *when* (a cron expression or a fixed interval ``every_s``, read in an IANA time
zone, between an optional ``start`` and ``end``), *how a business calendar bends it* (skip or move
a fire that falls on a non-business day; keep only the first or last business day of a month),
*which parameters* each event gets (values, or templates such as ``{fire.previous_year}``), and
the policies the controller applies: ``catch_up`` for fires missed while no controller ran,
``overlap`` for a fire while the previous event still runs, and a deadline.

This module is the model and its validation; it computes nothing about time. When a schedule
fires, and what its templates render to, is :mod:`baton.engine.fires`. Calendars are documents of
their own, shared by name: :mod:`baton.graphs.calendars`.

The validator reports into the graph's problem collector (anything with ``add(path, message)``:
:class:`Problems`), so each problem names its path, such as ``schedules.nightly.timezone``, and
the caller adds the file and line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from baton.graphs.model import MAX_EVENT_PRIORITY, MIN_EVENT_PRIORITY, Param, ParamType, is_name
from baton.graphs.params import short, type_problem, value_problem

DAY_S = 86_400
SCHEDULE_KEYS = frozenset(
    {
        *("cron", "every_s", "timezone", "start", "end", "jitter_s", "params"),
        *("calendar", "on_holiday", "business_day"),
        *("catch_up", "catch_up_window_s", "max_catch_up", "overlap"),
        *("deadline", "deadline_after_s", "paused", "description", "priority"),
    }
)
# Each numeric key with its (minimum, maximum).
LIMITS: dict[str, tuple[float, float]] = {
    "every_s": (1, 366 * DAY_S),
    "jitter_s": (0, 3600),
    "catch_up_window_s": (60, 366 * DAY_S),
    "max_catch_up": (1, 1000),
    "deadline_after_s": (1, 30 * DAY_S),
    "priority": (MIN_EVENT_PRIORITY, MAX_EVENT_PRIORITY),
}

# ``{name}`` is a placeholder; ``{{`` and ``}}`` stand for one brace, as in Python's str.format.
# Any other brace is text, so JSON-looking text such as '{"a": 1}' passes through unchanged.
TEMPLATE_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")
PLACEHOLDERS = (
    *("fire.date", "fire.time", "fire.instant", "fire.year", "fire.month", "fire.day"),
    *("fire.previous_year", "fire.previous_month", "fire.previous_day", "fire.previous_business_day"),
    "schedule",
)
INTEGER_PLACEHOLDERS = frozenset({"fire.year", "fire.month", "fire.day", "fire.previous_year"})
CALENDAR_PLACEHOLDERS = frozenset({"fire.previous_business_day"})

_WALL_RE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?")
_CLOCK_RE = re.compile(r"\d{2}:\d{2}(:\d{2})?")


class Problems(Protocol):
    """Where validation problems go: the graph's collector, which adds file and line."""

    def add(self, path: tuple[str, ...], message: str) -> None: ...


class OnHoliday(StrEnum):
    """What a fire on a non-business day does: fire anyway, drop, or move to the next or
    previous business day at the same wall time."""

    RUN = "run"
    SKIP = "skip"
    NEXT = "next"
    PREVIOUS = "previous"


class BusinessDay(StrEnum):
    """Keep only the first or last business day of each month among the days the cron selects."""

    FIRST = "first"
    LAST = "last"


class CatchUpPolicy(StrEnum):
    """Which late fires (missed while no controller ran) are raised when one runs again."""

    SKIP = "skip"
    LATEST = "latest"
    ALL = "all"


class Overlap(StrEnum):
    """What a fire does while the schedule's previous event still runs."""

    SKIP = "skip"
    QUEUE_ONE = "queue_one"
    ALLOW = "allow"
    CANCEL_RUNNING = "cancel_running"


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: exactly one of ``cron`` and ``every_s``; ``start`` and ``end`` are
    local wall times in ``timezone``; ``deadline`` is a local clock time. ``text_params`` holds the
    parameters the graph declares as strings, where a lone ``{fire.year}`` renders as text, not
    as an integer; it is derived from the graph, not written in the YAML."""

    name: str
    cron: str | None = None
    every_s: int | None = None
    timezone: str = "UTC"
    params: Mapping[str, Any] = field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    jitter_s: float = 0.0
    calendar: str | None = None
    on_holiday: OnHoliday = OnHoliday.RUN
    business_day: BusinessDay | None = None
    catch_up: CatchUpPolicy = CatchUpPolicy.LATEST
    catch_up_window_s: float = float(DAY_S)
    max_catch_up: int = 10
    overlap: Overlap = Overlap.SKIP
    deadline: time | None = None
    deadline_after_s: float | None = None
    paused: bool = False
    description: str = ""
    priority: int = 0  # the priority of the events it raises (its fires, backfills, fire now)
    text_params: frozenset[str] = frozenset()


# --- templates -----------------------------------------------------------------------------


def placeholders(text: str) -> list[str]:
    """The placeholder names in a template, in order (``{{`` and ``}}`` are not placeholders)."""
    return [m.group(1) for m in TEMPLATE_RE.finditer(text) if m.group(1)]


def lone_integer(text: str) -> str | None:
    """The placeholder when ``text`` is exactly one integer-valued placeholder, else None."""
    match = TEMPLATE_RE.fullmatch(text)
    return match.group(1) if match and match.group(1) in INTEGER_PLACEHOLDERS else None


def template_problem(text: str, has_calendar: bool) -> str | None:
    """Why a template string cannot be rendered (an unknown placeholder, or one that needs a
    calendar the schedule lacks), or None."""
    for name in placeholders(text):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            return f"unknown placeholder {{{name}}} (known: {known}; write {{{{ for a literal brace)"
        if name in CALENDAR_PLACEHOLDERS and not has_calendar:
            return f"{{{name}}} needs a calendar: add 'calendar: NAME' to the schedule"
    return None


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a parameter value (not keys), without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


# --- validation ----------------------------------------------------------------------------


class _Counted:
    """Forwards problems and counts them, so a schedule with any problem is not built."""

    def __init__(self, inner: Problems) -> None:
        self.inner = inner
        self.count = 0

    def add(self, path: tuple[str, ...], message: str) -> None:
        self.count += 1
        self.inner.add(path, message)


def schedules_from_dict(c: Problems, raw: Any, params: tuple[Param, ...]) -> tuple[Schedule, ...]:
    """Validate a graph's ``schedules:`` mapping against the graph's parameters; every problem
    goes to ``c`` with its path. Returns the schedules that have no problem."""
    if not isinstance(raw, dict):
        c.add(("schedules",), "must be a mapping of schedule name to schedule")
        return ()
    out = []
    for name, spec in raw.items():
        path = ("schedules", str(name))
        if not is_name(name):
            c.add(path, f"{short(name)} is not a valid name (letters, digits, _ . -; starting with a letter)")
        elif not isinstance(spec, dict):
            c.add(path, "must be a mapping with 'cron' or 'every_s'")
        else:
            schedule = _schedule(_Counted(c), path, name, spec, params)
            if schedule is not None:
                out.append(schedule)
    return tuple(out)


def _schedule(
    c: _Counted, path: tuple[str, ...], name: str, spec: dict[str, Any], params: tuple[Param, ...]
) -> Schedule | None:
    _unknown_keys(c, path, spec)
    when = _when(c, path, spec)
    calendar = _calendar_rules(c, path, spec, interval=when.get("every_s") is not None)
    given = _params(c, (*path, "params"), spec.get("params", {}), params, calendar["calendar"] is not None)
    policies = _policies(c, path, spec)
    deadline = _deadline(c, path, spec)
    paused = spec.get("paused", False)
    if not isinstance(paused, bool):
        c.add((*path, "paused"), "must be true or false")
    description = spec.get("description", "")
    if not isinstance(description, str):
        c.add((*path, "description"), f"must be a string, not {type(description).__name__}")
    priority = _number(c, (*path, "priority"), spec.get("priority", 0), "priority", integer=True)
    if c.count:
        return None
    text = frozenset(p.name for p in params if p.type is ParamType.STRING and p.name in given)
    extra = {"paused": paused, "description": description, "params": given, "text_params": text,
             "priority": int(priority or 0)}  # fmt: skip
    return Schedule(name=name, **when, **calendar, **policies, **deadline, **extra)


def _unknown_keys(c: Problems, path: tuple[str, ...], spec: dict[str, Any]) -> None:
    for key in spec:
        if key not in SCHEDULE_KEYS:
            c.add((*path, str(key)), f"unknown key {short(key)} (expected one of: {', '.join(sorted(SCHEDULE_KEYS))})")


def _when(c: Problems, path: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    """cron or every_s, timezone, start and end, jitter_s."""
    out: dict[str, Any] = {"cron": None, "every_s": None}
    if ("cron" in spec) == ("every_s" in spec):
        c.add(path, "give exactly one of 'cron' (an expression) and 'every_s' (an interval in seconds)")
    elif "cron" in spec:
        out["cron"] = _cron(c, (*path, "cron"), spec["cron"])
    else:
        every = _number(c, (*path, "every_s"), spec["every_s"], "every_s", integer=True)
        out["every_s"] = int(every) if every is not None else None
    out["timezone"] = _timezone(c, (*path, "timezone"), spec.get("timezone", "UTC"))
    out["start"] = _wall_time(c, (*path, "start"), spec.get("start"))
    out["end"] = _wall_time(c, (*path, "end"), spec.get("end"))
    if out["start"] is not None and out["end"] is not None and out["end"] <= out["start"]:
        c.add((*path, "end"), f"must be after start ({out['start'].isoformat()})")
    out["jitter_s"] = float(_number(c, (*path, "jitter_s"), spec.get("jitter_s", 0), "jitter_s") or 0)
    return out


def _cron(c: Problems, path: tuple[str, ...], value: Any) -> str | None:
    if not isinstance(value, str):
        c.add(path, f'{short(value)} must be a cron expression in quotes, such as "0 2 * * *"')
        return None
    try:
        next(CronSim(value, datetime(2000, 1, 1)))
    except CronSimError as exc:
        c.add(path, f"{short(value)} is not a cron expression cronsim accepts: {exc}")
        return None
    except StopIteration:
        c.add(path, f"{short(value)} never fires")
        return None
    return value


def _timezone(c: Problems, path: tuple[str, ...], value: Any) -> str:
    """An IANA zone name. ``localtime`` (each machine's own zone) and ``right/...`` (clocks that
    count leap seconds, which epoch seconds do not) are files in the zone directory too: refused."""
    if isinstance(value, str) and value != "localtime" and not value.startswith("right/"):
        try:
            ZoneInfo(value)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            pass
        else:
            return value
    c.add(path, f"{short(value)} is not an IANA time zone (such as UTC, Europe/Berlin, Asia/Shanghai)")
    return "UTC"


def _wall_time(c: Problems, path: tuple[str, ...], value: Any) -> datetime | None:
    """A local wall time: a date (midnight) or a date and time, without an offset."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
    elif isinstance(value, date):
        return datetime.combine(value, time())
    elif isinstance(value, str) and _WALL_RE.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            c.add(path, f"{short(value)} is not a valid date: {exc}")
            return None
    c.add(path, f'{short(value)} must be a local date or date and time, such as 2026-01-01 or "2026-01-01T08:00"')
    return None


def _calendar_rules(c: Problems, path: tuple[str, ...], spec: dict[str, Any], interval: bool) -> dict[str, Any]:
    """calendar, on_holiday and business_day, checked against one another."""
    calendar = spec.get("calendar")
    if calendar is not None and not is_name(calendar):
        c.add((*path, "calendar"), f"{short(calendar)} is not a valid calendar name")
    default = OnHoliday.SKIP if calendar is not None else OnHoliday.RUN
    on_holiday = _choice(c, (*path, "on_holiday"), spec.get("on_holiday", default), OnHoliday) or default
    if on_holiday is not OnHoliday.RUN and calendar is None:
        c.add((*path, "on_holiday"), f"'{on_holiday}' needs a calendar: add 'calendar: NAME'")
    business = spec.get("business_day")
    business_day = _choice(c, (*path, "business_day"), business, BusinessDay) if business is not None else None
    if business_day is not None:
        _business_day_rules(c, path, spec, interval)
    return {"calendar": calendar, "on_holiday": on_holiday, "business_day": business_day}


def _business_day_rules(c: Problems, path: tuple[str, ...], spec: dict[str, Any], interval: bool) -> None:
    where = (*path, "business_day")
    if spec.get("calendar") is None:
        c.add(where, "needs a calendar: add 'calendar: NAME'")
    if interval:
        c.add(where, "needs 'cron': it picks among the days the cron expression selects")
    if spec.get("on_holiday", OnHoliday.SKIP) != OnHoliday.SKIP:
        c.add((*path, "on_holiday"), "has no effect with business_day (every fire kept is on a business day)")


def _params(
    c: Problems, path: tuple[str, ...], raw: Any, params: tuple[Param, ...], has_calendar: bool
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        c.add(path, "must be a mapping of parameter name to value or template")
        return {}
    declared = {p.name: p for p in params}
    for name, value in raw.items():
        param = declared.get(name) if isinstance(name, str) else None
        if param is None:
            c.add((*path, str(name)), f"unknown parameter {short(name)} (declared: {', '.join(declared) or 'none'})")
        else:
            _param_value(c, (*path, name), param, value, has_calendar)
    for param in params:
        if param.required and param.name not in raw:
            c.add(path, f"the graph's required parameter '{param.name}' is not set")
    return dict(raw)


def _param_value(c: Problems, path: tuple[str, ...], param: Param, value: Any, has_calendar: bool) -> None:
    problem = value_problem(value)
    for text in _strings(value) if problem is None else ():
        problem = template_problem(text, has_calendar)
        if problem:
            break
    if problem is None:
        problem = type_problem(param.type, _rendered_kind(value, param.type))
        if problem and isinstance(value, str) and placeholders(value):
            problem += ' (only a lone integer placeholder such as "{fire.year}" renders as an integer)'
    if problem:
        c.add(path, problem)


def _rendered_kind(value: Any, ptype: ParamType) -> Any:
    """A stand-in of what the value renders to, for the type check: a lone integer placeholder
    renders as an integer unless the parameter is a string."""
    if isinstance(value, str) and ptype is not ParamType.STRING and lone_integer(value):
        return 0
    return value


def _policies(c: Problems, path: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    """catch_up, its window and cap, and overlap."""
    policy = _choice(c, (*path, "catch_up"), spec.get("catch_up", "latest"), CatchUpPolicy)
    window = _number(c, (*path, "catch_up_window_s"), spec.get("catch_up_window_s", DAY_S), "catch_up_window_s")
    most = _number(c, (*path, "max_catch_up"), spec.get("max_catch_up", 10), "max_catch_up", integer=True)
    overlap = _choice(c, (*path, "overlap"), spec.get("overlap", "skip"), Overlap)
    return {
        "catch_up": policy or CatchUpPolicy.LATEST,
        "catch_up_window_s": float(window or DAY_S),
        "max_catch_up": int(most or 10),
        "overlap": overlap or Overlap.SKIP,
    }


def _deadline(c: Problems, path: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any]:
    """deadline (a local clock time) or deadline_after_s (seconds after the fire), or neither."""
    out: dict[str, Any] = {"deadline": None, "deadline_after_s": None}
    if "deadline" in spec and "deadline_after_s" in spec:
        c.add(path, "give at most one of 'deadline' (a clock time) and 'deadline_after_s'")
    elif "deadline" in spec:
        out["deadline"] = _clock(c, (*path, "deadline"), spec["deadline"])
    elif "deadline_after_s" in spec:
        out["deadline_after_s"] = _number(c, (*path, "deadline_after_s"), spec["deadline_after_s"], "deadline_after_s")
    return out


def _clock(c: Problems, path: tuple[str, ...], value: Any) -> time | None:
    if isinstance(value, str) and _CLOCK_RE.fullmatch(value):
        try:
            return time.fromisoformat(value)
        except ValueError as exc:
            c.add(path, f"{short(value)} is not a clock time: {exc}")
            return None
    hint = ' (YAML reads an unquoted 6:30 as the number 390: write "06:30")' if isinstance(value, int) else ""
    c.add(path, f'{short(value)} must be a local clock time "HH:MM"{hint}')
    return None


_E = TypeVar("_E", bound=StrEnum)


def _choice(c: Problems, path: tuple[str, ...], value: Any, kind: type[_E]) -> _E | None:
    try:
        return kind(value)
    except (ValueError, TypeError):
        c.add(path, f"{short(value)} is not one of {', '.join(kind)}")
        return None


def _number(c: Problems, path: tuple[str, ...], value: Any, key: str, integer: bool = False) -> float | None:
    """The value as a number within LIMITS[key], or None after recording why not."""
    low, high = LIMITS[key]
    wrong_kind = integer and not isinstance(value, int)
    if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
        c.add(path, f"{short(value)} must be {'an integer' if integer else 'a number'}")
        return None
    if not (math.isfinite(value) and low <= value <= high):
        c.add(path, f"{short(value)} is out of range: must be between {low:,.0f} and {high:,.0f}")
        return None
    return float(value)


# --- serialisation -------------------------------------------------------------------------


def schedule_to_dict(s: Schedule) -> dict[str, Any]:
    """The canonical plain-data form of a schedule (its name is the key it sits under):
    ``schedules_from_dict(c, {s.name: schedule_to_dict(s)}, params)`` gives ``s`` back."""
    out: dict[str, Any] = {"cron": s.cron} if s.cron is not None else {"every_s": s.every_s}
    out["timezone"] = s.timezone
    out["params"] = dict(s.params)
    if s.start is not None:
        out["start"] = _wall_text(s.start)
    if s.end is not None:
        out["end"] = _wall_text(s.end)
    out["jitter_s"] = s.jitter_s
    if s.calendar is not None:
        out["calendar"] = s.calendar
    out["on_holiday"] = s.on_holiday.value
    if s.business_day is not None:
        out["business_day"] = s.business_day.value
    out |= {
        "catch_up": s.catch_up.value,
        "catch_up_window_s": s.catch_up_window_s,
        "max_catch_up": s.max_catch_up,
        "overlap": s.overlap.value,
    }
    if s.deadline is not None:
        out["deadline"] = s.deadline.isoformat(timespec="minutes" if not s.deadline.second else "seconds")
    if s.deadline_after_s is not None:
        out["deadline_after_s"] = s.deadline_after_s
    out["paused"] = s.paused
    if s.description:
        out["description"] = s.description
    if s.priority:
        out["priority"] = s.priority
    return out


def _wall_text(wall: datetime) -> str:
    return wall.isoformat(timespec="minutes" if not wall.second else "seconds")
