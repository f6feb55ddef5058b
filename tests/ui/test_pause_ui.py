"""Pausing from the pages, through a real ``baton server`` and chromium: an operator pauses an
event with a reason (its header says who and why, its waiting panel says which tasks the pause
holds), resumes it, and pauses and resumes its graph from the graph's page; a viewer sees no
button; the waiting panel names a full concurrency key, a spent rate limit and a graph's queue. No controller or
worker runs: events are planned through the store's verbs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from limited import chain, claim, limited, start
from playwright.sync_api import Dialog, Page, expect
from rated import rated
from serving import Served, mint

from baton.access import Role
from baton.controller.loop import Controller
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store import open_store
from baton.store.records import ClaimRequest, PauseTarget
from baton.store.sql import SqlStore


@dataclass(frozen=True)
class World:
    server: Served
    store: SqlStore
    event_id: int
    graph_id: int
    operator: str
    viewer: str


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = open_store(f"sqlite:///{tmp_path / 'baton.db'}")
    assert isinstance(store, SqlStore)
    store.migrate()
    graph = chain()
    record = store.register_graph(graph)
    event, _ = store.submit(record.id, validate_params(graph, {}))
    Controller(store).expand()
    server = Served(store.url, tmp_path).start()
    try:
        yield World(server, store, event.id, record.id, mint(store, Role.CLIENT, "operator"), mint(store, Role.VIEWER))
    finally:
        server.stop()
        store.close()


def _open(page: Page, world: World, token: str, path: str) -> None:
    page.goto(f"{world.server.url}/ui/login?next={path}#token={token}")
    page.wait_for_url(f"{world.server.url}{path}")


def test_an_operator_pauses_an_event_with_a_reason_sees_what_it_holds_and_resumes_it(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    answers: list[str] = []

    def answer(dialog: Dialog) -> None:
        answers.append(dialog.type)
        dialog.accept("ERP maintenance" if dialog.type == "prompt" else "")

    page.on("dialog", answer)
    _open(page, world, world.operator, f"/ui/events/{world.event_id}")
    page.get_by_role("button", name="Pause event").click()
    expect(page.locator("#flash")).to_contain_text(f"event:{world.event_id} paused: 10 ready task(s) out of the queue")
    expect(page.locator("[data-paused]")).to_have_text("paused")
    held = page.locator(f'[data-pause="event:{world.event_id}"]')
    expect(held).to_contain_text("this event, by ui:token:")
    expect(held).to_contain_text("ERP maintenance")
    waiting = page.locator('ul.waiting li[data-reason="paused"]')
    expect(waiting).to_have_count(2)
    expect(waiting.first).to_contain_text(f"10 held by pause event:{world.event_id}")
    expect(waiting.first).to_contain_text("ERP maintenance")
    assert [p.target for p in world.store.pauses()] == [f"event:{world.event_id}"]
    page.screenshot(path=screenshot_dir / "event-paused.png", full_page=True)
    page.get_by_role("button", name="Resume event").click()
    expect(page.locator("#flash")).to_contain_text("resumed: 10 ready task(s) may start now, 10 pending")
    expect(page.locator("[data-paused]")).to_have_count(0)
    expect(page.locator('ul.waiting li[data-reason="paused"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Pause event")).to_be_visible()
    assert world.store.pauses() == [] and answers == ["prompt", "confirm"]


def test_an_operator_pauses_and_resumes_a_graph_from_its_page(world: World, page: Page, screenshot_dir: Path) -> None:
    page.on("dialog", lambda dialog: dialog.accept("month-end freeze" if dialog.type == "prompt" else ""))
    _open(page, world, world.operator, f"/ui/graphs/{world.graph_id}")
    page.get_by_role("button", name="Pause graph").click()
    expect(page.locator("#flash")).to_contain_text("graph:paused paused: 10 ready task(s) out of the queue")
    assert [(p.target, p.reason) for p in world.store.pauses()] == [("graph:paused", "month-end freeze")]
    page.reload()
    expect(page.locator('[data-pause="graph:paused"]')).to_contain_text("month-end freeze")
    page.screenshot(path=screenshot_dir / "graph-paused.png", full_page=True)
    page.goto(f"{world.server.url}/ui/events/{world.event_id}")
    expect(page.locator('[data-pause="graph:paused"]')).to_contain_text("graph paused")
    expect(page.get_by_role("button", name="Pause event")).to_be_visible()  # the event itself is not paused
    page.goto(f"{world.server.url}/ui/graphs/{world.graph_id}")
    page.get_by_role("button", name="Resume graph").click()
    expect(page.locator("#flash")).to_contain_text("graph:paused resumed: 10 ready task(s) may start now")
    assert world.store.pauses() == []


def test_a_viewer_sees_the_pause_and_no_button(world: World, page: Page) -> None:
    world.store.pause(PauseTarget(event_id=world.event_id), reason="audit", actor="ops")
    _open(page, world, world.viewer, f"/ui/events/{world.event_id}")
    expect(page.locator(f'[data-pause="event:{world.event_id}"]')).to_contain_text("by ops")
    expect(page.get_by_role("button", name="Resume event")).to_have_count(0)
    expect(page.get_by_role("button", name="Pause event")).to_have_count(0)
    page.goto(f"{world.server.url}/ui/graphs/{world.graph_id}")
    expect(page.get_by_role("button", name="Pause graph")).to_have_count(0)


def test_the_waiting_panel_names_a_full_key_a_spent_rate_and_a_graphs_queue(world: World, page: Page) -> None:
    keyed = start(world.store, limited(limit=2))
    claim(world.store, slots=40)  # two extracts hold the key: the other eight wait for it
    g = GraphBuilder("year_end", defaults={"retries": 0}).event_limit(1)
    g.python("summary", "m:f", partitioned=False)
    first, queued = start(world.store, g.build()), start(world.store, g.build())
    _open(page, world, world.viewer, f"/ui/events/{keyed}")
    limit = page.locator('ul.waiting li[data-reason="limit"]')
    expect(limit).to_contain_text("8 wait for concurrency key erp (2 of 2 running: extract[")
    page.goto(f"{world.server.url}/ui/events/{queued}")
    line = page.locator('ul.waiting li[data-reason="queued"]')
    expect(line).to_contain_text(
        f"queued (#1): the event waits for a place: graph year_end runs 1 of its 1 at once (events {first})"
    )
    limited_rate = start(world.store, rated(2, 3600.0, parts=["p1", "p2", "p3", "p4"]))
    claim(world.store, slots=40)  # it starts two calls and parks the other two on the spent rate
    page.goto(f"{world.server.url}/ui/events/{limited_rate}")
    rate = page.locator('ul.waiting li[data-reason="rate"]')
    expect(rate).to_contain_text("2 wait for rate limit partner-api (2 of 2 starts in 1 h); the next may start in")
    expect(rate).to_contain_text("(until ")


def test_the_waiting_panel_names_the_workers_holding_tasks(world: World, page: Page, screenshot_dir: Path) -> None:
    got = world.store.claim(ClaimRequest("remote-1", {"slots": 0}, frozenset(), 0, 30.0, hold=4, hold_s=600.0,
                                         capacity={"slots": 4}))  # fmt: skip
    assert len(got.holds) == 4
    _open(page, world, world.viewer, f"/ui/events/{world.event_id}")
    held = page.locator('ul.waiting li[data-reason="held"]')
    expect(held).to_contain_text("4 are held by remote-1 (4), to start as soon as a slot there frees")
    page.screenshot(path=screenshot_dir / "event-held.png", full_page=True)
