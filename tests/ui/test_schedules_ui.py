"""The schedules, calendar and backfills pages through a real ``baton server`` and chromium: next
fires in each schedule's zone and what waits for a calendar; pause (with a note), resume and fire
now for an operator, absent and refused (403) for a viewer; a backfill previewed, started and
followed (its progress as a meter, its events); a calendar's year; the overview's next fires; an
event's "raised by" links.

No controller runs: state is put in through the store's verbs, and a backfill is moved on by
calling the controller's backfill duty once (no test waits for a clock)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect
from serving import Served, mint
from test_browser_defences import Violations
from uilogin import form_login

from baton.access import Role
from baton.clock import FakeClock
from baton.controller.duties import Expand
from baton.controller.schedules import Backfiller
from baton.graphs.calendars import load_calendar_text
from baton.graphs.spec import load_graph_text
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import BackfillRequest

GRAPH = """
graph: ledger
params: {day: {type: string}}
schedules:
  nightly_close:
    description: The nightly ledger close
    cron: "0 2 * * *"
    timezone: Asia/Shanghai
    params: {day: "{fire.date}"}
  berlin_workdays:
    cron: "0 9 * * *"
    timezone: Europe/Berlin
    calendar: cn_ui
    params: {day: "{fire.date}"}
  fire_drill:
    every_s: 3600
    params: {day: "{fire.date}"}
  quarter_end:
    cron: "30 6 * * *"
    timezone: America/New_York
    calendar: us_missing
    params: {day: "{fire.date}"}
nodes:
  work: {run: "m:f", partitioned: false}
"""
HIDDEN = """
graph: hidden_ledger
schedules:
  hidden_run: {cron: "0 3 * * *"}
nodes:
  work: {run: "m:f", partitioned: false}
"""
CALENDAR = """calendar: cn_ui
description: Mainland China working days
country: CN
holidays:
  2026-12-31: Year-end closing
"""
OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} [+-]\d{2}:\d{2}$")


@dataclass(frozen=True)
class World:
    server: Served
    store: Store
    backfill_id: int  # nightly_close's January: 4 of its 10 fires raised, 3 running, 1 cancelled
    operator: str  # a client token: steer and submit
    viewer: str
    limited: str  # a viewer of hidden_ledger only


def _january(store: Store) -> int:
    """A backfill of nightly_close's first ten days of 2025 (Shanghai), moved on by the
    controller's backfill duty twice: three raised, one of them cancelled, then one more."""
    january = BackfillRequest("nightly_close", 1735660800.0, 1736524799.0, max_running=3)  # 2025-01-01..10 +08:00
    backfill = store.start_backfill(january, actor="ops")
    clock = FakeClock(wall_start=time.time())
    Backfiller(1.0, clock).run(store, clock.now())
    Expand(100).run(store, 0.0)
    store.cancel(min(e.id for e in store.events(backfill_id=backfill.id)))
    Backfiller(1.0, clock).run(store, clock.now())
    Expand(100).run(store, 0.0)
    return backfill.id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("schedules")
    store = open_store(f"sqlite:///{folder / 'baton.db'}")
    store.migrate()
    store.register_graph(load_graph_text(GRAPH))
    store.register_graph(load_graph_text(HIDDEN))
    store.register_calendar(load_calendar_text(CALENDAR), source=CALENDAR)
    store.pause_schedule("fire_drill", note="source system migration until Friday", actor="ops")
    backfill_id = _january(store)
    tokens = (
        mint(store, Role.CLIENT, "operator"),
        mint(store, Role.VIEWER),
        mint(store, Role.VIEWER, event_types=["hidden_ledger"]),
    )
    server = Served(store.url, folder).start()
    try:
        yield World(server, store, backfill_id, *tokens)
    finally:
        server.stop()
        store.close()


def _open(page: Page, world: World, token: str, path: str) -> None:
    page.goto(f"{world.server.url}/ui/login?next={path}#token={token}")
    page.wait_for_url(f"{world.server.url}{path.split('#')[0]}")


def _row(page: Page, name: str) -> Locator:
    return page.locator(f'table.schedules tr[data-schedule="{name}"]')


# --- the schedules page ----------------------------------------------------------------------------


