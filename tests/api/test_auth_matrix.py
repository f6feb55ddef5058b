"""Deny by default, proven route by route against a real ``baton server`` (both backends).

:data:`MATRIX` names every route of the app with the action it needs; a route the app has and
the matrix lacks fails :func:`test_the_matrix_names_every_route_of_the_app`, so a new route (an
SSE stream, static files, a page) must be added here, with its action, before it ships. For
every route and method: no token, a malformed header, an unknown token and a revoked token are
401 with ``WWW-Authenticate: Bearer``; each role that may not use it is 403; each role that may
gets past both. Public routes are the explicit allow-list :data:`PUBLIC_ROUTES`.

Then the limits inside a role: a client token limited to event types reaches no object of
another type (event, its tasks, a task, an attempt's log, cancel, rerun) and cannot submit one;
a worker token limited to labels cannot register or claim with others; a worker token cannot
speak for a worker registered with another token (its report of that claim is ``stale``). And a
revoked token stops working within the server's ``token_cache_s``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiseed import DEMO, OTHER, PROBLEM, Seeded, raw, seed
from fastapi.routing import iter_route_contexts
from serving import Served, mint

from baton.access import Action, Role, new_token, token_digest
from baton.errors import Unauthenticated
from baton.graphs.calendars import calendar_from_dict
from baton.graphs.spec import load_graph_text
from baton.server.app import create_app
from baton.server.auth import ACTION_KEY, PUBLIC, Authenticator
from baton.settings import Settings
from baton.store.protocol import Store
from baton.store.records import BackfillRequest

Route = tuple[str, str]  # (method, path template)

PUBLIC_ROUTES: frozenset[Route] = frozenset({
    ("GET", "/healthz"), ("GET", "/openapi.json"), ("HEAD", "/openapi.json"),
    ("GET", "/"), ("GET", "/ui/login"), ("POST", "/ui/login"), ("GET", "/ui/static/{name}"),
})  # fmt: skip
# What a public route answers a request with no (or a wrong) token: the root sends browsers to the
# UI, a login with no token shows the form again.
PUBLIC_ANSWERS: dict[Route, int] = {("GET", "/"): 303, ("POST", "/ui/login"): 401}
MATRIX: dict[Route, Action] = {
    ("POST", "/api/v1/events"): Action.SUBMIT,
    ("GET", "/api/v1/events"): Action.READ,
    ("GET", "/api/v1/events/{event_id}"): Action.READ,
    ("GET", "/api/v1/events/{event_id}/tasks"): Action.READ,
    ("GET", "/api/v1/tasks/{task_id}"): Action.READ,
    ("GET", "/api/v1/attempts/{attempt_id}/log"): Action.READ,
    ("GET", "/api/v1/events/{event_id}/waiting"): Action.READ,
    ("POST", "/api/v1/events/{event_id}/cancel"): Action.STEER,
    ("POST", "/api/v1/events/{event_id}/rerun"): Action.STEER,
    ("GET", "/api/v1/graphs"): Action.READ,
    ("POST", "/api/v1/graphs"): Action.REGISTER_GRAPH,
    ("GET", "/api/v1/graphs/{graph_id}"): Action.READ,
    ("GET", "/api/v1/workers"): Action.READ,
    ("GET", "/api/v1/limits"): Action.READ,
    ("GET", "/api/v1/pauses"): Action.READ,
    ("POST", "/api/v1/pauses"): Action.STEER,
    ("POST", "/api/v1/pauses/resume"): Action.STEER,  # after the pause (then 409 if the event is finished)
    ("GET", "/api/v1/limits/rates"): Action.READ,
    ("GET", "/api/v1/webhooks"): Action.ADMIN,
    ("POST", "/api/v1/webhooks"): Action.ADMIN,
    ("GET", "/api/v1/webhooks/deliveries"): Action.ADMIN,
    ("DELETE", "/api/v1/webhooks/{name}"): Action.ADMIN,  # after the POST: it removes what that added
    ("GET", "/api/v1/calendars"): Action.READ,
    ("GET", "/api/v1/calendars/{name}"): Action.READ,
    ("PUT", "/api/v1/calendars/{name}"): Action.REGISTER_GRAPH,
    ("GET", "/api/v1/schedules"): Action.READ,
    ("GET", "/api/v1/schedules/{name}"): Action.READ,
    ("POST", "/api/v1/schedules/{name}/pause"): Action.STEER,
    ("POST", "/api/v1/schedules/{name}/resume"): Action.STEER,  # after the pause (then 409: not paused)
    ("POST", "/api/v1/schedules/{name}/trigger"): Action.SUBMIT,
    ("GET", "/api/v1/backfills"): Action.READ,
    ("GET", "/api/v1/backfills/{backfill_id}"): Action.READ,
    ("POST", "/api/v1/backfills"): Action.SUBMIT,
    ("POST", "/api/v1/backfills/{backfill_id}/cancel"): Action.STEER,  # then 409: not running
    ("GET", "/metrics"): Action.READ,
    ("GET", "/worker/v1/terms"): Action.WORK,
    ("POST", "/worker/v1/register"): Action.WORK,
    ("POST", "/worker/v1/claim"): Action.WORK,
    ("POST", "/worker/v1/wait"): Action.WORK,
    ("POST", "/worker/v1/report"): Action.WORK,
    ("POST", "/worker/v1/heartbeat"): Action.WORK,
    ("POST", "/worker/v1/logs"): Action.WORK,
    ("GET", "/worker/v1/graphs/{graph_id}"): Action.WORK,
    ("GET", "/ui/"): Action.READ,
    ("GET", "/ui/events"): Action.READ,
    ("GET", "/ui/events/{event_id}"): Action.READ,
    ("GET", "/ui/events/{event_id}/header"): Action.READ,
    ("GET", "/ui/events/{event_id}/graph"): Action.READ,
    ("GET", "/ui/events/{event_id}/waiting"): Action.READ,
    ("GET", "/ui/events/{event_id}/timeline"): Action.READ,
    ("GET", "/ui/events/{event_id}/partitions"): Action.READ,
    ("GET", "/ui/events/{event_id}/tasks"): Action.READ,
    ("GET", "/ui/events/{event_id}/live"): Action.READ,
    ("GET", "/ui/live"): Action.READ,
    ("GET", "/ui/tasks/{task_id}"): Action.READ,
    ("GET", "/ui/tasks/{task_id}/log"): Action.READ,
    ("GET", "/ui/tasks/{task_id}/tail"): Action.READ,
    ("GET", "/ui/workers"): Action.READ,
    ("GET", "/ui/graphs"): Action.READ,
    ("GET", "/ui/graphs/{graph_id}"): Action.READ,
    ("POST", "/ui/graphs/{graph_id}/submit"): Action.SUBMIT,
    ("POST", "/ui/events/{event_id}/rerun"): Action.STEER,
    ("POST", "/ui/events/{event_id}/cancel"): Action.STEER,
    ("POST", "/ui/events/{event_id}/pause"): Action.STEER,
    ("POST", "/ui/events/{event_id}/resume"): Action.STEER,
    ("POST", "/ui/graphs/{graph_id}/pause"): Action.STEER,
    ("POST", "/ui/graphs/{graph_id}/resume"): Action.STEER,
    ("GET", "/ui/schedules"): Action.READ,
    ("GET", "/ui/calendars/{name}"): Action.READ,
    ("POST", "/ui/schedules/{name}/pause"): Action.STEER,
    ("POST", "/ui/schedules/{name}/resume"): Action.STEER,
    ("POST", "/ui/schedules/{name}/trigger"): Action.SUBMIT,
    ("GET", "/ui/backfills"): Action.READ,
    ("GET", "/ui/backfills/{backfill_id}"): Action.READ,
    ("POST", "/ui/backfills"): Action.SUBMIT,
    ("POST", "/ui/backfills/{backfill_id}/cancel"): Action.STEER,
    ("POST", "/ui/logout"): Action.READ,
    ("POST", "/worker/v1/leave"): Action.WORK,  # last: the matrix's worker leaves
}
STREAMS = frozenset({"/ui/events/{event_id}/live", "/ui/live"})  # answered with a stream that never ends
QUERIES: dict[str, dict[str, str]] = {"/ui/events/{event_id}/tasks": {"node": "hello"},
                                      "/ui/tasks/{task_id}/log": {"attempt": "1"},
                                      "/ui/tasks/{task_id}/tail": {"attempt": "1"}}  # fmt: skip
# Who may do what, written out again on purpose: baton.access.ALLOWED is what is tested.
MAY: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset({Action.READ, Action.SUBMIT, Action.STEER, Action.REGISTER_GRAPH, Action.ADMIN}),
    Role.CLIENT: frozenset({Action.READ, Action.SUBMIT, Action.STEER}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.WORKER: frozenset({Action.WORK}),
}
MALFORMED = [
    "Basic YWRtaW46YWRtaW4=",
    "Bearer",
    "Bearer    x y",
    "Token abc",
    "bearer",
    "Bearer:abc",
    "Bearer " + "x" * 5000,
]
GRAPH_YAML = """graph: matrix_graph
nodes:
  only:
    run: m:f
