"""The event page of a 60,002-task event (the year-end shape at P = 10,000, a third of it run to
its end) in headless chromium, against the budgets of the UI issue: load ≤ 1.0 s, ≤ 400 KB over
the wire, ≤ 5,000 DOM elements, a live update (the stream's message, and every fragment it names fetched again)
≤ 30 KB. The measured figures are printed (``-s``) and the page is kept as a screenshot.

The load time is a wall-time figure, and other tests share the machine's cores while it is taken:
the page is opened three times, each in a fresh browser context, and the fastest load is held to
the budget (a page that costs too much is slow every time; a neighbour's load is not). Not
``alone``: waiting for the other test processes to drain cost the suite more than half a minute."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from measure import measure
from playwright.sync_api import Browser, Page, expect
from serving import Served, mint

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.server.ui.live import PULLED, PUSHED
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report

pytestmark = pytest.mark.slow
PARTITIONS, RUN = 10_000, 20_000
LOAD_MS, TRANSFER_BYTES, DOM_ELEMENTS, UPDATE_BYTES = 1000.0, 400 * 1024, 5000, 30 * 1024


def year_end(partitions: int) -> GraphBuilder:
    g = GraphBuilder("budget_report", defaults={"retries": 0})
    g.param("departments", "list", default=[f"d{i:05d}" for i in range(partitions)]).partitions(param="departments")
    for source in ("extract_finance", "extract_erp", "extract_crm"):
        g.python(source, "noop:noop")
    g.python("process", "noop:noop", after=["extract_finance", "extract_erp", "extract_crm"])
    g.python("summarize", "noop:noop", after=["process"]).python("dept_report", "noop:noop", after=["summarize"])
    g.python("hq_summary", "noop:noop", after=["summarize"], partitioned=False, barrier=True)
    return g.python("hq_report", "noop:noop", after=["hq_summary"], partitioned=False)


def run_some(store: Store, tasks: int) -> None:
    """Claim and succeed ``tasks`` tasks, 500 at a time, as a worker on the database would."""
    done, reports = 0, list[Report]()
    while done < tasks:
        got = store.claim(
            ClaimRequest("budget", {"slots": 500}, frozenset(), min(500, tasks - done), 300.0, reports)
        ).claims
        now = time.time()
        reports = [Report(c.task_id, c.attempt, Outcome.SUCCEEDED, now - 0.01, now, result_json="null") for c in got]
        done += len(got)
        assert got, f"only {done} tasks were claimable"
    store.report("budget", reports)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, str, int]]:
    folder = tmp_path_factory.mktemp("budget")
    store = open_store(f"sqlite:///{folder / 'baton.db'}")
    store.migrate()
    record = store.register_graph(year_end(PARTITIONS).build())
    event, _ = store.submit(record.id, validate_params(store.graph_of(record.id), {}))
    Controller(store).expand()
    assert store.event(event.id).tasks_total == 6 * PARTITIONS + 2
    from baton.store.records import WorkerInfo

    store.register_worker(WorkerInfo("budget", "budget-box", "localhost", 1, {"slots": 500}))
    run_some(store, RUN)
    token = mint(store, Role.VIEWER)
    server = Served(store.url, folder).start()
    try:
        yield server, token, event.id
    finally:
        server.stop()
        store.close()


LOADS = 3


@pytest.mark.long(seconds=20)
def test_the_page_of_a_60002_task_event_keeps_its_budgets(
    big: tuple[Served, str, int], page: Page, browser: Browser, screenshot_dir: Path
) -> None:
    server, token, event_id = big
    page.goto(f"{server.url}/ui/login?next=/ui/events/{event_id}#token={token}")
    page.wait_for_url(f"**/ui/events/{event_id}")
    # measured as a person opening the page: logged in, nothing cached but the session (a reload
    # would be answered 304: the page has not changed)
    costs = []
    for _ in range(LOADS):
        fresh = browser.new_context(viewport=page.viewport_size)
        try:
            fresh.add_cookies(page.context.cookies())
            opened = fresh.new_page()
            opened.goto(f"{server.url}/ui/events/{event_id}")
            costs.append(measure(opened))
        finally:
            fresh.close()
    cost = min(costs, key=lambda c: c["navigation_ms"])
    expect(page.locator("table.partitions tbody tr")).to_have_count(100)
    page.screenshot(path=screenshot_dir / "event-60002-tasks.png", full_page=True)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=server.url, cookies=cookies, headers={"X-Baton-Fragment": "1"}) as http:
        sizes = {}
        # a page a version behind: the stream's next message carries the header, graph and waiting
        # panel (gzipped on the wire), and names the fragments the page fetches again
        with http.stream("GET", f"/ui/events/{event_id}/live?since=0", headers={"Accept-Encoding": "gzip"}) as stream:
            data = next(line for line in stream.iter_lines() if line.startswith("data:"))
            sizes["message"] = stream.num_bytes_downloaded
        assert set(json.loads(data.removeprefix("data:"))["html"]) == set(PUSHED)
        for name in (f for f in PULLED if f != "tasks"):
            answer = http.get(f"/ui/events/{event_id}/{name}", headers={"Accept-Encoding": "gzip"})
            assert answer.status_code == 200, answer.text
            sizes[name] = answer.num_bytes_downloaded
    update = sum(sizes.values())
    print(f"\nUI budgets at 60,002 tasks: load {cost['navigation_ms']:.0f} ms, transfer {cost['transfer_bytes']} B, "
          f"DOM {cost['dom_elements']} elements, live update {update} B {sizes}")  # fmt: skip
    assert cost["navigation_ms"] <= LOAD_MS, cost
    assert cost["transfer_bytes"] <= TRANSFER_BYTES, cost
    assert cost["dom_elements"] <= DOM_ELEMENTS, cost
    assert update <= UPDATE_BYTES, sizes
