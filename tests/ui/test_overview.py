"""The overview, the UI's home page, through a real ``baton server`` and chromium: a running event
with its progress, a failure of the last 24 hours (and not one older), the workers online with
their load and a stale one flagged; it is where a login lands, it moves when the store does, it
shows a token only the event types it may see, and it costs a bounded number of reads.

Times in the past are written into the rows (:func:`backdate`), never waited for: the page reads
the clock with ``time.time()``."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from playwright.sync_api import Page, expect
from serving import Served, mint
from uilogin import form_login
from uiseed import UI_TYPE, UiSeed, seed_ui

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import EventState, Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.graphs.calendars import calendar_from_dict
from baton.graphs.spec import load_graph_text
from baton.server.ui.overview import NEXT_FIRES_SHOWN, RUNNING_SHOWN, Seen, sections
from baton.store import open_store
from baton.store.protocol import ReadStore, Store
from baton.store.records import ClaimRequest, Report, WorkerInfo

HOUR_S = 3600.0
NIGHTLY, HIDDEN = "ui_nightly", "ui_home_hidden"
# Workers heartbeat every 30 minutes here, so the seeded one stays fresh however slow the run;
# the stale one was last heard of hours ago.
SERVER_ENV = {"BATON_LEASE_S": "7200", "BATON_HEARTBEAT_S": "1800"}


@dataclass(frozen=True)
class World:
    server: Served
    store: Store
    seeded: UiSeed  # its event runs: one task succeeded, one failed, one still running on ui-seed
    recent_failure: int
    old_failure: int
    hidden_failure: int  # of a type the limited viewer may not see
    viewer: str
    limited: str  # a viewer of UI_TYPE and NIGHTLY only


def backdate(store: Store, event_id: int, seconds: float) -> None:
    """Move an event's times ``seconds`` into the past (a test's way to have an old event)."""
    with store.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("UPDATE events SET submitted_at = submitted_at - ?, started_at = started_at - ?, "
             "finished_at = finished_at - ? WHERE id = ?", (seconds, seconds, seconds, event_id))  # fmt: skip


def silence(store: Store, worker_id: str, seconds: float) -> None:
    """Make a worker's last heartbeat ``seconds`` older."""
    with store.transaction() as tx:  # type: ignore[attr-defined]
        tx.q("UPDATE workers SET last_seen = last_seen - ? WHERE id = ?", (seconds, worker_id))


def failed_event(store: Store, event_type: str) -> int:
    """An event of a one-node graph whose only task failed (so the event failed)."""
    record = store.register_graph(GraphBuilder(event_type, defaults={"retries": 0}).python("only", "m:f").build())
    event, _ = store.submit(record.id, {})
    Controller(store).expand()
    store.register_worker(WorkerInfo("nightly-box", "nightly", "localhost", 3, {"slots": 1}))
    (claim,) = store.claim(ClaimRequest("nightly-box", {"slots": 1}, frozenset(), 1, 30.0, [], event.id)).claims
    now = time.time()
    report = Report(claim.task_id, claim.attempt, Outcome.FAILED, now - 2, now, error="exit code 1", exit_code=1)
    store.report("nightly-box", [report])
    assert store.event(event.id).state is EventState.FAILED
    return event.id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("overview")
    store = open_store(f"sqlite:///{folder / 'baton.db'}")
    store.migrate()
    seeded = seed_ui(store)
    old = failed_event(store, NIGHTLY)
    backdate(store, old, 25 * HOUR_S)
    recent = failed_event(store, NIGHTLY)
    backdate(store, recent, 2 * HOUR_S)
    hidden = failed_event(store, HIDDEN)
    store.deregister_worker("nightly-box")
    store.register_worker(WorkerInfo("quiet-box", "quiet", "far-away", 4, {"slots": 2}))
    silence(store, "quiet-box", 3 * HOUR_S)
    viewer, limited = mint(store, Role.VIEWER), mint(store, Role.VIEWER, event_types=[UI_TYPE, NIGHTLY])
    server = Served(store.url, folder, env=SERVER_ENV).start()
    try:
        yield World(server, store, seeded, recent, old, hidden, viewer, limited)
    finally:
        server.stop()
        store.close()


