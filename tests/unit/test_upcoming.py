"""What schedules hold for people to read (:mod:`baton.engine.upcoming`): a schedule rebuilt from
its stored form fires exactly as the graph's does, its next fires or why it waits, a backfill's
preview, the bounds a person writes for a range, and a calendar's year. No clock is read."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from baton.engine.fires import BusinessDays, fires_before, fires_between
from baton.engine.upcoming import (
    DayKind,
    business_days,
    calendar_year,
    fire_range,
    range_bound,
    stored_schedule,
    upcoming,
)
from baton.graphs.calendars import calendar_from_dict
from baton.graphs.schedules import schedule_to_dict
from baton.graphs.spec import load_graph_text

GRAPH = """
graph: shapes
params: {day: {type: string}, year: {type: integer}}
schedules:
  year_end:
    cron: "0 2 * 1 *"
    timezone: Asia/Shanghai
    calendar: cn
    business_day: first
    params: {year: "{fire.previous_year}", day: "{fire.date}"}
    deadline: "06:00"
  hourly:
    every_s: 3600
    start: "2026-01-01T00:30"
    end: 2026-12-31
    timezone: Europe/Berlin
    jitter_s: 30
    params: {day: "{fire.date}", year: 1}
  holidays_next:
    cron: "0 9 * * *"
    calendar: cn
    on_holiday: next
    timezone: Asia/Shanghai
    catch_up: all
    max_catch_up: 3
    overlap: queue_one
    params: {day: "{fire.previous_business_day}", year: 2}
nodes:
  work: {run: "m:f", partitioned: false}