"""
SCHEDULED_YAML = """graph: matrix_sched
schedules:
  matrix: {cron: "0 2 * * *"}
nodes:
  only: {run: "m:f"}
"""
BACKFILL = {"schedule": "matrix", "from": "2025-01-01", "to": "2025-01-02"}


def app_routes(store: Store) -> dict[Route, str | None]:
    """Every (method, path) the app answers, with the action its route declares (None: none).
    FastAPI 0.163 wraps included routers; ``iter_route_contexts`` walks into them."""
    found: dict[Route, str | None] = {}
    for route in iter_route_contexts(create_app(store, Settings(db=store.url)).routes):
        extra = getattr(route, "openapi_extra", None) or {}
        kind = type(route.original_route).__name__  # e.g. APIWebSocketRoute, Mount (static files)
        methods = getattr(route, "methods", None) or {kind.upper()}
        for method in methods:
            found[(method, str(route.path))] = extra.get(ACTION_KEY)
    return found


def test_the_matrix_names_every_route_of_the_app(backend: Store) -> None:
    routes = app_routes(backend)
    unnamed = set(routes) - set(MATRIX) - PUBLIC_ROUTES
    assert not unnamed, f"routes the auth matrix does not cover (add them to MATRIX or PUBLIC_ROUTES): {unnamed}"
    assert not (set(MATRIX) | PUBLIC_ROUTES) - set(routes), "the matrix names routes the app no longer has"
    declared = {route: routes[route] for route in MATRIX}
    assert declared == {route: str(action) for route, action in MATRIX.items()}
    assert {routes[r] for r in PUBLIC_ROUTES if r[1] != "/openapi.json"} == {PUBLIC}
    schema = create_app(backend, Settings(db=backend.url)).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            public = (method.upper(), path) in PUBLIC_ROUTES
            assert operation["security"] == ([] if public else [{"bearer": []}]), (method, path)
            if not public:
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


# --- the matrix, end to end ---------------------------------------------------------------------


@dataclass
class World:
    served: Served
    seeded: Seeded
    tokens: dict[Role, str]
    revoked: dict[Role, str]
    backfill_id: int


def _scheduled(store: Store) -> int:
    """A graph with the schedule ``matrix``, a calendar ``matrix``, and a backfill of it (its id)."""
    store.register_graph(load_graph_text(SCHEDULED_YAML))
    store.register_calendar(calendar_from_dict({"calendar": "matrix"}))
    return store.start_backfill(BackfillRequest("matrix", 1735689600.0, 1735862400.0)).id


@pytest.fixture
def world(backend: Store, tmp_path: Path) -> Iterator[World]:
    seeded = seed(backend)
    backfill_id = _scheduled(backend)
    tokens = {role: mint(backend, role) for role in Role}
    revoked = {role: mint(backend, role, name=f"revoked {role}") for role in Role}
    for record in backend.tokens():
        if record.name.startswith("revoked"):
            backend.revoke_token(record.id)
    server = Served(backend.url, tmp_path).start()
    try:
        yield World(server, seeded, tokens, revoked, backfill_id)
    finally:
        server.stop()


def request_for(route: Route, w: World, n: int) -> dict[str, Any]:
    """A valid request to ``route`` (the ``n``-th sent to it), with real ids."""
    method, template = route
    s = w.seeded
    path = template.format(event_id=s.events[DEMO], task_id=s.tasks[DEMO], attempt_id=s.attempts[DEMO],
                           graph_id=s.graphs[DEMO], name="matrix", backfill_id=w.backfill_id)  # fmt: skip
    bodies: dict[Route, Any] = {
        ("POST", "/api/v1/events"): {"type": DEMO, "params": {"note": "matrix"}, "idempotency_key": "matrix"},
        ("POST", "/api/v1/events/{event_id}/rerun"): {},
        ("POST", "/ui/events/{event_id}/rerun"): {},
        ("POST", "/ui/graphs/{graph_id}/submit"): {"values": {"note": "matrix"}, "idempotency_key": "matrix-ui"},
        ("POST", "/api/v1/graphs"): {"source": GRAPH_YAML},
        ("PUT", "/api/v1/calendars/{name}"): {"source": "calendar: matrix\n"},
        ("POST", "/api/v1/schedules/{name}/pause"): {"note": "matrix"},
        ("POST", "/api/v1/backfills"): BACKFILL,
        ("POST", "/api/v1/pauses"): {"event_id": s.events[DEMO], "reason": "matrix"},
        ("POST", "/api/v1/pauses/resume"): {"event_id": s.events[DEMO]},
        ("POST", "/ui/schedules/{name}/pause"): {"note": "matrix"},
        ("POST", "/ui/events/{event_id}/pause"): {"note": "matrix"},
        ("POST", "/ui/graphs/{graph_id}/pause"): {"note": "matrix"},
        ("POST", "/ui/backfills"): {"schedule": "matrix", "start": "2025-01-01", "end": "2025-01-02"},
        ("POST", "/api/v1/webhooks"): {
            "name": "matrix",
            "url": "https://hooks.example/matrix",
            "secret": "matrix-secret-0123456789",
            "kinds": ["event.failed"],
            "replace": True,
        },
        ("POST", "/worker/v1/register"): {
            "id": "matrix",
            "name": "m",
            "host": "h",
            "pid": 1,
            "capacity": {"slots": 1},
        },
        ("POST", "/worker/v1/claim"): {
            "worker_id": "matrix",
            "claim_id": f"matrix-{n}",
            "free": {"slots": 1},
            "max_tasks": 0,
        },
        ("POST", "/worker/v1/wait"): {"worker_id": "matrix", "since": 0, "wait_s": 0},
        ("POST", "/worker/v1/report"): {"worker_id": "matrix", "reports": []},
        ("POST", "/worker/v1/heartbeat"): {"worker_id": "matrix", "running": []},
        ("POST", "/worker/v1/logs"): {"worker_id": "matrix", "tails": []},
        ("POST", "/worker/v1/leave"): {"worker_id": "matrix"},
    }
    request: dict[str, Any] = {"method": method, "url": path, "params": QUERIES.get(template, {})}
    if route in bodies:
        request["json"] = bodies[route]
    return request


def _refused(response: httpx.Response, status: int) -> str | None:
    if response.status_code != status:
        return f"answered {response.status_code}, not {status}: {response.text[:200]}"
    page = response.request.url.path.startswith("/ui/") and response.request.method == "GET"
    if page:  # a browser asking for a page is shown one (the login form for a 401)
        html = response.headers.get("content-type", "").startswith("text/html")
        return None if html and (status != 401 or 'action="/ui/login"' in response.text) else "not a page"
    if response.headers.get("content-type") != PROBLEM or response.json()["status"] != status:
        return f"not a problem: {response.headers.get('content-type')} {response.text[:200]}"
    if status == 401 and response.headers.get("www-authenticate") != "Bearer":
        return f"401 without WWW-Authenticate: Bearer ({response.headers.get('www-authenticate')})"
    return None


def _let_through(response: httpx.Response, action: Action) -> str | None:
    """A role that may gets an answer (a cancelled event cannot be cancelled again: 409)."""
    if response.status_code < 400 or (action is Action.STEER and response.status_code == 409):
        return None
    return f"refused {response.status_code}: {response.text[:200]}"


@pytest.mark.long(seconds=15)
def test_every_route_refuses_what_it_must_and_lets_each_role_that_may_through(world: World) -> None:
    wrong: list[str] = []
    sent = 0
    with world.served.client() as http:
        for route, action in MATRIX.items():
            attempts: list[tuple[str, dict[str, str], int | None]] = [("no token", {}, 401)]
            attempts += [(f"header {h[:20]!r}", {"Authorization": h}, 401) for h in MALFORMED]
            attempts.append(("unknown token", {"Authorization": f"Bearer {new_token(Role.ADMIN)}"}, 401))
            attempts += [
                (f"revoked {r} token", {"Authorization": f"Bearer {t}"}, 401) for r, t in world.revoked.items()
            ]
            attempts += [
                (f"{role} token", {"Authorization": f"Bearer {token}"}, None if action in MAY[role] else 403)
                for role, token in world.tokens.items()
            ]
            for what, headers, status in attempts:
                with http.stream(**request_for(route, world, sent), headers=headers) as response:
                    if route[1] not in STREAMS or response.status_code != 200:
                        response.read()
                sent += 1
                problem = _let_through(response, action) if status is None else _refused(response, status)
                if problem:
                    wrong.append(f"{route[0]} {route[1]} with {what}: {problem}")
    assert not wrong, "\n".join(wrong)
    assert sent >= len(MATRIX) * (len(MALFORMED) + 2 + 2 * len(Role))


def test_public_routes_answer_anyone(world: World) -> None:
    with world.served.client() as http:
        for method, template in PUBLIC_ROUTES:
            path = template.format(name="baton.js")
            for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
                response = http.request(method, path, headers=headers)
                wanted = PUBLIC_ANSWERS.get((method, template), 200)
                assert response.status_code == wanted, (method, path, headers, response.text)


def test_unknown_paths_and_methods_are_problems_and_never_succeed(world: World) -> None:
    token = world.tokens[Role.ADMIN]
    with world.served.client(token) as http:
        for method, path, status in [("GET", "/api/v1/secrets", 404), ("GET", "/worker/v2/claim", 404),
                                     ("PUT", "/api/v1/events", 405), ("DELETE", "/api/v1/graphs/1", 405),
                                     ("GET", "/worker/v1/claim", 405), ("GET", "/docs", 404)]:  # fmt: skip
            assert _refused(http.request(method, path), status) is None, (method, path)


# --- limits inside a role -------------------------------------------------------------------------


def test_a_client_limited_to_event_types_reaches_nothing_of_other_types(backend: Store, world: World) -> None:
    s = world.seeded
    limited = mint(backend, Role.CLIENT, event_types=[DEMO])
    viewer = mint(backend, Role.VIEWER, event_types=[DEMO])

    def routes(event_type: str) -> list[tuple[str, str, dict[str, Any] | None]]:
        e, t, a = s.events[event_type], s.tasks[event_type], s.attempts[event_type]
        g = s.graphs[event_type]
        return [("GET", f"/api/v1/events/{e}", None), ("GET", f"/api/v1/events/{e}/tasks", None),
                ("GET", f"/api/v1/tasks/{t}", None), ("GET", f"/api/v1/attempts/{a}/log", None),
                ("GET", f"/api/v1/attempts/{a}/log?stream=stderr", None), ("GET", f"/api/v1/graphs/{g}", None),
                ("POST", f"/api/v1/events/{e}/rerun", {}), ("POST", f"/ui/graphs/{g}/submit", {"values": {}}),
                ("POST", f"/api/v1/events/{e}/cancel", None)]  # fmt: skip

    with world.served.client(limited) as http:
        for method, path, body in routes(OTHER):
            refused = http.request(method, path, json=body)
            assert refused.status_code in (403, 404), (path, refused.text)
            assert refused.headers["content-type"] == PROBLEM
            assert "says hello" not in refused.text and "and fails" not in refused.text, path
        assert backend.event(s.events[OTHER]).cancel_requested is False
        assert [e.id for e in backend.events(event_type=OTHER)] == [s.events[OTHER]]  # none raised from the UI
        assert http.post("/api/v1/events", json={"type": OTHER}).status_code == 403
        assert http.get("/api/v1/events", params={"type": OTHER}).status_code == 403
        listed = http.get("/api/v1/events").json()["events"]
        assert listed and {e["type"] for e in listed} == {DEMO}
        assert {g["event_type"] for g in http.get("/api/v1/graphs").json()} == {DEMO}
        assert {g["event_type"] for g in http.get("/api/v1/graphs", params={"type": OTHER}).json()} == set()
        for method, path, body in routes(DEMO)[:-1]:  # its own type: all there (cancel is tried last)
            assert http.request(method, path, json=body).status_code < 500
            if method == "GET":
                assert http.get(path).status_code == 200, path
        assert "says hello" in http.get(f"/api/v1/attempts/{s.attempts[DEMO]}/log").text
        assert http.post("/api/v1/events", json={"type": DEMO}).status_code == 201
        assert http.post(f"/api/v1/events/{s.events[DEMO]}/cancel").status_code == 200
    with world.served.client(viewer) as http:
        for method, path, _ in routes(OTHER):
            if method == "GET":
                assert http.get(path).status_code in (403, 404), path


def _worker(served: Served, token: str) -> Callable[[str, dict[str, Any]], httpx.Response]:
    def call(verb: str, body: dict[str, Any]) -> httpx.Response:
        with served.client(token) as http:
            return http.post(f"/worker/v1/{verb}", json=body)

    return call


def _registration(worker_id: str, labels: list[str]) -> dict[str, Any]:
    return {"id": worker_id, "name": worker_id, "host": "h", "pid": 1, "capacity": {"slots": 4}, "labels": labels}


def test_a_worker_token_limited_to_labels_cannot_register_or_claim_with_others(backend: Store, world: World) -> None:
    call = _worker(world.served, mint(backend, Role.WORKER, labels=["cpu", "big"]))
    claim = {"worker_id": "lw", "claim_id": "c", "free": {"slots": 1}, "max_tasks": 0}
    for labels in (["gpu"], ["cpu", "gpu"], ["CPU"], ["cpu "]):
        refused = call("register", _registration("lw", labels))
        assert refused.status_code == 403 and "labels" in refused.json()["detail"], refused.text
        assert call("claim", {**claim, "labels": labels}).status_code == 403
    assert not any(w.id.startswith("lw@") for w in backend.workers())
    assert call("register", _registration("lw", ["cpu"])).status_code == 200
    assert call("claim", {**claim, "labels": ["cpu", "big"]}).status_code == 200
    assert call("register", _registration("lw", [])).status_code == 200


def test_a_worker_token_cannot_speak_for_a_worker_of_another_token(backend: Store, world: World) -> None:
    """Both tokens register the same worker id; the server keeps them apart, so B's report of
    A's claim is stale, B's heartbeat does not hold A's lease, B's live log of it is dropped,
    and B's retry of A's claim id does not hand it A's attempts."""
    a = _worker(world.served, mint(backend, Role.WORKER, name="a"))
    b = _worker(world.served, mint(backend, Role.WORKER, name="b"))
    for call in (a, b):
        assert call("register", _registration("w1", [])).status_code == 200
    claim = {"worker_id": "w1", "claim_id": "same", "free": {"slots": 1}, "max_tasks": 1,
             "event_id": world.seeded.events[DEMO]}  # fmt: skip
    held = a("claim", claim).json()["claims"]
    assert len(held) == 1
    task_id, attempt = held[0]["task_id"], held[0]["attempt"]
    stolen = b("claim", claim).json()["claims"]
    assert (task_id, attempt) not in {(c["task_id"], c["attempt"]) for c in stolen}
    now = time.time()
    report = {"task_id": task_id, "attempt": attempt, "outcome": "succeeded", "started_at": now,
              "finished_at": now, "result": json.dumps("from b")}  # fmt: skip
    answered = b("report", {"worker_id": "w1", "reports": [report]})
    assert answered.status_code == 200 and answered.json()["answers"][0]["answer"] == "stale", answered.text
    stops = b("heartbeat", {"worker_id": "w1", "running": [[task_id, attempt]]}).json()["stop"]
    assert [(s["task_id"], s["attempt"]) for s in stops] == [(task_id, attempt)]
    tail = {"task_id": task_id, "attempt": attempt, "stream": "stdout", "offset": 0, "text": "from b\n"}
    assert b("logs", {"worker_id": "w1", "tails": [tail]}).json()["held"] == [None]
    assert a("logs", {"worker_id": "w1", "tails": [{**tail, "text": "from a\n"}]}).json()["held"] == [7]
    assert backend.attempt_log(task_id, attempt).text == "from a\n"
    task = backend.task(task_id)
    assert task.state == "running" and task.result_json is None and task.worker_id != "w1"
    answered = a("report", {"worker_id": "w1", "reports": [{**report, "result": json.dumps("from a")}]})
    assert answered.json()["answers"][0]["answer"] == "recorded"
    assert backend.task(task_id).result_json == json.dumps("from a")


