"""Schedules in a graph: validation with a path on every problem, defaults, and the round trip."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from baton.graphs.model import Param, ParamType
from baton.graphs.schedules import (
    BusinessDay,
    CatchUpPolicy,
    OnHoliday,
    Overlap,
    Schedule,
    schedule_to_dict,
    schedules_from_dict,
)
from baton.graphs.spec import _Collector
from baton.graphs.yamlload import load_yaml

PARAMS = (
    Param("year", ParamType.INTEGER, required=True),
    Param("label", ParamType.STRING, default="x"),
    Param("files", ParamType.LIST, default=[]),
)

YEAR_END = """\
schedules:
  year_end:
    description: The year-end report, on the first business day of January
    cron: "0 2 * 1 *"
    timezone: Asia/Shanghai
    calendar: cn_business
    business_day: first
    params: {year: "{fire.previous_year}", label: "report {fire.year}"}
    deadline: "06:00"
    catch_up: all
    max_catch_up: 3
"""


class Collected:
    """A problem collector as the graph's would be: it keeps (dotted path, message)."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, path: tuple[str, ...], message: str) -> None:
        self.problems.append((".".join(path), message))


def check(spec: dict[str, Any], params: tuple[Param, ...] = PARAMS) -> tuple[tuple[Schedule, ...], list[str]]:
    c = Collected()
    found = schedules_from_dict(c, {"nightly": spec}, params)
    return found, [f"{path}: {message}" for path, message in c.problems]


def problems_of(spec: dict[str, Any], params: tuple[Param, ...] = PARAMS) -> list[str]:
    found, problems = check(spec, params)
    assert not found
    return problems


def only(spec: dict[str, Any], params: tuple[Param, ...] = PARAMS) -> Schedule:
    found, problems = check(spec, params)
    assert problems == []
    (schedule,) = found
    return schedule


NIGHTLY = {"cron": "0 2 * * *", "params": {"year": 2026}}


# --- valid schedules -----------------------------------------------------------------------


def test_the_year_end_schedule_from_yaml() -> None:
    document = load_yaml(YEAR_END)
    c = _Collector("graph.yaml", document.lines)
    (s,) = schedules_from_dict(c, document.data["schedules"], PARAMS)
    assert c.problems == []
    assert s == Schedule(
        name="year_end",
        cron="0 2 * 1 *",
        timezone="Asia/Shanghai",
        params={"year": "{fire.previous_year}", "label": "report {fire.year}"},
        calendar="cn_business",
        on_holiday=OnHoliday.SKIP,
        business_day=BusinessDay.FIRST,
        catch_up=CatchUpPolicy.ALL,
        max_catch_up=3,
        deadline=time(6, 0),
        description="The year-end report, on the first business day of January",
        text_params=frozenset({"label"}),
    )


def test_defaults() -> None:
    s = only(NIGHTLY)
    assert (s.timezone, s.on_holiday, s.catch_up, s.catch_up_window_s, s.max_catch_up) == (
        "UTC",
        OnHoliday.RUN,
        CatchUpPolicy.LATEST,
        86_400.0,
        10,
    )
    assert (s.overlap, s.jitter_s, s.paused, s.deadline, s.deadline_after_s) == (Overlap.SKIP, 0.0, False, None, None)
    assert only({**NIGHTLY, "calendar": "cn"}).on_holiday is OnHoliday.SKIP  # a calendar skips by default


def test_an_interval_with_start_and_end_as_yaml_writes_them() -> None:
    s = only({"every_s": 900, "start": date(2026, 1, 1), "end": "2026-06-30T18:30", "params": {"year": 1}})
    assert (s.every_s, s.cron) == (900, None)
    assert (s.start, s.end) == (datetime(2026, 1, 1), datetime(2026, 6, 30, 18, 30))
    assert only({**NIGHTLY, "start": datetime(2026, 1, 1, 8, 0, 30)}).start == datetime(2026, 1, 1, 8, 0, 30)


