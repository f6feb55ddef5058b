"""When schedules fire: daylight saving, calendars, catch-up, deadlines, jitter and templates.

Every instant is fixed; nothing reads a clock. Expected instants are written in UTC (``Z``).
"""

from __future__ import annotations

import time as wall_clock
from datetime import UTC, date, datetime
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from baton.engine.fires import (
    MAX_MISSED_LISTED,
    BusinessDays,
    Fire,
    catch_up,
    deadline_of,
    fire_params,
    fires_between,
    next_fire,
    raise_at,
)
from baton.engine.wallclock import follows_wall_clock
from baton.graphs.calendars import Calendar, calendar_from_dict
from baton.graphs.schedules import BusinessDay, CatchUpPolicy, OnHoliday, Schedule

CN = BusinessDays(calendar_from_dict({"calendar": "cn", "country": "CN"}))


def utc(text: str) -> float:
    """An instant written in ISO form (``2026-03-08T07:00Z``)."""
    return datetime.fromisoformat(text).timestamp()


def zulu(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%MZ")


def cron(expr: str, zone: str, **options: Any) -> Schedule:
    return Schedule("s", cron=expr, timezone=zone, **options)


def between(s: Schedule, after: str, until: str, days: BusinessDays | None = None) -> list[str]:
    return [zulu(f.at) for f in fires_between(s, days, utc(after), utc(until), 10_000)]


def local_dates(fires: list[Fire]) -> list[str]:
    return [f.local[:10] for f in fires]


# --- daylight saving -----------------------------------------------------------------------


def test_new_york_spring_forward_moves_a_missing_wall_time_to_the_end_of_the_gap() -> None:
    """2026-03-08: 02:00 EST becomes 03:00 EDT, so 02:30 does not exist that day."""
    assert between(cron("30 2 * * *", "America/New_York"), "2026-03-07T00:00Z", "2026-03-10T00:00Z") == [
        "2026-03-07T07:30Z",  # 02:30 EST
        "2026-03-08T07:00Z",  # 03:00 EDT, the first minute after the gap
        "2026-03-09T06:30Z",  # 02:30 EDT
    ]
    assert between(cron("30 1 * * *", "America/New_York"), "2026-03-08T00:00Z", "2026-03-10T00:00Z") == [
        "2026-03-08T06:30Z",
        "2026-03-09T05:30Z",
    ]


def test_new_york_fall_back_fires_a_repeated_wall_time_once_at_its_first_occurrence() -> None:
    """2026-11-01: 02:00 EDT becomes 01:00 EST, so 01:30 happens twice that day."""
    assert between(cron("30 1 * * *", "America/New_York"), "2026-10-31T00:00Z", "2026-11-03T00:00Z") == [
        "2026-10-31T05:30Z",  # 01:30 EDT
        "2026-11-01T05:30Z",  # 01:30 EDT, the first of two
        "2026-11-02T06:30Z",  # 01:30 EST
    ]
    assert between(cron("30 2 * * *", "America/New_York"), "2026-11-01T00:00Z", "2026-11-02T00:00Z") == [
        "2026-11-01T07:30Z"
    ]


def test_new_york_hourly_and_quarter_hourly_follow_real_time() -> None:
    hourly = cron("0 * * * *", "America/New_York")
    assert between(hourly, "2026-03-08T04:30Z", "2026-03-08T08:00Z") == [
        "2026-03-08T05:00Z",  # 00:00 EST
        "2026-03-08T06:00Z",  # 01:00 EST; there is no 02:00
        "2026-03-08T07:00Z",  # 03:00 EDT
        "2026-03-08T08:00Z",
    ]
    assert between(hourly, "2026-11-01T03:30Z", "2026-11-01T07:00Z") == [
        "2026-11-01T04:00Z",  # 00:00 EDT
        "2026-11-01T05:00Z",  # 01:00 EDT
        "2026-11-01T06:00Z",  # 01:00 EST: the repeated hour fires again
        "2026-11-01T07:00Z",  # 02:00 EST
    ]
    quarterly = cron("*/15 * * * *", "America/New_York")
    assert between(quarterly, "2026-03-08T06:20Z", "2026-03-08T07:15Z") == [
        "2026-03-08T06:30Z",  # 01:30 EST
        "2026-03-08T06:45Z",
        "2026-03-08T07:00Z",  # 03:00 EDT
        "2026-03-08T07:15Z",
    ]
    assert len(between(quarterly, "2026-11-01T04:00Z", "2026-11-01T07:00Z")) == 12  # 01:00-01:45 twice


def test_berlin_spring_and_autumn() -> None:
    daily = cron("30 2 * * *", "Europe/Berlin")
    assert between(daily, "2026-03-27T12:00Z", "2026-03-30T12:00Z") == [
        "2026-03-28T01:30Z",  # 02:30 CET
        "2026-03-29T01:00Z",  # 03:00 CEST: 02:30 does not exist
        "2026-03-30T00:30Z",  # 02:30 CEST
    ]
    assert between(daily, "2026-10-24T12:00Z", "2026-10-26T12:00Z") == [
        "2026-10-25T00:30Z",  # 02:30 CEST, the first of two
        "2026-10-26T01:30Z",  # 02:30 CET
    ]
    assert between(cron("0 * * * *", "Europe/Berlin"), "2026-10-24T22:30Z", "2026-10-25T02:00Z") == [
        "2026-10-24T23:00Z",  # 01:00 CEST
        "2026-10-25T00:00Z",  # 02:00 CEST
        "2026-10-25T01:00Z",  # 02:00 CET
        "2026-10-25T02:00Z",  # 03:00 CET
    ]
    assert between(cron("*/15 * * * *", "Europe/Berlin"), "2026-03-29T00:30Z", "2026-03-29T01:15Z") == [
        "2026-03-29T00:45Z",  # 01:45 CET
        "2026-03-29T01:00Z",  # 03:00 CEST
        "2026-03-29T01:15Z",
    ]


def test_lord_howe_half_hour_changes() -> None:
    """Lord Howe moves its clocks by 30 minutes: 02:00 becomes 02:30 on 2026-10-04, and 02:00
    becomes 01:30 on 2026-04-05."""
    assert between(cron("15 2 * * *", "Australia/Lord_Howe"), "2026-10-03T12:00Z", "2026-10-04T12:00Z") == [
        "2026-10-03T15:30Z"  # 02:30 +11:00
    ]
    assert between(cron("45 1 * * *", "Australia/Lord_Howe"), "2026-04-04T12:00Z", "2026-04-05T12:00Z") == [
        "2026-04-04T14:45Z"  # 01:45 +11:00, the first of two
    ]
    # Real time: 02:00 +10:30 exists once (cronsim's own zone-aware iteration, stepping an hour at
    # a time, skips it; Baton places cronsim's wall times itself).
    assert between(cron("0 */2 * * *", "Australia/Lord_Howe"), "2026-04-04T12:00Z", "2026-04-04T18:00Z") == [
        "2026-04-04T13:00Z",  # 00:00 +11:00
        "2026-04-04T15:30Z",  # 02:00 +10:30
        "2026-04-04T17:30Z",  # 04:00 +10:30
    ]


def test_wall_clock_expressions_agree_with_cronsim() -> None:
    """For expressions on the wall clock Baton's placing is cronsim's own (its DST fix-up)."""
    cases = [("30 2 * * *", "America/New_York"), ("0 1-3 * * *", "America/New_York"), ("15 2 * * *", "Europe/Berlin")]
    for expr, zone in cases:
        assert follows_wall_clock(expr)
        start = datetime(2026, 3, 1, tzinfo=ZoneInfo(zone))
        sim = CronSim(expr, start)
        expected = [next(sim).timestamp() for _ in range(300)]
        got = [f.at for f in fires_between(cron(expr, zone), None, start.timestamp(), expected[-1], 1000)]
        assert got == expected


def test_forwards_and_backwards_agree() -> None:
    """catch_up walks newest first; fires_between oldest first: the same fires either way."""
    for expr in ("*/15 * * * *", "30 1 * * *", "0 */2 * * *"):
        s = cron(expr, "America/New_York", catch_up=CatchUpPolicy.ALL, max_catch_up=1000, catch_up_window_s=3 * 86_400)
        after, now = utc("2026-10-30T12:00Z"), utc("2026-11-02T06:00Z")
        forwards = fires_between(s, None, after, now, 10_000)
        backwards = catch_up(s, None, after, now).raise_now
        assert list(backwards) == forwards


def test_intervals_are_real_time_anchored_at_start() -> None:
    s = Schedule("s", every_s=3600, timezone="America/New_York", start=datetime(2026, 10, 31, 23, 30))
    fires = fires_between(s, None, utc("2026-10-31T00:00Z"), utc("2026-11-01T08:00Z"), 100)
    assert [f.local for f in fires[:5]] == [
        "2026-10-31T23:30:00-04:00",  # the start, the first fire
        "2026-11-01T00:30:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:30:00-05:00",
    ]
    epoch = Schedule("s", every_s=7 * 86_400)
    assert zulu(fires_between(epoch, None, utc("2025-12-31T00:00Z"), utc("2026-02-01T00:00Z"), 1)[0].at) == (
        "2026-01-01T00:00Z"  # a Thursday, as 1970-01-01 was
    )


# --- start, end, limits --------------------------------------------------------------------


def test_start_and_end_are_local_wall_times() -> None:
    s = cron("0 9 * * *", "Asia/Shanghai", start=datetime(2026, 5, 2, 9, 0), end=datetime(2026, 5, 4, 9, 0))
    assert between(s, "2026-01-01T00:00Z", "2027-01-01T00:00Z") == [
        "2026-05-02T01:00Z",
        "2026-05-03T01:00Z",
        "2026-05-04T01:00Z",
    ]
    assert next_fire(s, None, utc("2026-05-04T01:00Z")) is None


def test_a_huge_range_stops_at_the_limit() -> None:
    every_second = cron("* * * * * *", "Europe/Berlin")
    fires = fires_between(every_second, None, 0.0, 1e11, 3)
    assert [f.at for f in fires] == [1.0, 2.0, 3.0]
    assert fires[0].local == "1970-01-01T01:00:01+01:00"
    assert fires_between(every_second, None, 10.0, 5.0, 3) == []


def test_next_fire() -> None:
    s = cron("0 2 * * *", "Asia/Shanghai")
    assert next_fire(s, None, utc("2027-01-03T18:00Z")) == Fire(utc("2027-01-04T18:00Z"), "2027-01-05T02:00:00+08:00")
    rare = cron("0 0 * 2 MON#5", "UTC")  # a fifth Monday in February: 2044 is next after 2026
    assert next_fire(rare, None, utc("2026-01-01T00:00Z")) is None
    assert next_fire(rare, None, utc("2043-06-01T00:00Z")) == Fire(
        utc("2044-02-29T00:00Z"), "2044-02-29T00:00:00+00:00"
    )


# --- calendars -----------------------------------------------------------------------------


def business(rule: BusinessDay) -> Schedule:
    return cron("0 2 * * *", "Asia/Shanghai", calendar="cn", on_holiday=OnHoliday.SKIP, business_day=rule)


def test_first_business_day_of_january_2027_follows_new_years_day() -> None:
    fire = next_fire(business(BusinessDay.FIRST), CN, utc("2026-12-31T00:00Z"))
    assert fire == Fire(utc("2027-01-03T18:00Z"), "2027-01-04T02:00:00+08:00")


def test_first_and_last_business_day_of_each_month_of_2027() -> None:
    """With 2027's holidays written out (as the `holidays` package had them when this was
    written), so that a newer package knowing the State Council's 2027 plan cannot change it."""
    listed = "01-01 02-05 02-06 02-07 02-08 02-09 02-10 04-05 05-01 05-02 05-03 05-04 06-09 09-15"
    listed += " 10-01 10-02 10-03 10-04 10-05"
    off = {date.fromisoformat(f"2027-{d}"): "holiday" for d in listed.split()}
    days = BusinessDays(Calendar("cn2027", holidays=off))
    after, until = utc("2026-12-31T16:00Z"), utc("2027-12-31T16:00Z")
    first = fires_between(business(BusinessDay.FIRST), days, after, until, 100)
    last = fires_between(business(BusinessDay.LAST), days, after, until, 100)
    assert [d[5:] for d in local_dates(first)] == (
        ["01-04", "02-01", "03-01", "04-01", "05-05", "06-01", "07-01", "08-02", "09-01", "10-06", "11-01", "12-01"]
    )
    assert [d[5:] for d in local_dates(last)] == (
        ["01-29", "02-26", "03-31", "04-30", "05-31", "06-30", "07-30", "08-31", "09-30", "10-29", "11-30", "12-31"]
    )
    assert first[0].local == "2027-01-04T02:00:00+08:00"


def test_business_day_counts_only_days_the_cron_selects() -> None:
    """The last business day among Mondays: in March 2027 that is the 29th."""
    s = cron("0 2 * * 1", "Asia/Shanghai", calendar="cn", business_day=BusinessDay.LAST)
    assert local_dates(fires_between(s, CN, utc("2027-03-01T00:00Z"), utc("2027-04-01T00:00Z"), 10)) == ["2027-03-29"]


def test_on_holiday_over_the_2026_spring_festival() -> None:
    """Feb 14 (Sat) is a working day, Feb 15-23 are not, Feb 24 is."""

    def dates(expr: str, rule: OnHoliday) -> list[str]:
        s = cron(expr, "Asia/Shanghai", calendar="cn", on_holiday=rule)
        return local_dates(fires_between(s, CN, utc("2026-02-01T00:00Z"), utc("2026-02-25T00:00Z"), 100))

    eve = "0 9 16 2 *"  # only on Feb 16, Chinese New Year's Eve
    assert dates(eve, OnHoliday.RUN) == ["2026-02-16"]
    assert dates(eve, OnHoliday.SKIP) == []
    assert dates(eve, OnHoliday.NEXT) == ["2026-02-24"]
    assert dates(eve, OnHoliday.PREVIOUS) == ["2026-02-14"]
    daily = "0 9 * * *"  # moved fires land on the business day's own 09:00 fire: one fire
    business = ["2026-02-02", "2026-02-03", "2026-02-04", "2026-02-05", "2026-02-06", "2026-02-09", "2026-02-10"]
    business += ["2026-02-11", "2026-02-12", "2026-02-13", "2026-02-14", "2026-02-24"]
    for rule in (OnHoliday.SKIP, OnHoliday.NEXT, OnHoliday.PREVIOUS):
        assert dates(daily, rule) == business
    assert len(dates(daily, OnHoliday.RUN)) == 24


def test_a_moved_fire_keeps_its_wall_time() -> None:
    s = cron("0 9 * * 6", "Asia/Shanghai", calendar="cn", on_holiday=OnHoliday.NEXT)  # Saturdays
    assert [f.local for f in fires_between(s, CN, utc("2026-03-01T00:00Z"), utc("2026-03-20T00:00Z"), 10)] == [
        "2026-03-09T09:00:00+08:00",
        "2026-03-16T09:00:00+08:00",
    ]
    previous = cron("0 9 * * 6", "Asia/Shanghai", calendar="cn", on_holiday=OnHoliday.PREVIOUS)
    assert local_dates(fires_between(previous, CN, utc("2026-03-01T00:00Z"), utc("2026-03-20T00:00Z"), 10)) == [
        "2026-03-06",
        "2026-03-13",
    ]


def test_a_schedule_with_a_calendar_needs_it() -> None:
    with pytest.raises(ValueError, match="schedule 's' needs its calendar 'cn'"):
        fires_between(business(BusinessDay.FIRST), None, 0.0, 1.0, 1)


# --- catch-up ------------------------------------------------------------------------------

DOWN = utc("2026-03-01T00:00Z")  # handled through here, then seven days without a controller
BACK = DOWN + 7 * 86_400 + 30  # 30 s after a fire


def caught(expr: str, policy: CatchUpPolicy, **options: Any) -> tuple[list[float], list[float], int]:
    result = catch_up(cron(expr, "UTC", catch_up=policy, **options), None, DOWN, BACK)
    assert result.handled_through == BACK
    return [f.at for f in result.raise_now], [f.at for f in result.missed], result.missed_count


def test_catch_up_hourly_after_seven_days() -> None:
    last = DOWN + 7 * 86_400  # on time (30 s old); 168 fires in all
    raised, missed, count = caught("0 * * * *", CatchUpPolicy.SKIP)
    assert (raised, count, len(missed)) == ([last], 167, MAX_MISSED_LISTED)
    assert missed[-1] == last - 3600 and missed == sorted(missed)  # the most recent missed ones
    raised, missed, count = caught("0 * * * *", CatchUpPolicy.LATEST)
    assert (raised, count, missed[-1]) == ([last - 3600, last], 166, last - 7200)
    raised, missed, count = caught("0 * * * *", CatchUpPolicy.ALL, max_catch_up=10)
    assert (raised, count) == ([last - 3600 * h for h in range(10, -1, -1)], 157)
    raised, missed, count = caught("0 * * * *", CatchUpPolicy.ALL, max_catch_up=50)
    assert (len(raised), raised[0], count) == (24, last - 23 * 3600, 144)  # the window is a day


def test_catch_up_every_minute_after_seven_days() -> None:
    last = DOWN + 7 * 86_400  # 10,080 fires, over the counting cap
    raised, missed, count = caught("* * * * *", CatchUpPolicy.SKIP)
    assert (raised, count, len(missed), missed[-1]) == ([last], -1, MAX_MISSED_LISTED, last - 60)
    raised, _, count = caught("* * * * *", CatchUpPolicy.LATEST)
    assert (raised, count) == ([last - 60, last], -1)
    raised, missed, count = caught("* * * * *", CatchUpPolicy.ALL, max_catch_up=1000)
    assert (len(raised), raised[0], missed[-1], count) == (1001, last - 60_000, last - 60_060, 9_079)
    raised, _, count = caught("* * * * *", CatchUpPolicy.ALL, catch_up_window_s=600)
    assert (raised, count) == ([last - 60 * m for m in range(9, -1, -1)], -1)  # 630 s is outside the window


def test_catch_up_on_time_fires_are_always_raised() -> None:
    s = cron("*/10 * * * * *", "UTC", catch_up=CatchUpPolicy.SKIP)  # every ten seconds
    result = catch_up(s, None, BACK - 45, BACK)
    assert [f.at - BACK for f in result.raise_now] == [-40, -30, -20, -10, 0]
    assert (result.missed, result.missed_count) == ((), 0)
    assert catch_up(s, None, BACK, BACK - 5) == catch_up(s, None, BACK, BACK)  # the clock went back


def test_a_ten_year_outage_of_a_per_second_schedule_is_bounded() -> None:
    for s in (
        cron("* * * * * *", "Europe/Berlin", catch_up=CatchUpPolicy.ALL, max_catch_up=1000),
        Schedule("s", every_s=1, catch_up=CatchUpPolicy.ALL, max_catch_up=1000),
    ):
        now = utc("2036-03-01T00:00:00.5Z")
        started = wall_clock.perf_counter()
        result = catch_up(s, None, utc("2026-03-01T00:00Z"), now)
        assert wall_clock.perf_counter() - started < 2.0
        assert len(result.raise_now) == 1060  # 60 on time, 1,000 late
        assert result.raise_now[0].at == now - 0.5 - 1059
        assert (len(result.missed), result.missed_count) == (MAX_MISSED_LISTED, -1)
        assert result.missed[-1].at == result.raise_now[0].at - 1


# --- jitter, deadlines, templates ----------------------------------------------------------


def test_jitter_is_the_same_everywhere_and_within_bounds() -> None:
    s = cron("0 2 * * *", "UTC", jitter_s=300.0)
    fires = fires_between(s, None, DOWN, DOWN + 30 * 86_400, 100)
    delays = [raise_at(s, f) - f.at for f in fires]
    assert all(0 <= d < 300 for d in delays)
    assert len(set(delays)) == len(delays)  # spread, not one offset
    assert delays[0] == raise_at(s, fires[0]) - fires[0].at  # a pure function of schedule and fire
    assert raise_at(cron("0 2 * * *", "UTC"), fires[0]) == fires[0].at


def test_deadlines() -> None:
    s = cron("0 2 * * *", "Asia/Shanghai", deadline=clock(6, 0))
    fire = next_fire(s, None, utc("2027-01-03T00:00Z"))
    assert fire is not None and deadline_of(s, fire) == utc("2027-01-03T22:00Z")  # 06:00 the same day
    late = Fire(utc("2027-01-03T23:00Z"), "2027-01-04T07:00:00+08:00")
    assert deadline_of(s, late) == utc("2027-01-04T22:00Z")  # 06:00 the next day
    assert deadline_of(cron("0 2 * * *", "UTC", deadline_after_s=3600), late) == late.at + 3600
    assert deadline_of(cron("0 2 * * *", "UTC"), late) is None
    repeated = cron("0 1 * * *", "America/New_York", deadline=clock(1, 30))
    second_pass = Fire(utc("2026-11-01T06:10Z"), "2026-11-01T01:10:00-05:00")
    assert deadline_of(repeated, second_pass) == utc("2026-11-01T06:30Z")  # 01:30 EST, the second 01:30


def test_the_year_end_report_parameters() -> None:
    params = {
        "year": "{fire.previous_year}",
        "label": "{fire.year}",
        "title": "{schedule} {fire.date} {fire.time} ({fire.instant})",
        "files": ["in/{fire.year}/{fire.month}/{fire.day}.csv", {"since": "{fire.previous_business_day}"}],
        "periods": {"month": "{fire.previous_month}", "day": "{fire.previous_day}"},
        "raw": '{{fire.year}} {"a": 1}',
        "count": 3,
    }
    s = cron("0 2 * 1 *", "Asia/Shanghai", calendar="cn", business_day=BusinessDay.FIRST, params=params)
    s = Schedule(**{**s.__dict__, "name": "year_end", "text_params": frozenset({"label"})})
    fire = Fire(utc("2027-01-03T18:00Z"), "2027-01-04T02:00:00+08:00")
    assert fire_params(s, fire, CN) == {
        "year": 2026,
        "label": "2027",  # the graph declares it a string
        "title": "year_end 2027-01-04 02:00 (2027-01-03T18:00:00Z)",
        "files": ["in/2027/01/04.csv", {"since": "2026-12-31"}],
        "periods": {"month": "2026-12", "day": "2027-01-03"},
        "raw": '{fire.year} {"a": 1}',
        "count": 3,
    }


def test_month_and_day_alone_are_integers() -> None:
    s = cron("0 2 * * *", "UTC", params={"m": "{fire.month}", "d": "{fire.day}", "y": "{fire.year}"})
    fire = Fire(utc("2027-02-05T02:00Z"), "2027-02-05T02:00:00+00:00")
    assert fire_params(s, fire, None) == {"m": 2, "d": 5, "y": 2027}


def test_previous_business_day_needs_the_calendar() -> None:
    s = cron("0 2 * * *", "UTC", params={"since": "{fire.previous_business_day}"})
    with pytest.raises(ValueError, match=r"\{fire.previous_business_day\} cannot be rendered"):
        fire_params(s, Fire(utc("2027-02-05T02:00Z"), ""), None)
