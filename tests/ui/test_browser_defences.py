"""The UI's defences in the browser, through a real ``baton server`` (and headless chromium):

- login CSRF: a login form from another origin, or without the login CSRF token of the browser
  that fetched the form, is refused and opens no session; the real form still logs in, with
  script and without;
- every kind of answer under ``/ui/`` carries the Content-Security-Policy, X-Frame-Options,
  Referrer-Policy and X-Content-Type-Options headers, and no page breaks its policy in chromium
  (console and ``securitypolicyviolation`` events, on every page and the task drawer);
- characters that display as nothing (a right-to-left override in a partition, a parameter, a
  log) are shown as markers in pages, fragments and drawings, and never become markup.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from serving import Served, mint
from uilogin import form_login, login_token
from uiseed import UiSeed, seed_ui

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.model import Dependency, DepMode, Graph, Node, PythonAction
from baton.server.auth import SESSION_COOKIE
from baton.server.ui.drawing import graph_svg
from baton.server.ui.gantt import timeline_svg
from baton.server.ui.invisibles import INVISIBLE, reveal
from baton.server.ui.security import content_policy
from baton.server.ui.session import LOGIN_COOKIE, LOGIN_FIELD
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, PathStep, Report, Timeline, TimelineLane, WorkerInfo

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "\u202efdp.exe" reads as "exe.pdf"
MARKER = "\u27e8U+202E\u27e9"
SPOOF = f"{RLO}fdp.exe"
HEADERS = {
    "content-security-policy": content_policy(),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True)
class World:
    server: Served
    seeded: UiSeed
    bidi_event: int
    bidi_task: int
    viewer: str
    limited: str  # a viewer limited to another event type
    submitter: str  # a client: the graph page shows it the form that raises an event


def _seed_bidi(store: Store, graph_id: int) -> tuple[int, int]:
    """An event whose partition, parameter, key and log hold a right-to-left override, its
    extract task run (so the timeline's critical path names the partition), on a worker whose
    name holds one too."""
    event, _ = store.submit(graph_id, {"depts": [SPOOF], "note": f"pay {SPOOF}"}, key=f"key-{SPOOF}")
    Controller(store).expand()
    store.register_worker(WorkerInfo("bidi-worker", f"worker-{SPOOF}", "localhost", 2, {"slots": 4}))
    (claim,) = store.claim(ClaimRequest("bidi-worker", {"slots": 4}, frozenset(), 4, 30.0, [], event.id)).claims
    now = time.time()
    report = Report(claim.task_id, claim.attempt, Outcome.SUCCEEDED, now - 1, now, result_json='"ok"',
                    exit_code=0, stdout=f"wrote {SPOOF}\n")  # fmt: skip
    store.report("bidi-worker", [report])
    return event.id, claim.task_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One server for the module (what it answers here does not depend on the backend)."""
    folder = tmp_path_factory.mktemp("defences")
    store = open_store(f"sqlite:///{folder / 'baton.db'}")
    store.migrate()
    seeded = seed_ui(store)
    bidi_event, bidi_task = _seed_bidi(store, seeded.graph_id)
    viewer, limited = mint(store, Role.VIEWER), mint(store, Role.VIEWER, event_types=["elsewhere"])
    submitter = mint(store, Role.CLIENT)
    server = Served(store.url, folder).start()
    try:
        yield World(server, seeded, bidi_event, bidi_task, viewer, limited, submitter)
    finally:
        server.stop()
        store.close()


def _client(world: World) -> httpx.Client:
    return httpx.Client(base_url=world.server.url, timeout=30.0)


@contextlib.contextmanager
def _logged_in(world: World, token: str | None = None) -> Iterator[httpx.Client]:
    with _client(world) as http:
        answer = form_login(http, token or world.viewer)
        assert answer.status_code == 303, answer.text
        yield http


def _session_cookies(answer: httpx.Response) -> list[str]:
    return [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")]


# --- login CSRF -------------------------------------------------------------------------------


def test_a_login_form_from_another_origin_is_refused_and_opens_no_session(world: World) -> None:
    with _client(world) as http:
        field = login_token(http)  # even with this browser's own CSRF token
        form = {"token": world.viewer, "next": "/ui/events", LOGIN_FIELD: field}
        for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Referer": "http://evil.example/page"},
                        {"Origin": world.server.url.replace("http://", "https://")},  # another scheme
                        {"Origin": "http://evil.example", "Referer": world.server.url + "/ui/login"}):  # fmt: skip
            refused = http.post("/ui/login", data=form, headers=headers)
            assert refused.status_code == 403, (headers, refused.text[:300])
            assert "another site" in refused.text and 'action="/ui/login"' in refused.text, headers
            assert not _session_cookies(refused) and SESSION_COOKIE not in http.cookies, headers
        own = http.post("/ui/login", data=form, headers={"Origin": world.server.url})
        assert own.status_code == 303 and _session_cookies(own), own.text[:300]


def test_a_login_form_without_this_browsers_csrf_token_is_refused(world: World) -> None:
    with _client(world) as http:
        page = http.get("/ui/login")
        made = next(c for c in page.headers.get_list("set-cookie") if c.startswith(LOGIN_COOKIE + "="))
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui/login", "Max-Age="):
            assert attribute.lower() in made.lower(), made
        field = login_token(http)
        assert field in page.text  # the same pre-session cookie keeps its token
        for sent in (None, "", "0" * 32, field[:-1], field.upper()):
            form = {"token": world.viewer} if sent is None else {"token": world.viewer, LOGIN_FIELD: sent}
            refused = http.post("/ui/login", data=form)
            assert refused.status_code == 403 and "reload the login page" in refused.text, form
            assert not _session_cookies(refused)
        assert http.post("/ui/login", data={"token": "", LOGIN_FIELD: "x"}).status_code == 401  # nothing to open
    with _client(world) as other:  # another browser's token, without that browser's cookie
        refused = other.post("/ui/login", data={"token": world.viewer, LOGIN_FIELD: field})
        assert refused.status_code == 403 and not _session_cookies(refused)
        other.cookies.set(LOGIN_COOKIE, "a" * 43, path="/ui/login")  # a cookie of its own: still not the token's
        assert other.post("/ui/login", data={"token": world.viewer, LOGIN_FIELD: field}).status_code == 403
    with _client(world) as http:
        done = form_login(http, world.viewer)
        assert done.status_code == 303 and _session_cookies(done)
        spent = [c for c in done.headers.get_list("set-cookie") if c.startswith(LOGIN_COOKIE + "=")]
        assert spent and "max-age=0" in spent[0].lower(), spent  # the form is spent


def test_the_real_login_form_logs_in_with_and_without_script(world: World, browser: Browser) -> None:
    for script in (True, False):
        context = browser.new_context(java_script_enabled=script)
        try:
            page = context.new_page()
            page.goto(f"{world.server.url}/ui/login?next=/ui/workers")
            page.fill('input[name="token"]', world.viewer)
            page.click('button[type="submit"]')
            page.wait_for_url("**/ui/workers")
            expect(page.locator("table.workers")).to_be_visible()
            assert any(c["name"] == SESSION_COOKIE for c in context.cookies()), script
        finally:
            context.close()


# --- security headers -------------------------------------------------------------------------


def _answer(world: World, method: str, path: str, *, session: bool = True, token: str | None = None,
            **kwargs: Any) -> httpx.Response:  # fmt: skip
    with _logged_in(world, token) if session else _client(world) as http:
        return http.request(method, path, **kwargs)


def _stream(world: World) -> httpx.Response:
    with _logged_in(world) as http, http.stream("GET", f"/ui/events/{world.seeded.event_id}/live") as stream:
        return stream  # its head only: the stream never ends


def _not_modified(world: World) -> httpx.Response:
    with _logged_in(world) as http:
        path = f"/ui/events/{world.seeded.event_id}/graph"
        tag = http.get(path).headers["etag"]
        return http.get(path, headers={"If-None-Match": tag})


def _login_redirect(world: World) -> httpx.Response:
    with _client(world) as http:
        return form_login(http, world.viewer)


FRAGMENT, FIRST = {"X-Baton-Fragment": "1"}, {"attempt": "1"}
KINDS: dict[str, tuple[int, Callable[[World], httpx.Response]]] = {
    "root redirect": (303, lambda w: _answer(w, "GET", "/", session=False)),
    "login page": (200, lambda w: _answer(w, "GET", "/ui/login", session=False)),
    "login redirect": (303, _login_redirect),
    "login refused": (403, lambda w: _answer(w, "POST", "/ui/login", session=False, data={"token": "x"})),
    "overview": (200, lambda w: _answer(w, "GET", "/ui/")),
    "events page": (200, lambda w: _answer(w, "GET", "/ui/events")),
    "event page": (200, lambda w: _answer(w, "GET", f"/ui/events/{w.seeded.event_id}")),
    "fragment": (200, lambda w: _answer(w, "GET", f"/ui/events/{w.seeded.event_id}/timeline", headers=FRAGMENT)),
    "fragment 304": (304, _not_modified),
    "task drawer": (200, lambda w: _answer(w, "GET", f"/ui/tasks/{w.seeded.done_task}")),
    "log tail json": (200, lambda w: _answer(w, "GET", f"/ui/tasks/{w.seeded.done_task}/tail", params=FIRST)),
    "fragment problem": (404, lambda w: _answer(w, "GET", "/ui/events/999999/graph", headers=FRAGMENT)),
    "event stream": (200, _stream),
    "static script": (200, lambda w: _answer(w, "GET", "/ui/static/baton.js", session=False)),
    "static style": (200, lambda w: _answer(w, "GET", "/ui/static/baton.css", session=False)),
    "static 404": (404, lambda w: _answer(w, "GET", "/ui/static/nothing.js", session=False)),
    "401 page": (401, lambda w: _answer(w, "GET", "/ui/workers", session=False)),
    "403 page": (403, lambda w: _answer(w, "GET", f"/ui/events/{w.seeded.event_id}", token=w.limited)),
    "403 action": (403, lambda w: _answer(w, "POST", f"/ui/events/{w.seeded.event_id}/cancel")),
    "403 submit": (403, lambda w: _answer(w, "POST", f"/ui/graphs/{w.seeded.graph_id}/submit", json={})),
    "404 page": (404, lambda w: _answer(w, "GET", "/ui/events/999999")),
    "404 no route": (404, lambda w: _answer(w, "GET", "/ui/nowhere")),
    "422 page": (422, lambda w: _answer(w, "GET", "/ui/events", params={"window": "forever"})),
    "logout redirect": (303, lambda w: _logout(w)),
}


def _logout(world: World) -> httpx.Response:
    from baton.server.auth import csrf_token

    with _logged_in(world) as http:
        return http.post("/ui/logout", headers={"X-CSRF-Token": csrf_token(http.cookies[SESSION_COOKIE])})


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_ui_answer_carries_the_security_headers(world: World, kind: str) -> None:
    status, answer = KINDS[kind]
    response = answer(world)
    assert response.status_code == status, (kind, response.text[:300] if status != 200 else "")
    for name, value in HEADERS.items():
        assert response.headers.get_list(name) == [value], (kind, name, response.headers.get_list(name))


def test_the_api_is_left_alone(world: World) -> None:
    with world.server.client(world.viewer) as http:
        answer = http.get("/api/v1/events")
    assert answer.status_code == 200 and "content-security-policy" not in answer.headers


def test_the_policy_allows_no_inline_script_or_style_attribute() -> None:
    policy = dict(part.strip().split(" ", 1) for part in content_policy().split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'"
    assert "unsafe" not in content_policy() and "*" not in content_policy()
    assert re.fullmatch(r"'self'( 'sha256-[A-Za-z0-9+/]{43}=')+", policy["style-src"]), policy["style-src"]
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"


# --- the policy in chromium -------------------------------------------------------------------

LISTEN = """() => document.addEventListener("securitypolicyviolation", (e) => window.__baton_violation(
  {directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, page: location.pathname}))"""


class Violations:
    """What chromium reports against the policy: console messages and ``securitypolicyviolation``
    events (one listener per document, added before any of the page's own script runs)."""

    def __init__(self, page: Page) -> None:
        self.page, self.events, self.console = page, list[dict[str, str]](), list[str]()
        page.expose_function("__baton_violation", self._violation)
        page.add_init_script(f"({LISTEN})()")
        page.on("console", self._console)

    def _violation(self, report: dict[str, str]) -> None:
        self.events.append(report)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text} ({self.page.url})")

    def settle(self) -> None:
        """Everything the page reported so far has arrived (CDP keeps messages in order, and a
        document's violations are reported before script that runs after them returns)."""
        self.page.evaluate("() => new Promise((done) => setTimeout(done, 0))")


def _visit(page: Page, url: str, shown: str) -> None:
    page.goto(url)
    expect(page.locator(shown).first).to_be_visible()
    page.wait_for_load_state("networkidle")


def test_no_page_of_the_ui_breaks_its_content_security_policy(world: World, page: Page) -> None:
    seen = Violations(page)
    base, seeded = world.server.url, world.seeded
    _visit(page, f"{base}/ui/login", 'form[action="/ui/login"]')
    page.fill('input[name="token"]', world.viewer)
    page.click('button[type="submit"]')
    page.wait_for_url("**/ui/")  # home: the overview
    expect(page.locator(f'section[data-section="running"] tr[data-event="{seeded.event_id}"]')).to_be_visible()
    page.wait_for_load_state("networkidle")
    _visit(page, f"{base}/ui/events", f'tr[data-event="{seeded.event_id}"]')
    _visit(page, f"{base}/ui/events/{seeded.event_id}", "#f-graph svg.baton-graph")
    expect(page.locator("#f-timeline svg.baton-timeline")).to_be_visible()
    expect(page.locator('#f-partitions tr[data-partition="a"]')).to_be_visible()
    # the drawings' own <style> applies (allowed by its digest): a succeeded segment is green
    segment = page.locator("#f-graph .seg-succeeded").first
    assert segment.evaluate("e => getComputedStyle(e).fill") == "rgb(30, 142, 62)"
    page.locator('tr[data-partition="a"] td[data-state="succeeded"] a').first.click()
    expect(page.locator('#drawer .attempt[data-outcome="succeeded"]')).to_be_visible()
    expect(page.locator("#drawer pre.log").first).to_contain_text("department a extracted")
    page.locator("#drawer [data-action=close-drawer]").click()
    expect(page.locator("#drawer")).to_be_hidden()
    _visit(page, f"{base}/ui/events/{seeded.event_id}?node=extract", "#f-tasks table.tasks")
    _visit(page, f"{base}/ui/events/{world.bidi_event}?task={world.bidi_task}", "#inline-drawer .drawer")
    _visit(page, f"{base}/ui/workers", "table.workers")
    _visit(page, f"{base}/ui/graphs", "table.graphs")
    _visit(page, f"{base}/ui/graphs/{seeded.graph_id}", "svg.baton-graph")
    _visit(page, f"{base}/ui/schedules", "table.schedules")
    _visit(page, f"{base}/ui/backfills", "table.backfills")
    page.goto(f"{base}/ui/login?next=/ui/graphs/{seeded.graph_id}#token={world.submitter}")
    expect(page.locator("form.raise")).to_be_visible()  # the form that raises an event, and its problems
    page.locator('[data-field="depts"]').fill("[1,")
    page.locator('form.raise button[type="submit"]').click()
    expect(page.locator('.field[data-param="depts"] .field-problem')).to_contain_text("not valid JSON")
    _visit(page, f"{base}/ui/events/999999", "section.error")
    _visit(page, f"{base}/ui/login", 'form[action="/ui/login"]')
    seen.settle()
    expected = (  # the 404 page's own status; the form's refused post
        "status of 404 (Not Found) (" + f"{base}/ui/events/999999)",
        "status of 422 (Unprocessable Entity) (" + f"{base}/ui/graphs/{seeded.graph_id})",
    )
    assert seen.events == [] and [m for m in seen.console if not m.endswith(expected)] == [], seen.console

    # and the watch would have seen one: a style attribute, which the policy refuses
    page.evaluate("() => { document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">x</p>') }")
    page.wait_for_function("() => true")
    deadline = time.monotonic() + 10
    while not seen.events:
        assert time.monotonic() < deadline, "chromium reported no violation of a style attribute"
        seen.settle()
    assert seen.events[0]["directive"].startswith("style-src"), seen.events


# --- invisible characters ---------------------------------------------------------------------


def _without_data_attributes(text: str) -> str:
    """The page less the attributes that hold names as data (``data-partition``, ``data-node``…)."""
    return re.sub(r'data-[a-z-]+="[^"]*"', "", text)


def test_invisible_characters_show_as_markers_in_pages_fragments_and_drawings(world: World) -> None:
    with _logged_in(world) as http:
        event = f"/ui/events/{world.bidi_event}"
        shown = {
            "event page": http.get(event).text,
            "partitions": http.get(f"{event}/partitions").text,
            "timeline": http.get(f"{event}/timeline").text,
            "header": http.get(f"{event}/header").text,
            "events": http.get("/ui/events").text,
            "overview": http.get("/ui/").text,
            "workers": http.get("/ui/workers").text,
            "drawer": http.get(f"/ui/tasks/{world.bidi_task}").text,
            "log": http.get(f"/ui/tasks/{world.bidi_task}/log", params={"attempt": "1"}).text,
        }
        tail = http.get(f"/ui/tasks/{world.bidi_task}/tail", params={"attempt": "1"}).json()
    for name, text in shown.items():
        assert MARKER in text, name
        assert RLO not in _without_data_attributes(text), name
    page = shown["event page"]
    assert f"<th>{MARKER}fdp.exe</th>" in page  # the partition's row
    assert f"pay {MARKER}fdp.exe" in page  # the parameter
    assert f'data-partition="{SPOOF}"' in page  # the identifier the script selects by, as it is
    assert f"<title>extract[{MARKER}fdp.exe]: queued" in shown["timeline"], shown["timeline"][-3000:]
    assert f"key-{MARKER}fdp.exe" in shown["events"] and f"worker-{MARKER}fdp.exe" in shown["workers"]
    assert f"key-{MARKER}fdp.exe" in shown["overview"] and f"worker-{MARKER}fdp.exe" in shown["overview"]
    assert f"<h2>extract[{MARKER}fdp.exe]" in shown["drawer"] and f"wrote {MARKER}fdp.exe" in shown["drawer"]
    assert tail["text"] == f"wrote {MARKER}fdp.exe\n"


def test_the_drawings_show_invisible_characters_as_markers_and_never_markup() -> None:
    """Names the graph language refuses can still reach the drawing functions (a graph built in
    code): each text shows the marker; data attributes hold the name as it is, escaped."""
    evil = f"<b>{RLO}x</b>"
    action = PythonAction("m:f")
    first = Node(f"a{RLO}b", action, partitioned=True, description=f"see {evil}")
    second = Node("c", action, partitioned=True, after=(Dependency(f"a{RLO}b", DepMode.SAME),))
    svg = graph_svg(Graph(f"g{RLO}h", "t", (first, second)), {})
    assert f'<text class="name" x="10" y="19">a{MARKER}b</text>' in svg
    assert f"<title>a{MARKER}b: see &lt;b&gt;{MARKER}x&lt;/b&gt;</title>" in svg
    assert f'aria-label="Graph g{MARKER}h: 2 nodes, 1 edges"' in svg and f'data-node="a{RLO}b"' in svg
    assert "<b>" not in svg
    lane = TimelineLane(f"n{RLO}m", 1, 100.0, 100.5, 101.0, 0.5, 0.5, (1,), (1,), (1,))
    path = [PathStep(1, f"n{RLO}m", evil, "succeeded", 100.0, 100.5, 101.0)]
    timeline = timeline_svg(Timeline(1, 100.0, 101.0, 1.0, (lane,)), path)
    assert f">n{MARKER}m</text>" in timeline and f"n{MARKER}m[&lt;b&gt;{MARKER}x&lt;/b&gt;]: queued" in timeline
    assert RLO not in _without_data_attributes(timeline) and "<b>" not in timeline


def test_every_format_character_is_revealed() -> None:
    """The ranges in baton.server.ui.invisibles cover Unicode's format characters (category Cf) as this
    Python knows them, the bidirectional controls among them."""
    missed = [f"U+{c:04X}" for c in range(sys.maxunicode + 1)
              if unicodedata.category(chr(c)) == "Cf" and not INVISIBLE.fullmatch(chr(c))]  # fmt: skip
    assert not missed, missed
    bidi = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
    assert all(reveal(chr(c)) == f"\u27e8U+{c:04X}\u27e9" for c in bidi)
    assert reveal("plain <b> & é") == "plain <b> & é" and reveal("\u200b\u3164") == "⟨U+200B⟩⟨U+3164⟩"


def test_a_screenshot_of_the_event_page(world: World, page: Page, screenshot_dir: Path) -> None:
    """For a person to look at: the event page with its drawings styled under the policy."""
    page.goto(f"{world.server.url}/ui/login?next=/ui/events/{world.bidi_event}#token={world.viewer}")
    page.wait_for_url(f"**/ui/events/{world.bidi_event}")
    expect(page.locator("#f-timeline svg.baton-timeline")).to_be_visible()
    expect(page.locator("#f-partitions")).to_contain_text(f"{MARKER}fdp.exe")
    page.screenshot(path=screenshot_dir / "event-under-csp.png", full_page=True)