def test_round_trip_through_plain_data() -> None:
    specs = [
        NIGHTLY,
        {"every_s": 60, "start": "2026-01-01T08:00:30", "params": {"year": 2026}, "jitter_s": 12.5, "paused": True},
        {
            "cron": "*/5 9-17 * * 1-5",
            "timezone": "Europe/Berlin",
            "calendar": "de",
            "on_holiday": "next",
            "params": {"year": "{fire.year}", "files": ["in/{fire.date}.csv"]},
            "end": "2030-01-01",
            "deadline_after_s": 3600,
            "overlap": "queue_one",
            "catch_up": "skip",
            "catch_up_window_s": 600,
        },
        {**NIGHTLY, "deadline": "06:30:15", "description": "text"},
    ]
    for spec in specs:
        s = only(spec)
        again, problems = check(schedule_to_dict(s))
        assert problems == []
        assert again == (s,)


def test_templates_may_escape_braces_and_leave_other_braces_alone() -> None:
    s = only({**NIGHTLY, "params": {"year": 1, "label": '{{fire.date}} {"a": 1} {fire.date}'}})
    assert s.params["label"] == '{{fire.date}} {"a": 1} {fire.date}'


# --- problems, each with its path ----------------------------------------------------------


def test_bad_cron() -> None:
    assert problems_of({**NIGHTLY, "cron": "0 25 * * *"}) == [
        "schedules.nightly.cron: '0 25 * * *' is not a cron expression cronsim accepts: Bad hour"
    ]
    assert problems_of({**NIGHTLY, "cron": "0 2 * *"}) == [
        "schedules.nightly.cron: '0 2 * *' is not a cron expression cronsim accepts: Wrong number of fields"
    ]
    assert problems_of({**NIGHTLY, "cron": 5}) == [
        'schedules.nightly.cron: 5 must be a cron expression in quotes, such as "0 2 * * *"'
    ]


def test_cron_or_every_s_exactly_one() -> None:
    assert problems_of({**NIGHTLY, "every_s": 60}) == [
        "schedules.nightly: give exactly one of 'cron' (an expression) and 'every_s' (an interval in seconds)"
    ]
    assert problems_of({"params": {"year": 1}}) == [
        "schedules.nightly: give exactly one of 'cron' (an expression) and 'every_s' (an interval in seconds)"
    ]
    assert problems_of({"every_s": 0.5, "params": {"year": 1}}) == ["schedules.nightly.every_s: 0.5 must be an integer"]
    assert problems_of({"every_s": 400 * 86_400, "params": {"year": 1}}) == [
        "schedules.nightly.every_s: 34560000 is out of range: must be between 1 and 31,622,400"
    ]


def test_bad_zone() -> None:
    message = "is not an IANA time zone (such as UTC, Europe/Berlin, Asia/Shanghai)"
    assert problems_of({**NIGHTLY, "timezone": "Mars/Olympus"}) == [
        f"schedules.nightly.timezone: 'Mars/Olympus' {message}"
    ]
    for name in ("../etc/passwd", "localtime", "right/UTC", ""):
        assert problems_of({**NIGHTLY, "timezone": name}) == [f"schedules.nightly.timezone: {name!r} {message}"]


def test_unknown_and_missing_parameters() -> None:
    assert problems_of({"cron": "0 2 * * *", "params": {"yeer": 2026}}) == [
        "schedules.nightly.params.yeer: unknown parameter 'yeer' (declared: year, label, files)",
        "schedules.nightly.params: the graph's required parameter 'year' is not set",
    ]
    assert problems_of({**NIGHTLY, "params": {"year": "2026"}}) == [
        "schedules.nightly.params.year: expected integer, got str '2026'"
    ]


def test_unknown_placeholder() -> None:
    (problem,) = problems_of({**NIGHTLY, "params": {"year": 1, "label": "{fire.dat}"}})
    assert problem.startswith("schedules.nightly.params.label: unknown placeholder {fire.dat} (known: {fire.date}, ")
    (problem,) = problems_of({**NIGHTLY, "params": {"year": 1, "files": [{"name": "{sched}"}]}})
    assert problem.startswith("schedules.nightly.params.files: unknown placeholder {sched} ")


def test_a_template_must_render_to_the_parameter_type() -> None:
    assert only({**NIGHTLY, "params": {"year": "{fire.year}"}}).params == {"year": "{fire.year}"}
    assert problems_of({**NIGHTLY, "params": {"year": "{fire.date}"}}) == [
        "schedules.nightly.params.year: expected integer, got str '{fire.date}' (only a lone integer placeholder "
        'such as "{fire.year}" renders as an integer)'
    ]