def test_log_lookups_are_by_attempt_id_never_by_path(world: World) -> None:
    with world.served.client(world.tokens[Role.ADMIN]) as http:
        good = http.get(f"/api/v1/attempts/{world.seeded.attempts[DEMO]}/log")
        assert good.status_code == 200 and good.json()["text"] == f"{DEMO} says hello\n"
    a = world.seeded.attempts[DEMO]
    paths = ["/api/v1/attempts/..%2F..%2Fetc%2Fpasswd/log", f"/api/v1/attempts/{a}/../{a}/log",
             f"/api/v1/attempts/{a}%2F..%2F{a}/log", "/api/v1/attempts/%2Fetc%2Fpasswd/log",
             "/api/v1/attempts/....%2F%2Fetc%2Fpasswd/log", "/api/v1/attempts/1-1%00/log",
             f"/api/v1/attempts/{a}/log/../../../../etc/passwd", "/api/v1/attempts/~root/log",
             "/api/v1/attempts/%2E%2E/log", "/api/v1/attempts/01-1/log", "/api/v1/attempts/1-01/log"]  # fmt: skip

    for path in paths:
        response = raw(world.served.url, "GET", path, headers={"Authorization": f"Bearer {world.tokens[Role.ADMIN]}"})
        # 404 where no route fits, 422 where the attempt id does not fit its declared pattern
        assert response.status in (404, 422), (path, response.status, response.body[:200])
        assert response.headers["content-type"] == PROBLEM and b"root:" not in response.body, path