def test_the_overview_shows_what_runs_what_failed_today_and_the_workers(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    page.goto(f"{world.server.url}/ui/login#token={world.viewer}")  # no next: the login lands home
    page.wait_for_url(f"{world.server.url}/ui/")
    expect(page.locator('header nav a[aria-current="page"]')).to_have_text("Overview")

    running = page.locator('section[data-section="running"]')
    row = running.locator(f'tr[data-event="{world.seeded.event_id}"]')
    expect(row).to_be_visible()
    tasks = world.store.tasks(world.seeded.event_id)
    ended = [t for t in tasks if t.state not in (TaskState.PENDING, TaskState.READY, TaskState.RUNNING)]
    failed = [t for t in ended if t.state is not TaskState.SUCCEEDED]  # extract b and what it blocked
    assert len(ended) > len(failed) >= 2
    expect(row.locator("[data-progress]")).to_have_text(f"{len(ended)} / {len(tasks)} tasks ended")
    expect(row.locator("[data-unsuccessful]")).to_have_text(f"{len(failed)} did not succeed")
    expect(row.locator(f'a[href="/ui/events/{world.seeded.event_id}"]')).to_be_visible()
    expect(running.locator("h2 a")).to_have_attribute("href", "/ui/events?state=running")

    failures = page.locator('section[data-section="failures"]')
    expect(failures.locator(f'tr[data-event="{world.recent_failure}"] a')).to_have_attribute(
        "href", f"/ui/events/{world.recent_failure}"
    )
    expect(failures.locator(f'tr[data-event="{world.old_failure}"]')).to_have_count(0)  # 25 hours ago
    expect(failures.locator("h2 a")).to_have_attribute("href", "/ui/events?state=failed&window=day")

    workers = page.locator('section[data-section="workers"]')
    busy = workers.locator('tr[data-worker="ui-seed"]')
    expect(busy).to_have_attribute("data-state", "active")
    expect(busy.locator("[data-load]")).to_have_text("1 / 7")  # extract c still runs there
    quiet = workers.locator('tr[data-worker="quiet-box"]')
    expect(quiet).to_have_attribute("data-state", "stale")
    expect(quiet.locator(".state-stale")).to_have_text("stale")
    expect(workers.locator('tr[data-worker="nightly-box"]')).to_have_count(0)  # left: not online
    expect(workers.locator("[data-summary]")).to_have_text("2 online, 1 stale · 1 of 10 slots used")
    page.screenshot(path=screenshot_dir / "overview.png", full_page=True)


def test_the_overview_moves_when_the_store_does(world: World, page: Page) -> None:
    page.goto(f"{world.server.url}/ui/login?next=/ui/#token={world.viewer}")
    page.wait_for_url(f"{world.server.url}/ui/")
    failures = page.locator('section[data-section="failures"] tbody tr')
    shown = failures.count()
    fresh = failed_event(world.store, NIGHTLY)
    world.store.deregister_worker("nightly-box")
    row = page.locator(f'section[data-section="failures"] tr[data-event="{fresh}"]')
    expect(row).to_be_visible(timeout=15_000)  # the store's stream, or the page's refresh every 5 s
    assert failures.count() == shown + 1
    assert failures.first.get_attribute("data-event") == str(fresh)  # newest first


def test_the_overview_shows_a_token_only_its_event_types(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30.0) as http:
        assert form_login(http, world.limited).status_code == 303
        shown = [http.get("/ui/"), http.get("/ui/", params={"fragment": "true"})]  # the page, its refresh
    for answer in shown:
        assert answer.status_code == 200
        assert f'data-event="{world.recent_failure}"' in answer.text
        assert f'data-event="{world.hidden_failure}"' not in answer.text and HIDDEN not in answer.text
        assert f'data-event="{world.seeded.hidden_event_id}"' not in answer.text  # running, of another type
    assert "<html" in shown[0].text and "<html" not in shown[1].text


def test_the_root_and_a_login_without_a_page_lead_to_the_overview(world: World) -> None:
    with httpx.Client(base_url=world.server.url, timeout=30.0) as http:
        root = http.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/ui/"
        landed = form_login(http, world.viewer, "")
        assert landed.status_code == 303 and landed.headers["location"] == "/ui/"


class CountingReads:
    """A store that counts the verbs called on it (the overview's reads)."""

    def __init__(self, store: Store) -> None:
        self.store, self.calls = store, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls[name] += 1
        return getattr(self.store, name)


def test_the_overview_reads_the_store_a_bounded_number_of_times(backend: Store) -> None:
    """However many events run or failed, and however many workers and schedules there are: three
    lists of events (running, at risk, failed), the workers, the progress of the few running
    events it shows, and the schedules and calendars (each schedule's next fires are worked out
    from its stored form, not from its graph)."""
    graph = GraphBuilder("ui_many", defaults={"retries": 0}).python("only", "m:f").build()
    record = backend.register_graph(graph)
    for _ in range(3 * RUNNING_SHOWN):
        backend.submit(record.id, {})
    Controller(backend).expand()
    for i in range(30):
        backend.register_worker(WorkerInfo(f"w{i}", f"w{i}", "h", i + 1, {"slots": 2}))
    for i in range(12):
        lines = "".join(f'  s{i}_{j}: {{cron: "{j} 2 * * *", calendar: cal}}\n' for j in range(3))
        yaml = f'graph: sched{i}\nschedules:\n{lines}nodes:\n  only: {{run: "m:f"}}\n'
        backend.register_graph(load_graph_text(yaml))
    backend.register_calendar(calendar_from_dict({"calendar": "cal", "country": "FR"}))
    reads = CountingReads(backend)
    shown = sections(Seen(cast(ReadStore, reads), None, time.time(), 10.0))
    assert [s.name for s in shown] == ["running", "deadlines", "failures", "next_fires", "workers"]
    assert reads.calls == {"events": 3, "node_progress": RUNNING_SHOWN, "workers": 1, "schedules": 1, "calendars": 1}
    assert len(shown[3].data["shown"]) == NEXT_FIRES_SHOWN and shown[3].summary == "36 active schedule(s)"
    limited = CountingReads(backend)
    sections(Seen(cast(ReadStore, limited), ["sched1"], time.time(), 10.0))
    assert limited.calls["graphs"] == 1  # a token limited to event types: the graphs' types, once
    assert shown[0].summary == f"{3 * RUNNING_SHOWN} running" and len(shown[0].data["shown"]) == RUNNING_SHOWN
