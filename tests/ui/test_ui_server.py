"""The UI through a real ``baton server`` (no browser): logging in and out, the session cookie's
attributes, CSRF on actions, sessions ending with their token, event-type limits on pages, and
markup from parameters and logs shown as text. Both backends."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serving import Served, mint
from uilogin import form_login
from uiseed import HIDDEN_TYPE, HOSTILE, UI_TYPE, UiSeed, seed_ui

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import Outcome, TaskState
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.server.auth import SESSION_COOKIE, csrf_token
from baton.server.ui.live import LOOK_S
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report


@pytest.fixture
def served(backend: Store, tmp_path: Path) -> Iterator[tuple[Served, UiSeed]]:
    seeded = seed_ui(backend)
    server = Served(backend.url, tmp_path, env={"BATON_TOKEN_CACHE_S": "0.2"}).start()
    try:
        yield server, seeded
    finally:
        server.stop()


@contextlib.contextmanager
def login(server: Served, token: str, next_page: str = "/ui/events") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        answer = form_login(http, token, next_page)
        assert answer.status_code == 303, answer.text
        yield http


def test_a_page_without_a_session_shows_the_login_form_and_a_token_opens_one(
    backend: Store, served: tuple[Served, UiSeed]
) -> None:
    server, seeded = served
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        page = http.get(f"/ui/events/{seeded.event_id}")
        assert page.status_code == 401 and 'action="/ui/login"' in page.text
        assert f'value="/ui/events/{seeded.event_id}"' in page.text  # back to that page after logging in
        assert form_login(http, "baton_admin_nonsense").status_code == 401
        refused = form_login(http, mint(backend, Role.WORKER))
        assert refused.status_code == 403 and "worker token" in refused.text
        assert SESSION_COOKIE not in http.cookies
        answer = form_login(http, mint(backend, Role.VIEWER), "//evil.example/x")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"  # never another site: home
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui/"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()  # plain HTTP on loopback; over TLS the cookie is Secure


def test_pages_show_the_event_and_escape_what_it_holds(backend: Store, served: tuple[Served, UiSeed]) -> None:
    server, seeded = served
    with login(server, mint(backend, Role.VIEWER)) as http:
        events = http.get("/ui/events")
        assert events.status_code == 200 and f'data-event="{seeded.event_id}"' in events.text
        page = http.get(f"/ui/events/{seeded.event_id}")
        assert page.status_code == 200
        for node in ("extract", "process", "summary"):
            assert f'data-node="{node}"' in page.text
        assert 'data-partition="a"' in page.text and 'data-partition="c"' in page.text
        assert HOSTILE not in page.text and "&lt;script&gt;" in page.text
        drawer = http.get(f"/ui/tasks/{seeded.done_task}")
        assert "department a extracted" in drawer.text and HOSTILE not in drawer.text
        failed = http.get(f"/ui/tasks/{seeded.failed_task}")
        assert 'data-outcome="failed"' in failed.text and "exit code 3" in failed.text
        assert "Rerun partition" not in failed.text  # a viewer is offered no action
        for path in ("/ui/workers", "/ui/graphs", f"/ui/graphs/{seeded.graph_id}",
                     f"/ui/events/{seeded.event_id}/timeline", f"/ui/events/{seeded.event_id}/waiting"):  # fmt: skip
            assert http.get(path).status_code == 200, path
        tagged = http.get(f"/ui/events/{seeded.event_id}/graph")
        again = http.get(f"/ui/events/{seeded.event_id}/graph", headers={"If-None-Match": tagged.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        table = f"/ui/events/{seeded.event_id}/partitions"
        first = http.get(table)
        assert first.status_code == 200 and 'data-partition="a"' in first.text
        tag = first.headers["etag"]
        assert http.get(table, headers={"If-None-Match": tag}).status_code == 304  # rendered once per version
        now = time.time()
        (c,) = [t for t in backend.tasks(seeded.event_id, node="extract") if t.partition == "c"]
        backend.report("ui-seed", [Report(c.id, c.attempt, Outcome.SUCCEEDED, now, now, result_json="null")])
        deadline = time.monotonic() + 5  # the server shares one look at the event for half a second
        while (moved := http.get(table, headers={"If-None-Match": tag})).status_code == 304:
            assert time.monotonic() < deadline, "the table never moved"
            time.sleep(0.1)
        assert moved.status_code == 200 and moved.headers["etag"] != tag


def test_actions_need_the_csrf_token_and_the_steer_role(backend: Store, served: tuple[Served, UiSeed]) -> None:
    server, seeded = served
    cancel = f"/ui/events/{seeded.event_id}/cancel"
    with login(server, mint(backend, Role.VIEWER)) as http:
        csrf = csrf_token(http.cookies[SESSION_COOKIE])
        assert http.post(cancel, headers={"X-CSRF-Token": csrf}).status_code == 403  # a viewer may not
    with login(server, mint(backend, Role.CLIENT)) as http:
        refused = http.post(cancel)
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        assert http.post(cancel, headers={"X-CSRF-Token": "0" * 32}).status_code == 403
        assert backend.event(seeded.event_id).cancel_requested is False
        csrf = csrf_token(http.cookies[SESSION_COOKIE])
        done = http.post(cancel, headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200 and backend.event(seeded.event_id).cancel_requested is True
        now = time.time()
        running = backend.tasks(seeded.event_id, state=TaskState.RUNNING)
        backend.report("ui-seed", [Report(t.id, t.attempt, Outcome.CANCELLED, now, now) for t in running])
        assert backend.event(seeded.event_id).finished_at is not None
        rerun = http.post(
            f"/ui/events/{seeded.event_id}/rerun", json={"partition": "b"}, headers={"X-CSRF-Token": csrf}
        )
        assert rerun.status_code == 200 and rerun.json()["reset"] >= 1, rerun.text


def test_a_session_ends_on_logout_and_with_its_token_and_opens_no_api_route(
    backend: Store, served: tuple[Served, UiSeed]
) -> None:
    server, _ = served
    with login(server, mint(backend, Role.ADMIN)) as http:
        assert http.get("/ui/workers").status_code == 200
        assert http.get("/api/v1/events").status_code == 401  # the API takes tokens, never the cookie
        csrf = csrf_token(http.cookies[SESSION_COOKIE])
        cookie = http.cookies[SESSION_COOKIE]
        assert http.post("/ui/logout", headers={"X-CSRF-Token": csrf}).status_code == 303
        http.cookies.set(SESSION_COOKIE, cookie, path="/ui/")  # a copy kept from before is refused too
        assert http.get("/ui/workers").status_code == 401
    token = mint(backend, Role.VIEWER, name="to revoke")
    with login(server, token) as http:
        assert http.get("/ui/workers").status_code == 200
        backend.revoke_token(next(t.id for t in backend.tokens() if t.name == "to revoke"))
        deadline = time.monotonic() + 10
        while http.get("/ui/workers").status_code == 200:  # refused within the token cache time (0.2 s)
            assert time.monotonic() < deadline, "a revoked token's session still works"


def test_a_token_limited_to_event_types_sees_no_page_of_another(backend: Store, served: tuple[Served, UiSeed]) -> None:
    server, seeded = served
    with login(server, mint(backend, Role.VIEWER, event_types=[UI_TYPE])) as http:
        listed = http.get("/ui/events").text
        assert f'data-event="{seeded.event_id}"' in listed and f'data-event="{seeded.hidden_event_id}"' not in listed
        for path in (f"/ui/events/{seeded.hidden_event_id}", f"/ui/events/{seeded.hidden_event_id}/partitions",
                     f"/ui/events/{seeded.hidden_event_id}/tasks?node=extract"):  # fmt: skip
            refused = http.get(path)
            assert refused.status_code in (403, 404) and HIDDEN_TYPE not in refused.text, path


def test_the_live_stream_speaks_at_most_once_a_second_however_fast_the_event_changes(
    backend: Store, served: tuple[Served, UiSeed]
) -> None:
    """A worker finishing a task every few milliseconds moves the event's version each time; the
    page hears of it at most once a second (and at once of the first change)."""
    server, _ = served
    graph = GraphBuilder("ui_churn", defaults={"retries": 0}).param(
        "parts", "list", default=[f"p{i}" for i in range(2000)]
    )
    record = backend.register_graph(graph.partitions(param="parts").python("work", "m:f").build())
    event_id = backend.submit(record.id, validate_params(backend.graph_of(record.id), {}))[0].id
    Controller(backend).expand()
    with login(server, mint(backend, Role.VIEWER)) as http, http.stream("GET", f"/ui/events/{event_id}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        changes = []
        deadline = time.monotonic() + 3.2
        churn = _Churn(backend, event_id)
        churn.start()
        try:
            for line in lines:
                if line.startswith("event: change"):
                    changes.append(time.monotonic())
                if time.monotonic() > deadline:
                    break
        finally:
            churn.stop()
    gaps = [b - a for a, b in itertools.pairwise(changes)]
    assert churn.moves >= 20, churn.moves  # the event really changed many times a second
    assert 2 <= len(changes) <= 5, changes
    assert all(gap >= 0.8 for gap in gaps), gaps  # sent a second apart; received with some jitter


def test_the_live_stream_is_quiet_at_the_pages_version_and_then_carries_what_moved_gzipped(
    backend: Store, served: tuple[Served, UiSeed]
) -> None:
    """The page says which version it shows (``since``): its stream stays quiet while that holds,
    then sends the header, graph and waiting panel of the new version in the message itself (a
    gzipped stream, flushed per message) and names the fragments to fetch."""
    server, seeded = served
    with login(server, mint(backend, Role.VIEWER)) as http:
        page = http.get(f"/ui/events/{seeded.event_id}").text
        found = re.search(r'data-live="/ui/events/\d+/live\?since=([0-9a-f]+)"', page)
        assert found, page[:500]
        live = f"/ui/events/{seeded.event_id}/live?since={found[1]}"
        quiet = httpx.Timeout(30.0, read=LOOK_S + 1.0)  # long enough for the stream to look again
        with http.stream("GET", live, timeout=quiet) as stream:
            assert stream.headers["content-encoding"] == "gzip"
            lines = (line for line in stream.iter_lines() if line)
            assert next(lines).startswith("retry:")
            with pytest.raises(httpx.ReadTimeout):
                next(lines)  # nothing moved: nothing said
        running = backend.tasks(seeded.event_id, node="extract", partition="c")[0]
        now = time.time()
        backend.report("ui-seed", [Report(running.id, running.attempt, Outcome.SUCCEEDED, now, now)])
        with http.stream("GET", live) as stream:
            data = next(line for line in stream.iter_lines() if line.startswith("data:"))
    news = json.loads(data.removeprefix("data:"))
    assert set(news["html"]) == {"header", "graph", "waiting"}
    assert news["changed"] == ["timeline", "partitions", "tasks"]
    assert 'data-count="succeeded">2 succeeded' in news["html"]["header"]
    assert "<svg" in news["html"]["graph"] and HOSTILE not in json.dumps(news)


class _Churn(threading.Thread):
    """Claims and finishes an event's tasks one by one, about a hundred a second."""

    def __init__(self, backend: Store, event_id: int) -> None:
        super().__init__(daemon=True)
        self.backend, self.event_id, self.moves = backend, event_id, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            got = self.backend.claim(
                ClaimRequest("ui-seed", {"slots": 1}, frozenset(), 1, 30.0, [], self.event_id)
            ).claims
            if not got:
                self.backend.heartbeat("ui-seed", [], 30.0)
                time.sleep(0.01)
                continue
            now = time.time()
            self.backend.report("ui-seed", [Report(got[0].task_id, got[0].attempt, Outcome.SUCCEEDED, now, now)])
            self.moves += 1
            self._stop_event.wait(0.005)  # about 100 a second: the event keeps changing all through the test

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
