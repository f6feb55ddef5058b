"""``/api/v1/calendars``, ``/api/v1/schedules`` and ``/api/v1/backfills`` against a real ``baton
server`` (both backends): calendars registered from YAML (every problem with its line), each
schedule's next fires in its zone or why it waits, pause with a note, resume, fire now, backfills
started, dry-run, listed and cancelled; each route's roles, a token's event types, the bounds the
document states refused 422, unknown names 404 and states that forbid a move 409. ``baton.Client``
and ``HttpStore`` answer the store's own records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from serving import Served, mint

from baton.access import Role
from baton.client.api import Client
from baton.client.store import HttpStore
from baton.graphs.calendars import Calendar, load_calendar_text
from baton.graphs.spec import load_graph_text
from baton.store.protocol import Store
from baton.store.records import BackfillRequest

GRAPH = """
graph: nightly
params: {day: {type: string}}
schedules:
  nightly_run:
    cron: "0 2 * * *"
    timezone: Asia/Shanghai
    params: {day: "{fire.date}"}
  workdays:
    cron: "0 9 * * *"
    timezone: Asia/Shanghai
    calendar: cn_test
    params: {day: "{fire.date}"}
nodes:
  work: {run: "m:f", partitioned: false}
"""
SECRET = """
graph: secret
schedules:
  secret_run: {cron: "0 3 * * *"}
nodes:
  work: {run: "m:f", partitioned: false}
"""
CALENDAR = """calendar: cn_test
description: test days
country: CN
holidays:
  2027-12-31: Year-end closing
