"""An event's priority where people set and see it: the API's submit body (bounds in the
OpenAPI schema, 422 outside them), baton.Client, ``baton submit --priority`` (exit 2 outside the
bounds) and ``baton status`` through a server and from the database alike, the event page, and
the ageing counter in ``/metrics``."""

from __future__ import annotations

import json
from typing import cast

from prioritised import single
from serving import Served, mint
from test_cli_server_mode import Both, baton_all

from baton import Client
from baton.access import Role
from baton.controller.loop import Controller
from baton.store.protocol import Store
from baton.store.sql import SqlStore


def test_the_api_takes_a_bounded_priority_and_shows_it(backend: Store, served: Served) -> None:
    backend.register_graph(single("urgent", priority=2))
    token = mint(backend, Role.CLIENT)
    with served.client(token) as http:
        schema = http.get("/openapi.json").json()["components"]["schemas"]["SubmitIn"]["properties"]["priority"]
        made = http.post("/api/v1/events", json={"type": "urgent", "priority": 7})
        too_high = http.post("/api/v1/events", json={"type": "urgent", "priority": 1001})
        not_whole = http.post("/api/v1/events", json={"type": "urgent", "priority": 2.5})
        shown = http.get(f"/api/v1/events/{made.json()['id']}")
        Controller(cast(SqlStore, backend)).expand()
        tasks = http.get(f"/api/v1/events/{made.json()['id']}/tasks")
        page = http.get(f"/ui/events/{made.json()['id']}")
        metrics = http.get("/metrics")
    assert (schema["minimum"], schema["maximum"], schema["default"]) == (-1000, 1000, 0)
    assert made.status_code == 201 and made.json()["priority"] == 7
    assert too_high.status_code == 422 and "1000" in too_high.text
    assert not_whole.status_code == 422
    assert shown.json()["priority"] == 7
    assert [t["priority"] for t in tasks.json()["tasks"]] == [9]  # its node's 2, plus its event's 7
    assert page.status_code == 200 and 'data-priority="7"' in page.text and "+7" in page.text
    assert "baton_task_ageing_raises_total" in metrics.text

    with Client(served.url, token) as client:
        event, created = client.submit("urgent", priority=-3)
    assert created and event.priority == -3 and backend.event(event.id).priority == -3


def test_baton_submit_takes_a_priority_and_status_shows_it_both_ways(backend: Store, served: Served) -> None:
    backend.register_graph(single("urgent"))
    both = Both(backend.url, served.url, mint(backend, Role.CLIENT))
    through, direct = baton_all(both.remote("submit", "urgent", "--priority", "12", "--json"),
                                both.direct("submit", "urgent", "--priority", "-12", "--json"))  # fmt: skip
    assert through.returncode == 0 and direct.returncode == 0, (through.stderr, direct.stderr)
    first, second = json.loads(through.stdout)["event_id"], json.loads(direct.stdout)["event_id"]
    assert (backend.event(first).priority, backend.event(second).priority) == (12, -12)
    for shown in baton_all(both.remote("status", str(first)), both.direct("status", str(first))):
        assert shown.returncode == 0 and "priority +12" in shown.stdout  # (its elapsed time differs)
    for as_json in baton_all(
        both.remote("status", str(second), "--json"), both.direct("status", str(second), "--json")
    ):
        assert json.loads(as_json.stdout)["priority"] == -12
    for refused in baton_all(both.remote("submit", "urgent", "--priority", "1001"),
                             both.direct("submit", "urgent", "--priority", "-1001")):  # fmt: skip
        assert refused.returncode == 2 and "--priority" in refused.stderr and "-1000<=x<=1000" in refused.stderr