def test_calendar_rules_need_a_calendar() -> None:
    assert problems_of({**NIGHTLY, "business_day": "first"}) == [
        "schedules.nightly.business_day: needs a calendar: add 'calendar: NAME'"
    ]
    assert problems_of({**NIGHTLY, "on_holiday": "next"}) == [
        "schedules.nightly.on_holiday: 'next' needs a calendar: add 'calendar: NAME'"
    ]
    assert problems_of({**NIGHTLY, "params": {"year": 1, "label": "{fire.previous_business_day}"}}) == [
        "schedules.nightly.params.label: {fire.previous_business_day} needs a calendar: add 'calendar: NAME' "
        "to the schedule"
    ]
    assert only({**NIGHTLY, "on_holiday": "run"}).on_holiday is OnHoliday.RUN


def test_business_day_needs_cron_and_leaves_on_holiday_out() -> None:
    interval = {"every_s": 3600, "params": {"year": 1}, "calendar": "cn", "business_day": "last"}
    assert problems_of(interval) == [
        "schedules.nightly.business_day: needs 'cron': it picks among the days the cron expression selects"
    ]
    assert problems_of({**NIGHTLY, "calendar": "cn", "business_day": "first", "on_holiday": "next"}) == [
        "schedules.nightly.on_holiday: has no effect with business_day (every fire kept is on a business day)"
    ]


def test_policies_and_numbers() -> None:
    assert problems_of({**NIGHTLY, "catch_up": "some", "overlap": "replace", "max_catch_up": 0}) == [
        "schedules.nightly.catch_up: 'some' is not one of skip, latest, all",
        "schedules.nightly.max_catch_up: 0 is out of range: must be between 1 and 1,000",
        "schedules.nightly.overlap: 'replace' is not one of skip, queue_one, allow, cancel_running",
    ]
    assert problems_of({**NIGHTLY, "jitter_s": 3601, "paused": "no"}) == [
        "schedules.nightly.jitter_s: 3601 is out of range: must be between 0 and 3,600",
        "schedules.nightly.paused: must be true or false",
    ]


def test_start_end_and_deadlines() -> None:
    assert problems_of({**NIGHTLY, "start": "2026-02-01", "end": date(2026, 1, 1)}) == [
        "schedules.nightly.end: must be after start (2026-02-01T00:00:00)"
    ]
    assert problems_of({**NIGHTLY, "start": "2026-02-30"}) == [
        "schedules.nightly.start: '2026-02-30' is not a valid date: day is out of range for month"
    ]
    assert problems_of({**NIGHTLY, "deadline": "06:00", "deadline_after_s": 60}) == [
        "schedules.nightly: give at most one of 'deadline' (a clock time) and 'deadline_after_s'"
    ]
    assert problems_of({**NIGHTLY, "deadline": 390}) == [  # YAML's reading of an unquoted 6:30
        'schedules.nightly.deadline: 390 must be a local clock time "HH:MM" (YAML reads an unquoted 6:30 as the '
        'number 390: write "06:30")'
    ]


def test_names_keys_and_shapes() -> None:
    c = Collected()
    assert schedules_from_dict(c, {"bad name": {}, "ok": ["x"]}, PARAMS) == ()
    assert schedules_from_dict(c, ["x"], PARAMS) == ()
    assert c.problems == [
        ("schedules.bad name", "'bad name' is not a valid name (letters, digits, _ . -; starting with a letter)"),
        ("schedules.ok", "must be a mapping with 'cron' or 'every_s'"),
        ("schedules", "must be a mapping of schedule name to schedule"),
    ]
    (problem,) = problems_of({**NIGHTLY, "when": "nightly"})
    assert problem.startswith("schedules.nightly.when: unknown key 'when' (expected one of: business_day, calendar,")


def test_problems_carry_the_yaml_line_through_the_graph_collector() -> None:
    document = load_yaml(YEAR_END.replace("Asia/Shanghai", "Asia/Shanghia"))
    c = _Collector("graph.yaml", document.lines)
    assert schedules_from_dict(c, document.data["schedules"], PARAMS) == ()
    assert [str(p) for p in c.problems] == [
        "graph.yaml: schedules.year_end.timezone (line 5): 'Asia/Shanghia' is not an IANA time zone (such as UTC, "
        "Europe/Berlin, Asia/Shanghai)"
    ]
