"""``baton calendar``, ``baton schedule``, ``baton backfill`` and ``baton backfills`` as the real
command line in subprocesses, against a real ``baton server`` on both backends, each run with
``--server --token`` and with ``--db`` and the outputs compared (the pattern of
``test_cli_server_mode.py``); bad input is exit 2 with a message, either way."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine import GRAPHS, Engine
from serving import Served, mint
from test_cli_server_mode import EXIT_USAGE, Both, baton_all

from baton.access import Role
from baton.engine.states import EventState
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store

GRAPH = f"""
graph: nightly
python_path: [{GRAPHS!r}]
params: {{day: {{type: string}}}}
schedules:
  nightly_run:
    cron: "0 2 * * *"
    timezone: Asia/Shanghai
    params: {{day: "{{fire.date}}"}}
  workdays:
    cron: "0 9 * * *"
    timezone: Asia/Shanghai
    calendar: cn_test
    params: {{day: "{{fire.date}}"}}
nodes:
  work: {{run: "fault_tasks:ok", partitioned: false}}
"""
SINGLE = GRAPH.replace("graph: nightly", "graph: single").replace("nightly_run", "single_run")
SINGLE = SINGLE[: SINGLE.index("  workdays:")] + SINGLE[SINGLE.index("nodes:") :]
CALENDAR = """calendar: cn_test
description: test days
country: CN
holidays:
  2027-12-31: Year-end closing
working_days: [2027-01-02]
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "cn.yaml").write_text(CALENDAR)
    (tmp_path / "bad.yaml").write_text("calendar: cn_test\nweekend: [sat, sunday]\ncolour: red\n")
    return tmp_path


@pytest.fixture
def admin(backend: Store, served: Served) -> Both:
    backend.register_graph(load_graph_text(GRAPH))
    backend.register_graph(load_graph_text(SINGLE))
    return Both(backend.url, served.url, mint(backend, Role.ADMIN))


def test_calendar_and_schedule_commands_and_their_json_print_alike_both_ways(
    backend: Store, admin: Both, files: Path
) -> None:
    waiting = admin.compare("schedule", "list")
    assert "workdays" in waiting.stdout and "waiting for calendar cn_test, which is not registered" in waiting.stdout
    registered = admin.compare("calendar", "register", str(files / "cn.yaml"))
    assert registered.stdout == ("calendar cn_test registered: CN, weekend sat,sun; 1 holiday(s), 1 working day(s) "
                                 "listed — test days\n")  # fmt: skip
    for args in (["calendar", "list"], ["calendar", "list", "--json"],
                 ["calendar", "show", "cn_test", "--year", "2026"],
                 ["calendar", "show", "cn_test", "--year", "2027", "--json"], ["schedule", "list"],
                 ["schedule", "list", "--json"], ["schedule", "show", "workdays", "--next", "3"],
                 ["schedule", "show", "nightly_run", "--json"]):  # fmt: skip
        shown = admin.compare(*args)
        assert shown.returncode == 0 and shown.stdout, (args, shown.stderr)
    year = admin.compare("calendar", "show", "cn_test", "--year", "2026").stdout
    assert "  2026-02  16 business days: 2-6, 9-14, 24-28\n" in year
    assert "2026-02-16 Mon  holiday          Chinese New Year's Eve" in year
    assert "2026-02-14 Sat  working weekend  working day on the weekend" in year
    shown = admin.compare("schedule", "show", "workdays", "--next", "3").stdout.splitlines()
    assert shown[:2] == ["schedule workdays (graph nightly): active",
                         '  when: cron "0 9 * * *" in Asia/Shanghai, calendar cn_test (on_holiday skip)']  # fmt: skip
    assert [line[:13] for line in shown[2:5]] == ["  next fire: "] * 3 and shown[2].endswith("09:00 +08:00")

    backend.pause_schedule("nightly_run", note="month-end freeze", actor="ops")
    paused = admin.compare("schedule", "show", "nightly_run")
    assert "  paused by ops at " in paused.stdout and paused.stdout.splitlines()[2].endswith(": month-end freeze")
    assert "nightly_run              nightly              paused   next —" in admin.compare("schedule", "list").stdout