"""
CN = calendar_from_dict({"calendar": "cn", "country": "CN"})
DAYS = business_days([CN])


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def stored(name: str) -> dict[str, object]:
    """A schedule of GRAPH as the store keeps it: its canonical form, through JSON."""
    schedule = load_graph_text(GRAPH).schedule(name)
    assert schedule is not None
    return json.loads(json.dumps(schedule_to_dict(schedule)))


@pytest.mark.parametrize("name", ["year_end", "hourly", "holidays_next"])
def test_a_schedule_rebuilt_from_its_stored_form_fires_as_the_graphs_own(name: str) -> None:
    declared = load_graph_text(GRAPH).schedule(name)
    assert declared is not None
    rebuilt = stored_schedule(name, stored(name))
    assert rebuilt.params == {} and rebuilt.text_params == frozenset()
    days = BusinessDays(CN) if declared.calendar else None
    span = (utc("2026-01-01T00:00"), utc("2027-03-01T00:00"))
    assert fires_between(rebuilt, days, *span, 500) == fires_between(declared, days, *span, 500)
    for key in ("cron", "every_s", "timezone", "start", "end", "calendar", "on_holiday", "business_day", "catch_up",
                "overlap", "deadline", "jitter_s"):  # fmt: skip
        assert getattr(rebuilt, key) == getattr(declared, key), key


def test_next_fires_come_only_from_an_active_schedule_and_a_missing_calendar_is_waited_for() -> None:
    now = utc("2026-02-10T00:00")
    active = upcoming("holidays_next", stored("holidays_next"), "active", DAYS, now, 4)
    assert [f.local for f in active.fires] == [
        "2026-02-10T09:00:00+08:00", "2026-02-11T09:00:00+08:00", "2026-02-12T09:00:00+08:00",
        "2026-02-13T09:00:00+08:00",
    ]  # fmt: skip
    assert active.waiting is None
    assert upcoming("holidays_next", stored("holidays_next"), "paused", DAYS, now).fires == ()
    waiting = upcoming("holidays_next", stored("holidays_next"), "active", {}, now)
    assert waiting.fires == () and waiting.waiting == "waiting for calendar cn, which is not registered"
    assert upcoming("holidays_next", stored("holidays_next"), "paused", {}, now).waiting is not None
    for state in ("ended", "retired"):
        gone = upcoming("holidays_next", stored("holidays_next"), state, {}, now)
        assert (gone.fires, gone.waiting) == ((), None)
    broken = upcoming("x", {**stored("hourly"), "timezone": "Mars/Olympus"}, "active", DAYS, now)
    assert broken.schedule is None and "cannot be read" in (broken.waiting or "")
    assert "Mars/Olympus" in (broken.waiting or "")


def test_the_spring_festival_moves_its_fires_to_the_next_business_day() -> None:
    """With on_holiday: next, the fires of 15 to 23 February 2026 are one fire, on the 24th."""
    after = upcoming("holidays_next", stored("holidays_next"), "active", DAYS, utc("2026-02-13T02:00"), 3)
    assert [f.local[:10] for f in after.fires] == ["2026-02-14", "2026-02-24", "2026-02-25"]


def test_a_backfills_preview_is_its_first_and_last_fires_each_once() -> None:
    hourly = stored_schedule("hourly", stored("hourly"))
    day = (utc("2026-03-01T00:00"), utc("2026-03-01T23:59"))
    first, last = fire_range(hourly, None, *day)
    assert [f.local[11:16] for f in first] == ["01:30", "02:30", "03:30"]  # Berlin is UTC+1 in March
    assert [f.local[11:16] for f in last] == ["22:30", "23:30", "00:30"]
    everything = fires_between(hourly, None, day[0] - 1, day[1], 100)
    assert fires_before(hourly, None, day[0] - 1, day[1], 3) == everything[-3:]
    few_first, few_last = fire_range(hourly, None, day[0], day[0] + 2 * 3600)
    assert (len(few_first), few_last) == (2, ())
    four = fire_range(hourly, None, day[0], day[0] + 4 * 3600)
    assert (len(four[0]), len(four[1])) == (3, 1)  # the first three, then only the fourth
    assert fire_range(hourly, None, day[0], day[0] + 10)[0] == ()
    inclusive = fire_range(hourly, None, everything[0].at, everything[0].at)[0]
    assert inclusive == (everything[0],)  # both bounds are included


def test_range_bounds_are_read_in_the_schedules_zone() -> None:
    shanghai, new_york = ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")
    assert range_bound("2025-01-01", shanghai, end=False) == utc("2024-12-31T16:00")
    assert range_bound("2025-01-31", shanghai, end=True) == utc("2025-01-31T15:59:59")  # the day's last second
    assert range_bound("2025-01-31T08:00", shanghai, end=True) == utc("2025-01-31T00:00")
    assert range_bound(" 2025-01-31 08:00:30 ", shanghai, end=False) == utc("2025-01-31T00:00:30")
    assert range_bound("2025-01-31T08:00Z", shanghai, end=False) == utc("2025-01-31T08:00")
    assert range_bound("2025-01-31T08:00+01:00", shanghai, end=False) == utc("2025-01-31T07:00")
    assert range_bound("2026-03-08T02:30", new_york, end=False) == utc("2026-03-08T07:00")  # the gap's end
    assert range_bound("2026-03-07", new_york, end=True) == utc("2026-03-08T04:59:59")
    for bad in ("yesterday", "2025-13-01", "20250101", "1700000000", "2025-01-01T25:00", "", "0001-01-01T00:00"):
        with pytest.raises(ValueError, match="is not a date"):
            range_bound(bad, shanghai, end=False)


def test_a_calendars_year_names_its_holidays_and_its_moved_working_days() -> None:
    year = calendar_year(BusinessDays(CN), 2026)
    assert len(year) == 365 and year[0].day == date(2026, 1, 1)
    february = [d for d in year if d.day.month == 2]
    assert [d.day.day for d in february if d.business] == [*range(2, 7), *range(9, 15), *range(24, 29)]
    assert [d.day.day for d in february if d.kind is DayKind.WORKING_WEEKEND] == [14, 28]
    eve = next(d for d in february if d.day.day == 16)
    assert (eve.kind, eve.name) == (DayKind.HOLIDAY, "Chinese New Year's Eve")
    assert next(d for d in february if d.day.day == 15).kind is DayKind.WEEKEND
    own = calendar_from_dict({"calendar": "own", "weekend": ["fri"], "holidays": {"2026-01-05": "Closing"},
                              "working_days": ["2026-01-09"]})  # fmt: skip
    kinds = {d.day.day: (d.kind, d.name) for d in calendar_year(BusinessDays(own), 2026)[:10]}
    assert kinds[2] == (DayKind.WEEKEND, "") and kinds[3] == (DayKind.BUSINESS, "")  # Friday off, Saturday not
    assert kinds[5] == (DayKind.HOLIDAY, "Closing") and kinds[9] == (DayKind.WORKING_WEEKEND, "")