"""


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
def graphs(backend: Store) -> Store:
    backend.register_graph(load_graph_text(GRAPH))
    backend.register_graph(load_graph_text(SECRET))
    return backend


def _by_name(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    return {s["name"]: s for s in answer.json()}


# --- calendars ------------------------------------------------------------------------------------


def test_an_admin_registers_a_calendar_from_yaml_and_every_reader_sees_it(graphs: Store, served: Served) -> None:
    with served.client(mint(graphs, Role.ADMIN)) as admin, served.client(mint(graphs, Role.VIEWER)) as viewer:
        waiting = _by_name(viewer.get("/api/v1/schedules"))["workdays"]
        assert waiting["next_fires"] == [] and waiting["waiting"] == (
            "waiting for calendar cn_test, which is not registered"
        )
        put = admin.put("/api/v1/calendars/cn_test", json={"source": CALENDAR, "filename": "cn.yaml"})
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "cn_test" and put.json()["description"] == "test days"
        assert put.json()["spec"]["holidays"] == {"2027-12-31": "Year-end closing"}
        assert put.json()["source"] == CALENDAR
        assert [c["name"] for c in viewer.get("/api/v1/calendars").json()] == ["cn_test"]
        assert viewer.get("/api/v1/calendars/cn_test").json() == put.json()
        assert viewer.get("/api/v1/calendars/nope").status_code == 404
        fired = _by_name(viewer.get("/api/v1/schedules"))["workdays"]
        assert fired["waiting"] is None and len(fired["next_fires"]) == 5
        assert all(f["local"].endswith("T09:00:00+08:00") for f in fired["next_fires"])
        days = [datetime.fromisoformat(f["local"]) for f in fired["next_fires"]]
        assert all(d.weekday() < 5 or d.date().isoformat() in ("2026-02-14", "2026-02-28") for d in days)
        assert viewer.put("/api/v1/calendars/cn_test", json={"source": CALENDAR}).status_code == 403


def test_a_calendar_that_fails_validation_is_422_with_every_problem_and_its_line(graphs: Store, served: Served) -> None:
    bad = "calendar: cn_test\nweekend: [sat, sunday]\nholidays:\n  '2027-13-01': Nope\ncolour: red\n"
    with served.client(mint(graphs, Role.ADMIN)) as admin:
        refused = admin.put("/api/v1/calendars/cn_test", json={"source": bad, "filename": "cn.yaml"})
        other = admin.put("/api/v1/calendars/other", json={"source": CALENDAR})
        for body in ({"source": ""}, {"source": CALENDAR, "extra": 1}, {"source": "x" * (1024 * 1024 + 1)}):
            assert admin.put("/api/v1/calendars/cn_test", json=body).status_code in (413, 422), body
        assert admin.put("/api/v1/calendars/has space", json={"source": CALENDAR}).status_code == 422
        assert admin.get("/api/v1/calendars").json() == []
    assert refused.status_code == 422
    errors = refused.json()["errors"]
    assert {(e["where"], e["line"]) for e in errors} >= {("cn.yaml: weekend", 2), ("cn.yaml: colour", 5)}
    assert any("2027-13-01" in e["detail"] for e in errors)
    assert other.status_code == 400 and "the document is calendar 'cn_test'" in other.json()["detail"]


# --- schedules ------------------------------------------------------------------------------------


def test_the_schedules_list_shows_each_schedules_state_and_next_fires_in_its_zone(
    graphs: Store, served: Served
) -> None:
    with served.client(mint(graphs, Role.VIEWER)) as http:
        shown = _by_name(http.get("/api/v1/schedules"))
        one = http.get("/api/v1/schedules/nightly_run", params={"next": 3})
        none = http.get("/api/v1/schedules/nightly_run", params={"next": 0})
        refused = [http.get("/api/v1/schedules", params={"next": n}).status_code for n in (-1, 101, "x")]
        assert http.get("/api/v1/schedules/nope").status_code == 404
        assert http.get("/api/v1/schedules/bad%20name").status_code == 422
    assert list(shown) == ["nightly_run", "secret_run", "workdays"]
    nightly = shown["nightly_run"]
    assert (nightly["graph"], nightly["event_type"], nightly["state"], nightly["missed"]) == (
        "nightly", "nightly", "active", 0,
    )  # fmt: skip
    assert nightly["spec"]["timezone"] == "Asia/Shanghai" and nightly["spec"]["cron"] == "0 2 * * *"
    fires = nightly["next_fires"]
    assert len(fires) == 5 and all(f["local"].endswith("T02:00:00+08:00") for f in fires)
    assert [b["at"] - a["at"] for a, b in pairwise(fires)] == [86_400.0] * 4
    assert one.json()["next_fires"] == fires[:3] and none.json()["next_fires"] == []
    assert refused == [422, 422, 422]


def test_pause_with_a_note_then_resume_and_the_states_that_forbid_them(graphs: Store, served: Served) -> None:
    client = mint(graphs, Role.CLIENT, "ops")
    with served.client(client) as http:
        paused = http.post("/api/v1/schedules/nightly_run/pause", json={"note": "month-end freeze"})
        again = http.post("/api/v1/schedules/nightly_run/pause", json={"note": "still frozen"})
        bare = http.post("/api/v1/schedules/workdays/pause")  # no body: no note
        for body in ({"note": "x" * 501}, {"note": "a\x00b"}, {"note": 3}, {"why": "x"}):
            assert http.post("/api/v1/schedules/nightly_run/pause", json=body).status_code == 422, body
        resumed = http.post("/api/v1/schedules/nightly_run/resume")
        twice = http.post("/api/v1/schedules/nightly_run/resume")
        unknown = http.post("/api/v1/schedules/nope/pause", json={})
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert (body["state"], body["note"], body["next_fires"]) == ("paused", "month-end freeze", [])
    assert body["paused_by"].startswith("token:") and body["paused_at"] is not None
    assert again.json()["note"] == "still frozen"
    assert (bare.status_code, bare.json()["note"]) == (200, None)
    assert resumed.status_code == 200 and resumed.json()["state"] == "active" and resumed.json()["note"] is None
    assert len(resumed.json()["next_fires"]) == 5
    assert twice.status_code == 409 and "not paused" in twice.json()["detail"]
    assert unknown.status_code == 404
    assert graphs.schedule("nightly_run").state == "active"


def test_fire_now_raises_the_schedules_event_and_answers_it(graphs: Store, served: Served) -> None:
    with served.client(mint(graphs, Role.CLIENT)) as http:
        fired = http.post("/api/v1/schedules/nightly_run/trigger")
        listed = _by_name(http.get("/api/v1/schedules"))["nightly_run"]
        assert http.post("/api/v1/schedules/nope/trigger").status_code == 404
    assert fired.status_code == 201, fired.text
    event = fired.json()
    assert fired.headers["location"] == f"/api/v1/events/{event['id']}"
    assert event["type"] == "nightly" and event["schedule_id"] == listed["id"]
    shanghai = datetime.fromtimestamp(event["scheduled_for"], ZoneInfo("Asia/Shanghai"))
    assert event["params"] == {"day": shanghai.date().isoformat()}  # its template rendered for now
    assert listed["last_event_id"] == event["id"]


def test_a_token_limited_to_event_types_sees_and_steers_only_its_schedules_and_backfills(
    graphs: Store, served: Served
) -> None:
    hidden = graphs.start_backfill(BackfillRequest("secret_run", at("2025-01-01T00:00"), at("2025-01-03T00:00")))
    mine = graphs.start_backfill(BackfillRequest("nightly_run", at("2025-01-01T00:00"), at("2025-01-03T00:00")))
    limited = mint(graphs, Role.CLIENT, event_types=["nightly"])
    body = {"schedule": "secret_run", "from": "2025-01-01", "to": "2025-01-02"}
    with served.client(limited) as http:
        assert list(_by_name(http.get("/api/v1/schedules"))) == ["nightly_run", "workdays"]
        for method, path in [("GET", "/api/v1/schedules/secret_run"), ("POST", "/api/v1/schedules/secret_run/pause"),
                             ("POST", "/api/v1/schedules/secret_run/resume"),
                             ("POST", "/api/v1/schedules/secret_run/trigger"),
                             ("GET", f"/api/v1/backfills/{hidden.id}"),
                             ("POST", f"/api/v1/backfills/{hidden.id}/cancel")]:  # fmt: skip
            refused = http.request(method, path)
            assert refused.status_code == 404 and "secret" not in refused.json()["detail"].replace("secret_run", ""), (
                path, refused.text,
            )  # fmt: skip
        assert http.post("/api/v1/backfills", json=body).status_code == 404
        assert [b["id"] for b in http.get("/api/v1/backfills").json()] == [mine.id]
        assert http.get(f"/api/v1/backfills/{mine.id}").status_code == 200
        assert http.post("/api/v1/schedules/nightly_run/pause").status_code == 200
    assert graphs.schedule("secret_run").state == "active"
    assert graphs.backfill(hidden.id).state == "running"
    assert graphs.events(event_type="secret") == []


# --- backfills ------------------------------------------------------------------------------------


def test_a_backfill_dry_runs_starts_lists_and_cancels(graphs: Store, served: Served) -> None:
    graphs.trigger_schedule("nightly_run")  # an event, but not of a fire in the range
    january = {"schedule": "nightly_run", "from": "2025-01-01T00:00:00Z", "to": at("2025-01-10T23:59"),
               "max_running": 2}  # fmt: skip
    with served.client(mint(graphs, Role.CLIENT)) as http:
        dry = http.post("/api/v1/backfills", json={**january, "dry_run": True})
        assert http.get("/api/v1/backfills").json() == []  # a dry run stores nothing
        made = http.post("/api/v1/backfills", json=january)
        listed = http.get("/api/v1/backfills")
        one = http.get(f"/api/v1/backfills/{made.json()['id']}")
        cancelled = http.post(f"/api/v1/backfills/{made.json()['id']}/cancel")
        twice = http.post(f"/api/v1/backfills/{made.json()['id']}/cancel")
        unknown = [http.get("/api/v1/backfills/999"), http.post("/api/v1/backfills/999/cancel"),
                   http.post("/api/v1/backfills", json={**january, "schedule": "nope"})]  # fmt: skip
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert (plan["id"], plan["state"], plan["total"], plan["skipped"]) == (0, "dry-run", 10, 0)
    # 02:00 in Shanghai is 18:00 UTC the day before: the range's fires are Shanghai's 2nd to 11th
    assert [f["local"][:10] for f in plan["first_fires"]] == ["2025-01-02", "2025-01-03", "2025-01-04"]
    assert [f["local"][:10] for f in plan["last_fires"]] == ["2025-01-09", "2025-01-10", "2025-01-11"]
    assert made.status_code == 201 and made.headers["location"] == f"/api/v1/backfills/{made.json()['id']}"
    assert (made.json()["state"], made.json()["total"], made.json()["max_running"]) == ("running", 10, 2)
    assert made.json()["first_fires"] is None and made.json()["created_by"].startswith("token:")
    assert [b["id"] for b in listed.json()] == [made.json()["id"]] and one.json() == made.json()
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert twice.status_code == 409 and "cancelled" in twice.json()["detail"]
    assert [u.status_code for u in unknown] == [404, 404, 404]


BAD_BACKFILLS: list[dict[str, Any]] = [
    {"from": "2025-02-01", "to": "2025-01-01"},  # to before from
    {"max_running": 0},
    {"max_running": 1001},
    {"max_running": True},
    {"max_running": "2"},
    {"from": "1900-01-01", "to": "2025-01-01"},  # over a century
    {"from": "yesterday"},
    {"from": 1e12},
    {"schedule": "has space"},
    {"rerun": "yes"},
    {"extra": 1},
    {"from_at": 0},
]


def test_backfill_bodies_outside_the_documents_bounds_are_422_and_other_refusals_their_status(
    graphs: Store, served: Served
) -> None:
    ok = {"schedule": "nightly_run", "from": "2025-01-01", "to": "2025-01-02"}
    minutely = GRAPH.replace('"0 2 * * *"', '"* * * * *"')
    with served.client(mint(graphs, Role.CLIENT)) as http:
        for change in BAD_BACKFILLS:
            refused = http.post("/api/v1/backfills", json={**ok, **change})
            assert refused.status_code == 422, (change, refused.text)
        assert http.post("/api/v1/backfills", json={**ok, "max_running": 1000.0}).status_code == 201
        waits = http.post("/api/v1/backfills", json={**ok, "schedule": "workdays"})  # its calendar is missing
        graphs.register_graph(load_graph_text(minutely))
        many = http.post("/api/v1/backfills", json={**ok, "from": "2024-01-01", "to": "2025-01-01"})
        graphs.register_graph(load_graph_text(GRAPH.replace("  workdays:", "  weekdays:")))  # workdays retired
        retired = http.post("/api/v1/backfills", json={**ok, "schedule": "workdays"})
    assert waits.status_code == 409 and "cn_test" in waits.json()["detail"]
    assert many.status_code == 400 and "over 100,000 fires" in many.json()["detail"]
    assert retired.status_code == 409 and "retired" in retired.json()["detail"]


def test_the_client_and_http_store_answer_the_stores_own_records(graphs: Store, served: Served) -> None:
    graphs.register_calendar(load_calendar(), source="cn.yaml")
    started = graphs.start_backfill(BackfillRequest("nightly_run", at("2025-01-01T00:00"), at("2025-01-05T00:00")))
    with Client(served.url, mint(graphs, Role.ADMIN)) as client:
        http = HttpStore(client)
        assert http.schedules() == graphs.schedules()
        assert http.schedule("workdays") == graphs.schedule("workdays")
        assert http.calendars() == graphs.calendars()
        assert http.backfills() == graphs.backfills() and http.backfill(started.id) == graphs.backfill(started.id)
        paused = http.pause_schedule("workdays", note="audit")
        assert paused == graphs.schedule("workdays") and paused.note == "audit"
        assert http.resume_schedule("workdays") == graphs.schedule("workdays")
        event = http.trigger_schedule("nightly_run")
        assert event == graphs.event(event.id)
        plan = client.dry_run_backfill("nightly_run", at("2025-01-01T00:00"), at("2025-01-05T00:00"))
        assert (plan.record.total, len(plan.first), len(plan.last)) == (4, 3, 1)
        dry = http.start_backfill(BackfillRequest("nightly_run", at("2025-01-01T00:00"), at("2025-01-05T00:00"),
                                                  dry_run=True))  # fmt: skip
        assert dataclasses.replace(dry, created_at=0.0) == dataclasses.replace(plan.record, created_at=0.0)
        made = http.start_backfill(BackfillRequest("nightly_run", at("2025-02-01T00:00"), at("2025-02-02T00:00")))
        assert made == graphs.backfill(made.id)
        assert http.cancel_backfill(made.id) == graphs.backfill(made.id)
        registered = http.register_calendar(load_calendar("cn_other"), source="/somewhere/cn_other.yaml")
        assert registered == next(c for c in graphs.calendars() if c.name == "cn_other")
        statuses = client.schedules(next_fires=2)
        assert [len(s.next_fires) for s in statuses] == [2, 2, 2]
        assert http.events(backfill_id=started.id) == graphs.events(backfill_id=started.id) == []


def load_calendar(name: str = "cn_test") -> Calendar:
    return load_calendar_text(CALENDAR.replace("cn_test", name))


def test_the_openapi_document_states_the_bounds_the_server_enforces(graphs: Store, served: Served) -> None:
    with served.client() as http:
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
    backfill = schemas["BackfillIn"]["properties"]
    assert (backfill["max_running"]["minimum"], backfill["max_running"]["maximum"]) == (1, 1000)
    assert set(schemas["BackfillIn"]["required"]) == {"schedule", "from", "to"}
    assert schemas["PauseIn"]["properties"]["note"]["maxLength"] == 500
    assert schemas["CalendarIn"]["properties"]["source"]["maxLength"] == 1024 * 1024