def test_pause_resume_and_bad_input_answer_alike_both_ways(backend: Store, admin: Both, files: Path) -> None:
    (through,) = baton_all(admin.remote("schedule", "pause", "nightly_run", "--note", "freeze"))
    assert (through.returncode, through.stdout) == (0, "schedule nightly_run paused: freeze\n"), through.stderr
    assert backend.schedule("nightly_run").paused_by is not None
    (direct,) = baton_all(admin.direct("schedule", "pause", "nightly_run"))
    assert (direct.returncode, direct.stdout) == (0, "schedule nightly_run paused\n")
    resumed = baton_all(admin.remote("schedule", "resume", "nightly_run"))[0]
    assert (resumed.returncode, resumed.stdout) == (0, "schedule nightly_run resumed\n")
    refusals = [
        (["schedule", "resume", "nightly_run"], "schedule nightly_run is active, not paused"),
        (["schedule", "show", "nope"], "no schedule 'nope'"),
        (["schedule", "pause", "nope"], "no schedule 'nope'"),
        (["schedule", "show", "nightly_run", "--next", "0"], "0 is not in the range 1<=x<=100"),
        (["calendar", "show", "nope"], "no calendar 'nope'"),
        (["calendar", "register", str(files / "bad.yaml")], "bad.yaml: colour (line 3): unknown key 'colour'"),
        (["calendar", "register", str(files / "missing.yaml")], "cannot read"),
        (["backfill", "nightly", "--from", "2025-01-01", "--to", "2025-01-02"],
         "graph nightly has several schedules (nightly_run, workdays): name one, or add --schedule NAME"),
        (["backfill", "nightly", "--schedule", "nope", "--from", "2025-01-01", "--to", "2025-01-02"],
         "graph nightly has no schedule 'nope' (its schedules: nightly_run, workdays)"),
        (["backfill", "nope", "--from", "2025-01-01", "--to", "2025-01-02"], "no schedule 'nope', and no graph"),
        (["backfill", "single", "--from", "2025-02-01", "--to", "2025-01-02"], "--to (2025-01-02) is before --from"),
        (["backfill", "single", "--from", "last week", "--to", "2025-01-02"], "'last week' is not a date"),
        (["backfill", "single", "--from", "1900-01-01", "--to", "2025-01-02"], "the range spans over 36,600 days"),
        (["backfill", "single", "--from", "2025-01-01", "--to", "2025-01-02", "--max-running", "0"],
         "0 is not in the range 1<=x<=1000"),
        (["backfill", "workdays", "--from", "2025-01-01", "--to", "2025-01-02", "--dry-run"], "cn_test"),
        (["backfill", "list"], "for backfills made: baton backfills list"),
        (["backfill", "single"], "give the range with --from DATE and --to DATE"),
        (["backfills", "show", "7"], "no backfill 7"),
        (["backfills", "cancel", "7"], "no backfill 7"),
    ]  # fmt: skip
    for args, message in refusals:
        refused = admin.compare(*args)
        assert refused.returncode == EXIT_USAGE and message in refused.stderr, (args, refused.stderr)
    viewer, client = mint(backend, Role.VIEWER), mint(backend, Role.CLIENT)
    forbidden = baton_all(["schedule", "pause", "nightly_run", "--server", admin.url, "--token", viewer],
                          ["calendar", "register", str(files / "cn.yaml"), "--server", admin.url, "--token", client],
                          ["schedule", "trigger", "nightly_run", "--server", admin.url, "--token", viewer])  # fmt: skip
    assert [f.returncode for f in forbidden] == [EXIT_USAGE] * 3
    assert "a viewer token may not steer" in forbidden[0].stderr
    assert "a client token may not register_graph" in forbidden[1].stderr
    assert "a viewer token may not submit" in forbidden[2].stderr
    assert backend.calendars() == [] and backend.events() == []


def test_fire_now_and_a_backfill_run_to_the_end_and_print_alike_both_ways(backend: Store, admin: Both) -> None:
    dry = ["backfill", "single", "--from", "2025-01-01", "--to", "2025-01-03", "--dry-run"]
    with Engine(backend):
        (fired,) = baton_all(admin.remote("schedule", "trigger", "single_run", "--wait"))
        planned = admin.compare(*dry)
        (ran,) = baton_all(admin.remote("backfill", "single", "--from", "2025-01-01", "--to", "2025-01-03",
                                        "--max-running", "2", "--wait"))  # fmt: skip
        again = admin.compare(*dry)
        shown = [admin.compare(*args) for args in (["backfills", "list"], ["backfills", "list", "--json"],
                                                   ["backfills", "show", "1"], ["backfills", "show", "1", "--json"],
                                                   [*dry, "--json"], [*dry, "--rerun"])]  # fmt: skip
    assert fired.returncode == 0 and "work" in fired.stdout, fired.stderr
    assert planned.stdout == (
        "dry run: schedule single_run, 2025-01-01 00:00 +08:00 to 2025-01-03 23:59:59 +08:00\n"
        "  3 fire(s), 0 already have an event (skipped): 3 to raise\n"
        "  first: 2025-01-01 02:00 +08:00, 2025-01-02 02:00 +08:00, 2025-01-03 02:00 +08:00\n"
        "nothing was stored; run it again without --dry-run to start it\n"
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[:4] == ["1", "single_run", "done", "3/3"]
    assert "backfill 1 of schedule single_run started: 3 fire(s)" in ran.stderr
    assert "  3 fire(s), 3 already have an event (skipped): 0 to raise\n" in again.stdout
    assert all(s.returncode == 0 for s in shown)
    assert "(3 raised, 0 skipped), 0 running" in shown[0].stdout
    assert shown[2].stdout.count("succeeded  fire of 2025-01-0") == 3
    assert '"fires": 3, "with_events": 3' in shown[4].stdout
    assert "each raised (--rerun" in shown[5].stdout
    events = backend.events(backfill_id=1)
    assert sorted(e.params["day"] for e in events) == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert {e.state for e in events} == {EventState.SUCCEEDED}

    (started,) = baton_all(admin.remote("backfill", "single_run", "--from", "2025-02-01", "--to", "2025-02-02",
                                        "--json"))  # fmt: skip
    assert started.returncode == 0 and '"state": "running"' in started.stdout, started.stderr
    (cancelled,) = baton_all(admin.direct("backfills", "cancel", "2"))
    twice = admin.compare("backfills", "cancel", "2")
    assert (cancelled.returncode, cancelled.stdout) == (
        0, "backfill 2 cancelled: 0 of 2 fire(s) raised; 0 of its events running\n",
    )  # fmt: skip
    assert twice.returncode == EXIT_USAGE and "backfill 2 is cancelled" in twice.stderr
    assert backend.backfill(2).state == "cancelled"
