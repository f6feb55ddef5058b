"""Business calendars: which local dates are working days. Stored by name, shared by schedules.

A calendar is its own YAML document::

    calendar: cn_business
    country: CN                 # seeded from the `holidays` package (optional)
    weekend: [sat, sun]         # the default
    holidays: {2027-01-01: New Year}
    working_days: [2026-02-14]  # working days moved onto a weekend

A date is a business day when, first rule that applies: it is listed in ``working_days`` (yes);
it is listed in ``holidays`` (no); it is a holiday of ``country`` (and ``subdivision``) in the
`holidays` package (no); the package lists it as a working day moved onto a weekend, as China's
adjusted working days are (yes); its weekday is in ``weekend`` (no); otherwise yes. Applying the
rules is :class:`baton.engine.fires.BusinessDays`; this module is the model and its validation.

Calendars live apart from graphs, so :mod:`baton.graphs.spec` does not import this module and
this module may reuse spec's problem collector.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from baton.errors import CalendarInvalid
from baton.graphs.model import is_name
from baton.graphs.params import short
from baton.graphs.spec import _Collector
from baton.graphs.yamlload import YamlRefused, load_yaml

CALENDAR_KEYS = ("calendar", "description", "country", "subdivision", "weekend", "holidays", "working_days")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # indexed by date.weekday()
MAX_CALENDAR_BYTES = 1024 * 1024
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Calendar:
    """A validated calendar. ``weekend`` holds ``date.weekday()`` numbers (Monday is 0)."""

    name: str
    description: str = ""
    country: str | None = None
    subdivision: str | None = None
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: Mapping[date, str] = field(default_factory=dict)
    working_days: frozenset[date] = frozenset()


def load_calendar_text(text: str, source: str = "<string>") -> Calendar:
    """Validate a calendar given as YAML text (bounded: see :mod:`baton.graphs.yamlload`)."""
    if len(text) > MAX_CALENDAR_BYTES:
        c = _Collector(source, {})
        c.add((), f"the text is over {MAX_CALENDAR_BYTES:,} characters")
        raise CalendarInvalid(source, c.problems)
    try:
        document = load_yaml(text)
    except YamlRefused as exc:
        c = _Collector(source, {})
        for p in exc.problems:
            c.add(p.path, p.message, line=p.line)
        raise CalendarInvalid(source, c.problems) from exc
    return calendar_from_dict(document.data, source=source, lines=document.lines)


def calendar_from_dict(
    data: Any, source: str = "<calendar>", lines: Mapping[tuple[str, ...], int] | None = None
) -> Calendar:
    """Validate a calendar given as plain data; raise CalendarInvalid listing every problem."""
    c = _Collector(source, lines or {})
    if not isinstance(data, dict):
        c.add((), "a calendar must be a mapping with at least 'calendar' (its name)")
        raise CalendarInvalid(source, c.problems)
    for key in data:
        if key not in CALENDAR_KEYS:
            c.add((str(key),), f"unknown key {short(key)} (expected one of: {', '.join(CALENDAR_KEYS)})")
    name = _name(c, data.get("calendar"))
    description = data.get("description", "")
    if not isinstance(description, str):
        c.add(("description",), f"must be a string, not {type(description).__name__}")
    country, subdivision = _region(c, data.get("country"), data.get("subdivision"))
    weekend = _weekend(c, data.get("weekend", ["sat", "sun"]))
    named = _holidays(c, data.get("holidays", {}))
    working = _working_days(c, data.get("working_days", []), named)
    if c.problems:
        raise CalendarInvalid(source, c.problems)
    return Calendar(str(name), str(description), country, subdivision, weekend, named, working)


def _name(c: _Collector, value: Any) -> str | None:
    if value is None:
        c.add(("calendar",), "is required: the calendar's name")
    elif not is_name(value):
        c.add(("calendar",), f"{short(value)} is not a valid name (letters, digits, _ . -; starting with a letter)")
    else:
        return str(value)
    return None


@functools.cache
def _supported() -> dict[str, list[str]]:
    """Country codes (aliases too, such as UK) and their subdivisions, as the package knows them."""
    import holidays  # loaded when a calendar names a country: it is large

    return holidays.list_supported_countries()


def _region(c: _Collector, country: Any, subdivision: Any) -> tuple[str | None, str | None]:
    if country is not None and (not isinstance(country, str) or country not in _supported()):
        c.add(("country",), f"{short(country)} is not a country code the holidays package supports (such as CN, US)")
        return None, None
    if subdivision is None:
        return country, None
    if country is None:
        c.add(("subdivision",), "needs a country")
    elif not isinstance(subdivision, str) or subdivision not in _supported()[country]:
        known = ", ".join(_supported()[country]) or "none"
        c.add(("subdivision",), f"{short(subdivision)} is not a subdivision of {country} (known: {known})")
    return country, subdivision if isinstance(subdivision, str) else None


def _weekend(c: _Collector, raw: Any) -> frozenset[int]:
    if not isinstance(raw, list) or not all(isinstance(d, str) and d in WEEKDAYS for d in raw):
        c.add(("weekend",), f"must be a list of weekdays ({', '.join(WEEKDAYS)}), such as [sat, sun]")
        return frozenset()
    if len(set(raw)) == len(WEEKDAYS):
        c.add(("weekend",), "leaves no working weekday")
    return frozenset(WEEKDAYS.index(d) for d in raw)


def _holidays(c: _Collector, raw: Any) -> dict[date, str]:
    if not isinstance(raw, dict):
        c.add(("holidays",), "must be a mapping of date to name, such as {2027-01-01: New Year}")
        return {}
    out = {}
    for key, name in raw.items():
        path = ("holidays", key.isoformat() if isinstance(key, date) else str(key))
        day = _day(c, path, key)
        if not isinstance(name, str):
            c.add(path, f"the holiday's name must be a string, not {type(name).__name__}")
        elif day is not None:
            out[day] = name
    return dict(sorted(out.items()))


def _working_days(c: _Collector, raw: Any, named: Mapping[date, str]) -> frozenset[date]:
    if not isinstance(raw, list):
        c.add(("working_days",), "must be a list of dates, such as [2026-02-14, 2026-02-28]")
        return frozenset()
    out: set[date] = set()
    for i, item in enumerate(raw):
        path = ("working_days", f"[{i}]")
        day = _day(c, path, item)
        if day is None:
            continue
        if day in named:
            c.add(path, f"{day.isoformat()} is also listed in holidays ({named[day]!r}); a day is one or the other")
        elif day in out:
            c.add(path, f"{day.isoformat()} is listed twice")
        out.add(day)
    return frozenset(out)


def _day(c: _Collector, path: tuple[str, ...], value: Any) -> date | None:
    """A date: YAML's own (an unquoted 2027-01-01) or ISO text."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            c.add(path, f"{short(value)} is not a valid date: {exc}")
            return None
    c.add(path, f"{short(value)} must be a date YYYY-MM-DD")
    return None


def calendar_to_dict(cal: Calendar) -> dict[str, Any]:
    """The canonical plain-data form of a calendar: valid input for :func:`calendar_from_dict`."""
    out: dict[str, Any] = {"calendar": cal.name}
    if cal.description:
        out["description"] = cal.description
    if cal.country is not None:
        out["country"] = cal.country
    if cal.subdivision is not None:
        out["subdivision"] = cal.subdivision
    out["weekend"] = [WEEKDAYS[d] for d in sorted(cal.weekend)]
    out["holidays"] = {d.isoformat(): name for d, name in sorted(cal.holidays.items())}
    out["working_days"] = [d.isoformat() for d in sorted(cal.working_days)]
    return out