# --- revocation -----------------------------------------------------------------------------------


def test_the_token_cache_keeps_a_lookup_for_cache_s_and_no_longer(backend: Store) -> None:
    now = [100.0]
    auth = Authenticator(backend, cache_s=2.0, clock=lambda: now[0])
    token = mint(backend, Role.CLIENT, name="cached")
    assert auth.lookup(token).name == "cached"
    record = next(r for r in backend.tokens() if r.name == "cached")
    backend.revoke_token(record.id)
    now[0] += 1.99
    assert auth.lookup(token).name == "cached"  # still the cached lookup
    now[0] += 0.01
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.lookup(token)
    late = new_token(Role.CLIENT)
    with pytest.raises(Unauthenticated):
        auth.lookup(late)  # unknown: cached as unknown too
    backend.create_token(token_digest(late), Role.CLIENT, "late")
    with pytest.raises(Unauthenticated):
        auth.lookup(late)
    now[0] += 2.0
    assert auth.lookup(late).name == "late"


def test_a_revoked_token_is_refused_by_the_server_within_token_cache_s(backend: Store, tmp_path: Path) -> None:
    """The server cached the token before it was revoked, so no request it reads token_cache_s
    or more after the revocation may pass. Judged by when each request was sent (the server
    reads it later still), not by when its answer came: a busy machine delays answers, and
    that is no longer life for the token."""
    cache_s = 0.5
    server = Served(backend.url, tmp_path, env={"BATON_TOKEN_CACHE_S": str(cache_s)}).start()
    try:
        token = mint(backend, Role.VIEWER, name="soon revoked")
        with server.client(token) as http:
            assert http.get("/api/v1/events").status_code == 200  # now cached
            backend.revoke_token(next(r.id for r in backend.tokens() if r.name == "soon revoked"))
            revoked_at = time.monotonic()
            deadline = revoked_at + cache_s + 5.0
            last_passed = revoked_at  # when the last request that still passed was sent
            while True:
                sent = time.monotonic()
                status = http.get("/api/v1/events").status_code
                if status != 200 or sent > deadline:
                    break
                last_passed = sent
                time.sleep(0.02)
        assert status == 401
        worked = last_passed - revoked_at
        assert worked < cache_s, f"a revoked token worked for {worked:.2f} s, over token_cache_s={cache_s}"
    finally:
        server.stop()


