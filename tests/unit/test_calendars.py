"""Business calendars: validation, the plain-data round trip, and which dates are business days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from baton.engine.fires import BusinessDays
from baton.errors import CalendarInvalid, GraphInvalid
from baton.graphs.calendars import Calendar, calendar_from_dict, calendar_to_dict, load_calendar_text

CN_TEXT = """\
calendar: cn_business
description: Mainland China working days
country: CN
weekend: [sat, sun]
holidays:
  2027-12-31: Year-end closing
working_days: [2027-01-02]
"""


def problems(data: Any) -> list[str]:
    with pytest.raises(CalendarInvalid) as info:
        calendar_from_dict(data, source="cal.yaml")
    return [str(p) for p in info.value.problems]


def days_of(month: date) -> list[date]:
    out, day = [], month
    while day.month == month.month:
        out.append(day)
        day += timedelta(days=1)
    return out


# --- loading and validation ----------------------------------------------------------------


def test_a_calendar_loads_from_yaml_with_dates_as_yaml_reads_them() -> None:
    cal = load_calendar_text(CN_TEXT, source="cn.yaml")
    assert cal == Calendar(
        name="cn_business",
        description="Mainland China working days",
        country="CN",
        weekend=frozenset({5, 6}),
        holidays={date(2027, 12, 31): "Year-end closing"},
        working_days=frozenset({date(2027, 1, 2)}),
    )


def test_defaults_are_a_saturday_sunday_weekend_and_nothing_else() -> None:
    assert calendar_from_dict({"calendar": "plain"}) == Calendar("plain")


def test_round_trip_through_plain_data() -> None:
    cal = load_calendar_text(CN_TEXT)
    data = calendar_to_dict(cal)
    assert data["holidays"] == {"2027-12-31": "Year-end closing"}
    assert data["working_days"] == ["2027-01-02"]
    assert calendar_from_dict(data) == cal
    seven_days = calendar_from_dict({"calendar": "ops", "weekend": [], "subdivision": None})
    assert calendar_from_dict(calendar_to_dict(seven_days)) == seven_days


def test_every_problem_is_reported_with_its_path() -> None:
    found = problems(
        {
            "calendar": "bad name!",
            "country": "XX",
            "weekend": ["sat", "sunday"],
            "holidays": {"2027-02-30": "No such day", "2027-03-01": 5},
            "working_days": ["yesterday"],
            "colour": "red",
        }
    )
    assert found == [
        "cal.yaml: colour: unknown key 'colour' (expected one of: calendar, description, country, subdivision, "
        "weekend, holidays, working_days)",
        "cal.yaml: calendar: 'bad name!' is not a valid name (letters, digits, _ . -; starting with a letter)",
        "cal.yaml: country: 'XX' is not a country code the holidays package supports (such as CN, US)",
        "cal.yaml: weekend: must be a list of weekdays (mon, tue, wed, thu, fri, sat, sun), such as [sat, sun]",
        "cal.yaml: holidays[\"2027-02-30\"]: '2027-02-30' is not a valid date: day is out of range for month",
        'cal.yaml: holidays["2027-03-01"]: the holiday\'s name must be a string, not int',
        "cal.yaml: working_days[0]: 'yesterday' must be a date YYYY-MM-DD",
    ]


def test_a_day_cannot_be_both_a_holiday_and_a_working_day() -> None:
    found = problems({"calendar": "c", "holidays": {date(2027, 1, 2): "Bridge"}, "working_days": [date(2027, 1, 2)]})
    assert found == [
        "cal.yaml: working_days[0]: 2027-01-02 is also listed in holidays ('Bridge'); a day is one or the other"
    ]


def test_subdivisions_are_checked_against_the_country() -> None:
    assert calendar_from_dict({"calendar": "bavaria", "country": "DE", "subdivision": "BY"}).subdivision == "BY"
    (found,) = problems({"calendar": "c", "country": "DE", "subdivision": "XX"})
    assert found.startswith("cal.yaml: subdivision: 'XX' is not a subdivision of DE (known: BB, BE, BW, BY,")
    assert problems({"calendar": "c", "subdivision": "BY"}) == ["cal.yaml: subdivision: needs a country"]


def test_a_week_without_a_working_day_is_refused() -> None:
    all_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert problems({"calendar": "c", "weekend": all_days}) == ["cal.yaml: weekend: leaves no working weekday"]


def test_yaml_problems_carry_lines_and_the_error_says_calendar() -> None:
    with pytest.raises(CalendarInvalid) as info:
        load_calendar_text("calendar: c\nweekend: [sat, sun]\nholidays:\n  2027-01-01: 1\n", source="c.yaml")
    assert isinstance(info.value, GraphInvalid)  # the API and CLI already know how to show it
    assert str(info.value) == (
        "invalid calendar c.yaml (1 problem):\n"
        '  - c.yaml: holidays["2027-01-01"] (line 4): the holiday\'s name must be a string, not int'
    )
    with pytest.raises(CalendarInvalid, match="duplicate key 'calendar'"):
        load_calendar_text("calendar: a\ncalendar: b\n")
    with pytest.raises(CalendarInvalid, match="a calendar must be a mapping"):
        load_calendar_text("- just a list\n")


# --- business days -------------------------------------------------------------------------


def test_china_february_2026_from_the_holidays_package() -> None:
    """Spring Festival 2026: Feb 15-23 off, and two Saturdays (Feb 14 and 28) are working days,
    all known to the `holidays` package."""
    days = BusinessDays(calendar_from_dict({"calendar": "cn", "country": "CN"}))
    business = [d.day for d in days_of(date(2026, 2, 1)) if days.is_business(d)]
    assert business == [2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 24, 25, 26, 27, 28]


def test_the_order_of_the_rules() -> None:
    cal = calendar_from_dict(
        {
            "calendar": "c",
            "country": "CN",
            "holidays": {"2026-02-14": "Team day"},  # a working Saturday in China, off here
            "working_days": ["2026-02-17", "2026-02-21"],  # a Spring Festival day and a Saturday
        }
    )
    days = BusinessDays(cal)
    assert not days.is_business(date(2026, 2, 14))  # calendar holidays beat the package's working days
    assert days.is_business(date(2026, 2, 17))  # calendar working days beat the package's holidays
    assert days.is_business(date(2026, 2, 21))  # ... and the weekend
    assert days.is_business(date(2026, 2, 28))  # the package's working Saturday
    assert not days.is_business(date(2026, 2, 16))  # the package's holiday
    assert not days.is_business(date(2026, 3, 1))  # a Sunday


def test_next_and_previous_business_day() -> None:
    days = BusinessDays(calendar_from_dict({"calendar": "cn", "country": "CN"}))
    assert days.next_business(date(2026, 2, 14)) == date(2026, 2, 24)
    assert days.previous_business(date(2026, 2, 24)) == date(2026, 2, 14)
    assert days.next_business(date(2026, 12, 31)) == date(2027, 1, 4)  # 2027-01-01 is New Year's Day
    nothing = BusinessDays(Calendar("closed", weekend=frozenset(range(6)), holidays={}))
    assert nothing.next_business(date(2026, 1, 5)) == date(2026, 1, 11)  # Sundays only


def test_a_calendar_without_a_country_uses_its_own_lists_only() -> None:
    days = BusinessDays(Calendar("plain", weekend=frozenset({4, 5}), holidays={date(2026, 1, 1): "New Year"}))
    assert [days.is_business(date(2026, 1, d)) for d in range(1, 8)] == [False, False, False, True, True, True, True]