def test_the_schedules_page_shows_next_fires_in_each_zone_and_what_waits(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    _open(page, world, world.viewer, "/ui/schedules")
    expect(page.locator('header nav a[aria-current="page"]')).to_have_text("Schedules")
    names = page.locator("table.schedules tbody tr").evaluate_all("rows => rows.map(r => r.dataset.schedule)")
    assert names == ["berlin_workdays", "fire_drill", "hidden_run", "nightly_close", "quarter_end"]
    nightly = _row(page, "nightly_close")
    fires = nightly.locator("[data-next] [data-fire]").all_inner_texts()
    assert len(fires) == 3 and all(OFFSET.match(f) and f.endswith("02:00 +08:00") for f in fires), fires
    berlin = _row(page, "berlin_workdays").locator("[data-next] [data-fire]").all_inner_texts()
    assert len(berlin) == 3 and all(f[11:16] == "09:00" and f[-6:] in ("+01:00", "+02:00") for f in berlin)
    expect(_row(page, "berlin_workdays").locator('a[href="/ui/calendars/cn_ui"]')).to_be_visible()
    waiting = _row(page, "quarter_end").locator("[data-waiting]")
    expect(waiting).to_have_text("waiting for calendar us_missing, which is not registered")
    expect(page.locator('[data-missing-calendar="us_missing"]')).to_be_visible()
    paused = _row(page, "fire_drill")
    expect(paused).to_have_attribute("data-state", "paused")
    expect(paused.locator("[data-note]")).to_have_text("source system migration until Friday")
    expect(paused.locator("[data-paused]")).to_contain_text("by ops, ")
    expect(paused.locator("[data-next]")).to_have_text("—")
    expect(page.locator("table.schedules button")).to_have_count(0)  # a viewer: no action
    expect(page.locator("form[data-backfill]")).to_have_count(0)
    expect(page.locator('li[data-calendar="cn_ui"] a')).to_have_attribute("href", "/ui/calendars/cn_ui")
    page.screenshot(path=screenshot_dir / "schedules.png", full_page=True)


def test_an_operator_pauses_with_a_note_resumes_and_fires_now(world: World, page: Page, screenshot_dir: Path) -> None:
    answers: list[str] = []

    def answer(dialog: Dialog) -> None:
        answers.append(dialog.type)
        dialog.accept("month-end freeze" if dialog.type == "prompt" else "")

    page.on("dialog", answer)
    _open(page, world, world.operator, "/ui/schedules")
    row = _row(page, "berlin_workdays")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_have_attribute("data-state", "paused")
    expect(row.locator("[data-note]")).to_have_text("month-end freeze")
    expect(row.locator("[data-paused]")).to_contain_text("by ui:token:")
    expect(page.locator("#flash")).to_have_text("schedule berlin_workdays paused")
    paused = world.store.schedule("berlin_workdays")
    assert (paused.state, paused.note) == ("paused", "month-end freeze")
    page.screenshot(path=screenshot_dir / "schedules-paused.png", full_page=True)
    row.get_by_role("button", name="Resume").click()
    expect(row).to_have_attribute("data-state", "active")
    assert world.store.schedule("berlin_workdays").state == "active"
    row.get_by_role("button", name="Fire now").click()
    expect(page.locator("#flash")).to_contain_text("schedule berlin_workdays fired: event ")
    event_id = world.store.schedule("berlin_workdays").last_event_id
    assert event_id is not None and world.store.event(event_id).type == "ledger"
    expect(row.locator(f'[data-last] a[href="/ui/events/{event_id}"]')).to_be_visible()
    assert answers == ["prompt", "confirm", "confirm"]


def test_a_cancelled_note_prompt_pauses_nothing(world: World, page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.dismiss())
    _open(page, world, world.operator, "/ui/schedules")
    _row(page, "nightly_close").get_by_role("button", name="Pause").click()
    expect(_row(page, "nightly_close")).to_have_attribute("data-state", "active")
    assert world.store.schedule("nightly_close").state == "active"


def _viewer_session(world: World, token: str) -> tuple[httpx.Client, str]:
    http = httpx.Client(base_url=world.server.url, timeout=30.0)
    assert form_login(http, token, "/ui/schedules").status_code == 303
    page = http.get("/ui/schedules")
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert found, page.text[:300]
    return http, found[1]


def test_a_viewer_is_refused_every_change_and_a_limited_one_sees_only_its_schedules(world: World) -> None:
    http, csrf = _viewer_session(world, world.viewer)
    with closing(http):
        headers = {"X-CSRF-Token": csrf}
        for path, body in [("/ui/schedules/nightly_close/pause", {"note": "x"}),
                           ("/ui/schedules/fire_drill/resume", None), ("/ui/schedules/nightly_close/trigger", None),
                           ("/ui/backfills", {"schedule": "nightly_close", "start": "2025-01-01", "end": "2025-01-02"}),
                           (f"/ui/backfills/{world.backfill_id}/cancel", None)]:  # fmt: skip
            refused = http.post(path, json=body, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
    assert world.store.schedule("fire_drill").state == "paused"
    assert world.store.backfill(world.backfill_id).state == "running"
    http, csrf = _viewer_session(world, world.limited)
    with closing(http):
        shown = http.get("/ui/schedules", params={"fragment": "true"}).text
        assert 'data-schedule="hidden_run"' in shown and "nightly_close" not in shown
        assert http.get(f"/ui/backfills/{world.backfill_id}").status_code == 404
        assert f'data-backfill="{world.backfill_id}"' not in http.get("/ui/backfills").text


# --- backfills -------------------------------------------------------------------------------------


def test_the_backfill_form_previews_then_starts_and_lands_on_its_page(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    _open(page, world, world.operator, "/ui/schedules")
    _row(page, "nightly_close").get_by_role("button", name="Backfill…").click()
    form = page.locator("form[data-backfill]")
    expect(form.locator('[data-field="schedule"]')).to_have_value("nightly_close")
    form.locator('[data-field="start"]').fill("2025-02-01")
    form.locator('[data-field="end"]').fill("2025-02-10")
    form.locator('[data-field="max_running"]').fill("2")
    form.get_by_role("button", name="Preview (dry run)").click()
    preview = page.locator("#backfill .preview")
    expect(preview).to_contain_text("Dry run: 10 fire(s) of nightly_close from 2025-02-01 00:00 +08:00 to "
                                    "2025-02-10 23:59:59 +08:00; 0 already have an event.")  # fmt: skip
    expect(preview).to_contain_text("First: 2025-02-01 02:00 +08:00, 2025-02-02 02:00 +08:00, 2025-02-03 02:00 +08:00")
    expect(preview).to_contain_text("Last: 2025-02-08 02:00 +08:00, 2025-02-09 02:00 +08:00, 2025-02-10 02:00 +08:00")
    before = {b.id for b in world.store.backfills()}
    page.screenshot(path=screenshot_dir / "backfill-preview.png", full_page=True)
    form.locator('[data-field="end"]').fill("2025-01-31")
    form.get_by_role("button", name="Start backfill").click()
    expect(preview).to_have_class(re.compile("problem"))
    expect(preview).to_contain_text("'to' is before 'from'")
    assert {b.id for b in world.store.backfills()} == before
    form.locator('[data-field="end"]').fill("2025-02-10")
    form.get_by_role("button", name="Start backfill").click()
    page.wait_for_url(re.compile(r".*/ui/backfills/\d+$"))
    (new,) = [b for b in world.store.backfills() if b.id not in before]
    assert (new.schedule, new.total, new.max_running, new.created_by[:9]) == ("nightly_close", 10, 2, "ui:token:")
    expect(page.locator("[data-progress]")).to_have_text("0 of 10 fires handled")
    expect(page.locator("#backfill-state")).to_have_text("running")


def test_the_backfill_page_shows_its_progress_and_events_and_an_operator_may_cancel(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    b = world.store.backfill(world.backfill_id)
    _open(page, world, world.viewer, "/ui/backfills")
    row = page.locator(f'table.backfills tr[data-backfill="{b.id}"]')
    expect(row.locator("[data-progress]")).to_have_text(f"{b.raised + b.skipped} of 10")
    assert row.locator("meter").get_attribute("value") == str(b.raised + b.skipped)
    page.screenshot(path=screenshot_dir / "backfills.png", full_page=True)
    row.locator(f'a[href="/ui/backfills/{b.id}"]').click()
    page.wait_for_url(f"**/ui/backfills/{b.id}")
    expect(page.locator("[data-progress]")).to_have_text(f"{b.raised} of 10 fires handled")
    expect(page.locator("[data-running]")).to_have_text(f"{b.running} running now")
    events = page.locator("table.events tbody tr[data-event]")
    expect(events).to_have_count(b.raised)
    fires = events.locator("td:nth-child(2)").all_inner_texts()
    assert fires == [f"2025-01-{d:02d} 02:00 +08:00" for d in range(b.raised, 0, -1)]  # newest first
    expect(page.locator('table.events tr[data-state="cancelled"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Cancel backfill")).to_have_count(0)  # a viewer
    page.screenshot(path=screenshot_dir / "backfill.png", full_page=True)

    page.context.clear_cookies()
    page.on("dialog", lambda dialog: dialog.accept())
    _open(page, world, world.operator, f"/ui/backfills/{b.id}")
    page.get_by_role("button", name="Cancel backfill").click()
    expect(page.locator("#backfill-state")).to_have_text("cancelled")
    assert world.store.backfill(b.id).state == "cancelled"


# --- a calendar, the overview, an event's header --------------------------------------------------


def test_a_calendars_page_shows_the_years_days_off(world: World, page: Page, screenshot_dir: Path) -> None:
    _open(page, world, world.viewer, "/ui/calendars/cn_ui?year=2026")
    expect(page.locator("h1")).to_have_text("Calendar cn_ui Mainland China working days")
    eve = page.locator('table.month td[data-date="2026-02-16"]')
    expect(eve).to_have_class("day holiday")
    assert eve.get_attribute("title") == "Chinese New Year's Eve"
    expect(page.locator('table.month td[data-date="2026-02-14"]')).to_have_class("day working-weekend")
    expect(page.locator('table.month td[data-date="2026-02-15"]')).to_have_class("day weekend")
    expect(page.locator('table.days-off tr[data-date="2026-12-31"]')).to_contain_text("Year-end closing")
    expect(page.locator("[data-business]")).to_have_text("247 of 365")
    expect(page.locator('dd a[href^="/ui/schedules#schedule-"]')).to_have_text("berlin_workdays")
    page.screenshot(path=screenshot_dir / "calendar.png", full_page=True)
    page.locator('a[data-year="2027"]').click()
    page.wait_for_url("**/ui/calendars/cn_ui?year=2027")
    expect(page.locator('table.month td[data-date="2027-01-01"]')).to_have_class("day holiday")


def test_the_overview_lists_the_next_fires_linking_to_the_schedules_page(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    _open(page, world, world.viewer, "/ui/")
    section = page.locator('section[data-section="next_fires"]')
    expect(section.locator("h2 a")).to_have_attribute("href", "/ui/schedules")
    rows = section.locator("tbody tr")
    expect(rows.first).to_be_visible()
    at = [float(x) for x in rows.evaluate_all("rows => rows.map(r => r.dataset.fire)")]
    assert at == sorted(at) and len(at) == 8
    nightly = world.store.schedule("nightly_close").id
    expect(section.locator(f'a[href="/ui/schedules#schedule-{nightly}"]').first).to_be_visible()
    expect(section.locator('a[href="/ui/schedules#calendars"]')).to_contain_text("1 schedule(s) wait for a calendar")
    section.screenshot(path=screenshot_dir / "overview-next-fires.png")


def test_an_events_header_links_to_the_schedule_and_the_backfill_that_raised_it(world: World, page: Page) -> None:
    event = max(world.store.events(backfill_id=world.backfill_id), key=lambda e: e.id)
    _open(page, world, world.viewer, f"/ui/events/{event.id}")
    schedule_id = world.store.schedule("nightly_close").id
    expect(page.locator('[data-raised-by="backfill"]')).to_have_attribute("href", f"/ui/backfills/{world.backfill_id}")
    link = page.locator('[data-raised-by="schedule"]')
    expect(link).to_have_attribute("href", f"/ui/schedules#schedule-{schedule_id}")
    link.click()
    page.wait_for_url(f"**/ui/schedules#schedule-{schedule_id}")
    expect(page.locator(f"tr#schedule-{schedule_id}")).to_have_attribute("data-schedule", "nightly_close")


def test_the_new_pages_keep_the_content_security_policy(world: World, page: Page) -> None:
    """Every page of this file, with its data and the operator's forms, in chromium: no report of
    a violation (the pages of tests/ui/test_browser_defences.py are checked there)."""
    seen = Violations(page)
    page.on("dialog", lambda dialog: dialog.dismiss())
    _open(page, world, world.operator, "/ui/schedules")
    page.locator("form[data-backfill] [data-field=start]").fill("2025-03-01")
    page.locator("form[data-backfill] [data-field=end]").fill("2025-03-02")
    page.get_by_role("button", name="Preview (dry run)").click()
    expect(page.locator("#backfill .preview")).to_contain_text("Dry run:")
    pages = [("/ui/backfills", "table.backfills"), (f"/ui/backfills/{world.backfill_id}", "meter"),
             ("/ui/calendars/cn_ui?year=2026", "table.month"), ("/ui/", "section[data-section]")]  # fmt: skip
    for path, shown in pages:
        page.goto(f"{world.server.url}{path}")
        expect(page.locator(shown).first).to_be_visible()
        page.wait_for_load_state("networkidle")
    seen.settle()
    assert seen.events == [] and seen.console == []