def test_a_bad_token_is_judged_before_a_bad_body(world: World) -> None:
    """FastAPI parses a body before any dependency runs: a request with a refused token must
    hear 401/403 about that, not 400/415/422 about its body."""
    bodies = [b"{not json", b'{"type": "\xff"}', b"[" * 50_000, b"[1, 2]"]
    posts = [route for route in MATRIX if route[0] in ("POST", "PUT") and MATRIX[route] not in MAY[Role.VIEWER]]
    for method, path in posts:
        url = path.format(event_id=world.seeded.events[DEMO], graph_id=world.seeded.graphs[DEMO], name="matrix",
                          backfill_id=world.backfill_id)  # fmt: skip
        for body in bodies:
            for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 401),
                                    ({"Authorization": f"Bearer {world.revoked[Role.ADMIN]}"}, 401),
                                    ({"Authorization": f"Bearer {world.tokens[Role.VIEWER]}"}, 403)):  # fmt: skip
                sent = raw(world.served.url, method, url, body, {**headers, "Content-Type": "application/json"})
                assert sent.status == status, (path, body[:20], headers, sent.body[:200])
                assert sent.headers["content-type"] == PROBLEM
        with_type = raw(world.served.url, method, url, b"x=1", {"Content-Type": "text/plain"})
        assert with_type.status == 401, (path, with_type.body)
