"""The "Raise event" form of a graph's page, through a real ``baton server`` and chromium: a field
per parameter of every type; valid values raise an event with exactly those typed parameters and
land on its page; a bad value shows the API's own message and raises nothing; an idempotency key
given twice raises one event; and only a token that may submit events of the graph's type sees
the form or may post it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from serving import Served, mint
from uilogin import form_login

from baton.access import Role
from baton.graphs.builder import GraphBuilder
from baton.server.auth import SESSION_COOKIE, csrf_token
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import EventRecord

FORM_TYPE, OTHER_TYPE = "ui_raise", "ui_raise_other"


@dataclass(frozen=True)
class World:
    server: Served
    store: Store
    graph_id: int
    other_graph_id: int
    client: str  # may submit
    viewer: str  # reads only
    elsewhere: str  # a client limited to OTHER_TYPE


def every_type(event_type: str) -> GraphBuilder:
    g = GraphBuilder(event_type, defaults={"retries": 0})
    g.param("year", "integer", required=True, description="The fiscal year to close.")
    g.param("rate", "number", default=0.25, description="VAT rate applied to the totals.")
    g.param("dry_run", "boolean", default=True, description="Compute, but publish nothing.")
    g.param("depts", "list", default=["sales", "ops"], description="One partition each.")
    g.param("options", "object", default={"currency": "EUR"}).param("note", "string", default="")
    return g.partitions(param="depts").python("extract", "m:f").python("report", "m:f", after=["extract"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("raise")
    store = open_store(f"sqlite:///{folder / 'baton.db'}")
    store.migrate()
    record = store.register_graph(every_type(FORM_TYPE).build())
    other = store.register_graph(every_type(OTHER_TYPE).build())
    client, viewer = mint(store, Role.CLIENT, "operator"), mint(store, Role.VIEWER)
    elsewhere = mint(store, Role.CLIENT, event_types=[OTHER_TYPE])
    server = Served(store.url, folder).start()
    try:
        yield World(server, store, record.id, other.id, client, viewer, elsewhere)
    finally:
        server.stop()
        store.close()


def _events(world: World) -> list[EventRecord]:
    return world.store.events(event_type=FORM_TYPE, limit=200)


def _open_form(page: Page, world: World, token: str | None = None) -> None:
    page.goto(f"{world.server.url}/ui/login?next=/ui/graphs/{world.graph_id}#token={token or world.client}")
    page.wait_for_url(f"**/ui/graphs/{world.graph_id}")
    expect(page.locator("form.raise")).to_be_visible()


def _fill(page: Page, values: dict[str, str]) -> None:
    for name, text in values.items():
        page.locator(f'[data-field="{name}"]').fill(text)


def _raise(page: Page) -> None:
    page.locator('form.raise button[type="submit"]').click()


def test_the_form_has_a_field_of_its_type_for_every_parameter(world: World, page: Page, screenshot_dir: Path) -> None:
    _open_form(page, world)
    fields = page.locator("form.raise .field[data-param]")
    # the required first, then the others as the stored graph holds them (by name)
    assert fields.evaluate_all("fs => fs.map(f => f.dataset.param)") == [
        "year", "depts", "dry_run", "note", "options", "rate",
    ]  # fmt: skip
    field = page.locator
    assert field('[data-field="year"]').get_attribute("type") == "number"
    assert field('[data-field="year"]').get_attribute("step") == "1"
    assert field('[data-field="rate"]').get_attribute("step") == "any"
    expect(field('[data-field="rate"]')).to_have_value("0.25")
    expect(field('[data-field="dry_run"]')).to_be_checked()
    expect(field('[data-field="depts"]')).to_have_value("sales\nops")
    assert field('[data-field="depts"]').evaluate("e => e.tagName") == "TEXTAREA"
    expect(field('[data-field="options"]')).to_have_value('{\n  "currency": "EUR"\n}')
    assert field('[data-field="note"]').get_attribute("type") == "text"
    year = field('.field[data-param="year"]')
    expect(year).to_contain_text("The fiscal year to close.")
    expect(year).to_contain_text("a whole number, such as 2025; required")
    expect(field('.field[data-param="depts"]')).to_contain_text("one item per line")
    expect(field("[data-key]")).to_be_visible()
    page.screenshot(path=screenshot_dir / "raise-form.png", full_page=True)


def test_valid_values_raise_an_event_with_exactly_those_typed_parameters_and_open_its_page(
    world: World, page: Page
) -> None:
    before = {e.id for e in _events(world)}
    _open_form(page, world)
    _fill(page, {"year": "2025", "rate": "0.2", "depts": "north\nsouth\n", "options": '{"currency": "USD"}',
                 "note": "closing <b>Q4</b>"})  # fmt: skip
    page.locator('[data-field="dry_run"]').uncheck()
    _raise(page)
    page.wait_for_url(f"{world.server.url}/ui/events/*")
    (event,) = [e for e in _events(world) if e.id not in before]
    assert page.url == f"{world.server.url}/ui/events/{event.id}"
    expect(page.locator("#event-state")).to_be_visible()
    assert dict(event.params) == {"year": 2025, "rate": 0.2, "dry_run": False, "depts": ["north", "south"],
                                  "options": {"currency": "USD"}, "note": "closing <b>Q4</b>"}  # fmt: skip
    assert event.graph_id == world.graph_id and event.key is None
    with world.server.client(world.client) as api:  # the API reads the same event back
        assert api.get(f"/api/v1/events/{event.id}").json()["params"] == dict(event.params)


def test_a_bad_value_shows_the_apis_own_message_and_raises_nothing(
    world: World, page: Page, screenshot_dir: Path
) -> None:
    with world.server.client(world.client) as api:
        answer = api.post("/api/v1/events", json={"type": FORM_TYPE, "params": {"year": 2025, "options": [1, 2]}})
    assert answer.status_code == 422
    (api_message,) = [e["detail"] for e in answer.json()["errors"]]
    assert api_message.startswith("parameter 'options': expected object")
    before = [e.id for e in _events(world)]
    _open_form(page, world)
    _fill(page, {"year": "2025", "options": "[1, 2]"})
    _raise(page)
    options = page.locator('.field[data-param="options"]')
    expect(options.locator(".field-problem")).to_have_text(api_message)
    expect(page.locator(".raise .problems")).to_contain_text("The event was not raised")
    expect(options).to_have_class("field field-json invalid")

    _fill(page, {"year": "20.5", "options": "{}"})  # text the browser takes, not an integer
    _raise(page)
    year = page.locator('.field[data-param="year"] .field-problem')
    expect(year).to_have_text("parameter 'year': must be an integer, got '20.5'")
    expect(options.locator(".field-problem")).to_be_hidden()
    page.screenshot(path=screenshot_dir / "raise-form-problem.png", full_page=True)

    _fill(page, {"year": "", "options": ""})  # required and missing: the API's rule and message
    _raise(page)
    expect(year).to_have_text("parameter 'year': required but missing (integer)")
    assert page.url.endswith(f"/ui/graphs/{world.graph_id}")
    assert [e.id for e in _events(world)] == before


def test_an_idempotency_key_given_twice_raises_one_event(world: World, page: Page) -> None:
    key = "close-fy2025"
    _open_form(page, world)
    _fill(page, {"year": "2025"})
    page.locator("[data-key]").fill(key)
    _raise(page)
    page.wait_for_url(f"{world.server.url}/ui/events/*")
    (first,) = [e for e in _events(world) if e.key == key]
    assert page.url.endswith(f"/ui/events/{first.id}")

    _open_form(page, world)
    _fill(page, {"year": "2025"})
    page.locator("[data-key]").fill(key)
    _raise(page)
    outcome = page.locator(".raise .outcome")
    expect(outcome).to_contain_text(f"the idempotency key '{key}' already names event {first.id}")
    expect(outcome.locator("a")).to_have_attribute("href", f"/ui/events/{first.id}")
    assert page.url.endswith(f"/ui/graphs/{world.graph_id}")  # stays: nothing new to open

    _fill(page, {"year": "2026"})  # the same key with other parameters: the API's conflict, naming it
    _raise(page)
    problems = page.locator(".raise .problems")
    expect(problems).to_contain_text(f"already names event {first.id} with other parameters")
    expect(problems.locator("a")).to_have_attribute("href", f"/ui/events/{first.id}")
    assert [e.id for e in _events(world) if e.key == key] == [first.id]


@contextlib.contextmanager
def _session(world: World, token: str) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    with httpx.Client(base_url=world.server.url, timeout=30.0) as http:
        assert form_login(http, token).status_code == 303
        yield http, {"X-CSRF-Token": csrf_token(http.cookies[SESSION_COOKIE])}


FORM: dict[str, Any] = {"values": {"year": "2025"}}


def test_only_a_token_that_may_submit_the_graphs_type_sees_the_form_or_may_post_it(world: World) -> None:
    page, post = f"/ui/graphs/{world.graph_id}", f"/ui/graphs/{world.graph_id}/submit"
    before = len(_events(world))
    with _session(world, world.viewer) as (http, csrf):
        shown = http.get(page)
        assert shown.status_code == 200 and "svg" in shown.text and 'class="raise"' not in shown.text
        refused = http.post(post, json=FORM, headers=csrf)
        assert refused.status_code == 403 and refused.json()["detail"] == "a viewer token may not submit"
    with _session(world, world.elsewhere) as (http, csrf):
        assert http.get(page).status_code == 404  # a graph of a type it may not see does not exist for it
        refused = http.post(post, json=FORM, headers=csrf)
        assert refused.status_code == 404 and FORM_TYPE not in refused.text
        own = http.get(f"/ui/graphs/{world.other_graph_id}")
        assert own.status_code == 200 and 'class="raise"' in own.text
    with _session(world, world.client) as (http, csrf):
        assert 'class="raise"' in http.get(page).text
        refused = http.post(post, json=FORM)  # no CSRF token: a page of another site could post this
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        schema = http.post(post, json={"values": {"year": 2025}}, headers=csrf)  # typed values: the API's to take
        assert schema.status_code == 422 and schema.json()["errors"][0]["where"].startswith("body.values.year")
        assert len(_events(world)) == before
        done = http.post(post, json=FORM, headers=csrf)
    assert done.status_code == 201, done.text
    answer = done.json()
    assert answer["created"] is True and answer["url"] == f"/ui/events/{answer['event_id']}"
    assert dict(world.store.event(answer["event_id"]).params)["year"] == 2025


def test_the_form_body_is_bounded_as_the_apis_is(world: World) -> None:
    with _session(world, world.client) as (http, csrf):
        many = {"values": {f"p{i}": "1" for i in range(250_000)}}
        refused = http.post(f"/ui/graphs/{world.graph_id}/submit", content=json.dumps(many),
                            headers={**csrf, "Content-Type": "application/json"})  # fmt: skip
    assert refused.status_code == 413, refused.text[:300]


def test_the_priority_field_raises_an_event_of_that_priority_and_refuses_one_out_of_bounds(
    world: World, page: Page
) -> None:
    before = {e.id for e in _events(world)}
    _open_form(page, world)
    _fill(page, {"year": "2025", "options": "{}"})
    priority = page.locator("[data-priority-field]")
    priority.fill("5000")
    _raise(page)
    expect(page.locator(".raise .problems")).to_contain_text("less than or equal to 1000")
    assert {e.id for e in _events(world)} == before
    priority.fill("7")
    _raise(page)
    page.wait_for_url(f"{world.server.url}/ui/events/*")
    (event,) = [e for e in _events(world) if e.id not in before]
    assert event.priority == 7
    expect(page.locator(".event-head")).to_contain_text("+7")
