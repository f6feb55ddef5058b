"""The front door under hostile traffic, against a real ``baton server`` on loopback: what a
request without a valid token, a connection that never speaks, a maximal body or an input built
to grow the answer costs the server (docs/deployment.md, "Exposure", has the figures).

SQLite only: what is measured here is the HTTP layer; the store is the same on both backends.

The figures in wall time (an answer within 100 ms, a p99, a client served at once) are those of
the server on a machine that does nothing else (docs/deployment.md): those tests are marked
``alone``, and no other test of the run runs beside their bodies (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiseed import PROBLEM, raw
from serving import Served, mint

from baton.access import Role
from baton.server.app import create_app
from baton.server.bodies import SEGMENT_BYTES, TooManyValues, json_values
from baton.server.problems import MAX_PROBLEM_BYTES
from baton.settings import Settings
from baton.store import open_store
from baton.store.protocol import Store

BIG = 64 * 1024 * 1024  # the body size an attacker announces
ANSWER_S = 0.1  # an unauthenticated body is answered within this
RSS_RISE_MB = 20
P99_S = 0.5  # the client's p99 while maximal bodies arrive (typically 50 ms; a lone 0.3 s stall was seen)
QUIET_FACTOR = 4  # ... or this many times the client's p99 with no body arriving, on a machine busy elsewhere
MEMORY_FACTOR = 6  # peak resident size above idle, in body_budget_bytes (docs/deployment.md)


def peak_rss_mb(pid: int) -> float:
    return _status(pid, "VmHWM")


def rss_mb(pid: int) -> float:
    return _status(pid, "VmRSS")


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def reset_peak(pid: int) -> None:
    """Start the peak resident size (VmHWM) again from the current one (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.fixture
def store(tmp_path: Path, sqlite_template: Path) -> Iterator[Store]:
    import shutil

    shutil.copyfile(sqlite_template, tmp_path / "baton.db")
    opened = open_store(f"sqlite:///{tmp_path / 'baton.db'}")
    yield opened
    opened.close()


def _serve(store: Store, tmp_path: Path, **env: str) -> Served:
    return Served(store.url, tmp_path, env={f"BATON_{k.upper()}": v for k, v in env.items()}).start()


def _post_routes(store: Store) -> list[tuple[str, str]]:
    """Every POST route of the app, with the action it needs."""
    schema = create_app(store, Settings.model_construct()).openapi()
    found = [(path, op["x-baton-action"]) for path, ops in schema["paths"].items() for m, op in ops.items()
             if m == "post"]  # fmt: skip
    found += [("/ui/login", "public"), ("/ui/logout", "read"), ("/ui/events/1/cancel", "steer"),
              ("/ui/events/1/rerun", "steer")]  # fmt: skip
    return found


def _announce(port: int, path: str, headers: dict[str, str], length: int, send: int) -> tuple[int, float, bytes]:
    """Send a request's head announcing ``length`` bytes of body and ``send`` of them; the status
    and how long after the head it came, and the answer's head and body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}",
             "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        started = time.perf_counter()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered and closed already
            s.sendall(b" " * send)
        answer = b""
        while b"\r\n\r\n" not in answer:
            got = s.recv(65536)
            if not got:
                break
            answer += got
        took = time.perf_counter() - started
        while True:  # the rest (the server closes: it never read the body)
            got = s.recv(65536)
            if not got:
                break
            answer += got
    status = int(answer.split(b" ", 2)[1])
    return status, took, answer


@pytest.mark.alone
def test_a_body_without_a_valid_token_is_answered_unread(store: Store, tmp_path: Path) -> None:
    """Each POST route, told 64 MiB follow and sent 16 KiB of them, answers 401 (the login form,
    the one public POST, 413: its cap is 4 KiB) at once: the server never waited for the body."""
    server = _serve(store, tmp_path)
    try:
        pid = server.proc.pid  # type: ignore[union-attr]
        with server.client() as http:
            assert http.get("/healthz").status_code == 200
        reset_peak(pid)
        before = rss_mb(pid)
        slowest: dict[str, float] = {}
        for path, action in _post_routes(store):
            for headers in ({}, {"Authorization": "Bearer baton_admin_notatoken"}, {"Cookie": "baton_session=forged"}):
                status, took, answer = _announce(server.port, path, headers, BIG, 16 * 1024)
                wanted = 413 if action == "public" else 401
                assert status == wanted, (path, headers, answer[:400])
                assert b"connection: close" in answer.lower(), answer[:400]
                slowest[path] = max(slowest.get(path, 0.0), took)
        rise = peak_rss_mb(pid) - before
        print(f"slowest answer {max(slowest.values()) * 1000:.1f} ms; peak RSS rise {rise:.1f} MB")
        assert max(slowest.values()) < ANSWER_S, slowest
        assert rise < RSS_RISE_MB
        with server.client() as http:  # and whole bodies sent at full speed change nothing either
            for path, action in _post_routes(store):
                if action != "public":
                    answered = http.post(path, content=b" " * (BIG // 4), headers={"Content-Type": "application/json"})
                    assert answered.status_code == 401
        assert peak_rss_mb(pid) - before < RSS_RISE_MB
    finally:
        server.stop()


def _report_batch(cap: int) -> bytes:
    """A worker's batch of reports as large as ``cap`` allows, each with the most output a task
    may send (two streams of 256 KiB), for attempts the store does not know (answered stale)."""
    out = "x" * (256 * 1024 - 100)
    reports: list[dict[str, Any]] = []
    while True:
        reports.append({"task_id": 10**9 + len(reports), "attempt": 1, "outcome": "succeeded", "started_at": 1.0,
                        "finished_at": 2.0, "stdout": out, "stderr": out})  # fmt: skip
        if len(json.dumps({"worker_id": "w", "reports": reports})) > cap - 4096:
            reports.pop()
            return json.dumps({"worker_id": "w", "reports": reports}).encode()


@pytest.mark.alone
def test_maximal_bodies_stay_within_the_memory_bound_and_others_are_served(store: Store, tmp_path: Path) -> None:
    """Three workers send maximal batches, three times each, at once (from curl processes);
    meanwhile a client reads events. The server's peak resident size rises by at most 6 x
    body_budget_bytes (docs/deployment.md), and the client is served throughout: its p99 stays
    under 0.5 s (about 50 ms as a rule; single stalls of 0.3 s were seen while a 15.5 MiB body is
    parsed), or, where the machine is busy with other work, within 4 times its p99 just before
    with no body arriving (the machine's own load is not the bodies')."""
    settings = Settings.model_construct()
    worker, admin = mint(store, Role.WORKER), mint(store, Role.ADMIN)
    body = _report_batch(settings.max_worker_request_bytes)
    (tmp_path / "batch.json").write_bytes(body)
    server = _serve(store, tmp_path)
    try:
        pid = server.proc.pid  # type: ignore[union-attr]
        with server.client(admin) as http:
            http.get("/api/v1/events")
            warm = http.post("/worker/v1/report", json={"worker_id": "w", "reports": []},
                             headers={"Authorization": f"Bearer {worker}"})  # fmt: skip
            assert warm.status_code == 200
        with server.client(admin) as http:
            quiet = []
            for _ in range(100):
                started = time.perf_counter()
                assert http.get("/api/v1/events", params={"limit": 5}).status_code == 200
                quiet.append(time.perf_counter() - started)
        quiet_p99 = statistics.quantiles(quiet, n=100, method="inclusive")[98]
        reset_peak(pid)
        before = rss_mb(pid)
        answers: list[str] = []

        def send_three() -> None:
            for _ in range(3):
                done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary",
                                       f"@{tmp_path / 'batch.json'}", "-H", f"Authorization: Bearer {worker}", "-H",
                                       "Content-Type: application/json", f"{server.url}/worker/v1/report"],
                                      capture_output=True, text=True, timeout=120)  # fmt: skip
                answers.append(done.stdout)

        senders = [threading.Thread(target=send_three) for _ in range(3)]
        latencies: list[float] = []
        with server.client(admin) as http:
            for sender in senders:
                sender.start()
            while any(s.is_alive() for s in senders):
                started = time.perf_counter()
                assert http.get("/api/v1/events", params={"limit": 5}).status_code == 200
                latencies.append(time.perf_counter() - started)
        for sender in senders:
            sender.join()
        rise = peak_rss_mb(pid) - before
        p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98] if len(latencies) >= 2 else latencies[0]
        print(f"{len(body) / 2**20:.1f} MiB x 9; client: {len(latencies)} requests, p50 "
              f"{statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max "
              f"{max(latencies) * 1000:.1f} ms (p99 {quiet_p99 * 1000:.1f} ms with no body); "
              f"peak RSS rise {rise:.0f} MB")  # fmt: skip
        assert answers == ["200"] * 9
        assert rise < MEMORY_FACTOR * settings.body_budget_bytes / 2**20
        assert p99 < max(P99_S, QUIET_FACTOR * quiet_p99)
    finally:
        server.stop()


@pytest.mark.alone
def test_idle_connections_neither_exhaust_the_server_nor_stay(store: Store, tmp_path: Path) -> None:
    """2,000 connections that never send a byte: a client is still served at once; past the cap
    (100 here), the oldest silent ones are closed to make room, and said so in the log; every
    one is closed once the head deadline passes."""
    admin = mint(store, Role.ADMIN)
    server = _serve(store, tmp_path, max_connections="100", header_timeout_s="1")
    silent: list[socket.socket] = []
    try:
        for _ in range(2000):
            silent.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        with server.client(admin) as http:
            started = time.perf_counter()
            assert http.get("/api/v1/events").status_code == 200
            assert time.perf_counter() - started < 1.0
        closed = _closed(silent, deadline_s=10)
        assert closed == len(silent), f"{closed} of {len(silent)} silent connections closed"
        log = server.log.read_text()
        assert "the cap of 100 open connections was reached" in log, log[-2000:]
        with server.client(admin) as http:
            scraped = http.get("/metrics").text
        closed_by = {reason: _sample(scraped, f'baton_http_connections_closed_total{{reason="{reason}"}}')
                     for reason in ("evicted", "timed_out")}  # fmt: skip
        assert closed_by["evicted"] >= 1900 and closed_by["timed_out"] >= 1, closed_by
        assert _sample(scraped, "baton_http_connections") <= 100
    finally:
        for s in silent:
            s.close()
        server.stop()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def _closed(sockets: list[socket.socket], deadline_s: float) -> int:
    """How many of ``sockets`` the server has closed, waiting for all of them up to the deadline."""
    deadline = time.monotonic() + deadline_s
    closed: set[int] = set()
    while time.monotonic() < deadline and len(closed) < len(sockets):
        for i, s in enumerate(sockets):
            if i in closed:
                continue
            s.settimeout(0.0)
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed.add(i)
        time.sleep(0.05)
    return len(closed)


def test_a_slow_head_is_cut_off(store: Store, tmp_path: Path) -> None:
    """A head sent a byte at a time (slowloris) is closed at the head deadline, not served."""
    server = _serve(store, tmp_path, header_timeout_s="0.5")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            started = time.monotonic()
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.02)
            s.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""
            assert time.monotonic() - started < 3.0
    finally:
        server.stop()


def test_error_answers_are_bounded_whatever_the_input(store: Store, tmp_path: Path) -> None:
    """A request with 100,000 wrong items, or names of 100 KB, or a lone surrogate, gets a
    problem of at most MAX_PROBLEM_BYTES that says how many problems it left out."""
    worker, admin = mint(store, Role.WORKER), mint(store, Role.ADMIN)
    server = _serve(store, tmp_path)
    try:
        with server.client(worker) as http:
            many = http.post("/worker/v1/heartbeat", json={"worker_id": "w", "running": [["x", "y"]] * 60_000})
        with server.client(admin) as http:
            long_names = http.post("/api/v1/events", json={"type": "t" * 100_000, "params": {"p" * 100_000: 1}})
            query = http.get("/api/v1/events", params={f"x{i}" * 20: "1" for i in range(100)})
        surrogate = raw(server.url, "POST", "/api/v1/events", b'{"type": "\\ud800", "params": {"\\udfff": 1}}',
                        {"Authorization": f"Bearer {admin}", "Content-Type": "application/json"})  # fmt: skip
        for answer in (many, long_names, query):
            assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM, answer.text[:300]
            assert len(answer.content) <= MAX_PROBLEM_BYTES, len(answer.content)
            assert answer.json()["request_id"] == answer.headers["x-request-id"]
        assert many.json()["more_errors"] >= 100_000  # two per pair
        assert surrogate.status == 422, surrogate.body[:300]
        surrogate.body.decode("utf-8")  # whatever it echoes, UTF-8 can carry
    finally:
        server.stop()


def test_an_unexpected_error_is_logged_with_its_traceback_and_request_id(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """In-process, with a store that fails as no store should: the 500 carries a request id, and
    the log has the same id and the traceback."""

    class Broken:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def events(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

    admin = mint(store, Role.ADMIN)
    app = create_app(Broken(), Settings.model_construct())  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR, logger="baton.api")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/api/v1/events", headers={"Authorization": f"Bearer {admin}"})

    import anyio

    answer = anyio.run(ask)
    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM
    request_id = answer.json()["request_id"]
    assert request_id == answer.headers["x-request-id"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None, [r.getMessage() for r in caplog.records]
    assert "RuntimeError: a bug" in (logged[0].exc_text or logging.Formatter().formatException(logged[0].exc_info))


def test_every_method_of_a_path_is_allowed_and_bounds_are_declared(store: Store, tmp_path: Path) -> None:
    admin = mint(store, Role.ADMIN)
    server = _serve(store, tmp_path)
    try:
        with server.client(admin) as http:
            refused = http.request("PUT", "/api/v1/events")
            assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"
            schema = http.get("/openapi.json").json()
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                body = operation.get("requestBody")
                if body is not None:
                    assert body["x-baton-max-bytes"] > 0 and body["x-baton-max-json-values"] > 0, (path, method)
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                        assert parameter["schema"].get("maximum") == 2**62 or "pattern" in parameter["schema"], path
        claim = schema["paths"]["/worker/v1/claim"]["post"]["requestBody"]
        assert claim["x-baton-max-bytes"] == Settings.model_construct().max_worker_request_bytes
    finally:
        server.stop()


def test_json_values_bound_every_text_whatever_its_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count is an upper bound of the values json.loads builds, also when escapes and
    strings straddle the segments it is counted in."""
    import baton.server.bodies as bodies

    texts = [{"a": [1, 2, {"b": "c,[{"}], "d\\\"e": "\\\\", "f": ["\\\"", "x" * 50]}, [[], [[]], {}],
             "plain", ['\\', '"', "\\\\\""] * 20]  # fmt: skip

    def values(v: Any) -> int:
        if isinstance(v, dict):
            return 1 + sum(1 + values(x) for x in v.values())
        if isinstance(v, list):
            return 1 + sum(values(x) for x in v)
        return 1

    for segment in (SEGMENT_BYTES, 1, 2, 3, 7):
        monkeypatch.setattr(bodies, "SEGMENT_BYTES", segment)
        for text in texts:
            encoded = json.dumps(text).encode()
            assert json_values(encoded, 10**6) >= values(json.loads(encoded)), (segment, encoded)
    with pytest.raises(TooManyValues):
        json_values(b"[" + b"[]," * 1000 + b"[]]", 1000)
    assert json_values(b'["' + b"," * 10_000 + b'"]', 10) <= 3  # commas in a string are no values


def test_the_file_limit_is_raised_to_fit_the_connections() -> None:
    """In a process started with a soft limit of 256 files: raised to fit 1,000 connections
    (within the hard limit), and a warning when the hard limit leaves less room."""
    script = (
        "import resource\n"
        "from baton.server.connections import raise_file_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1100))\n"
        "room = raise_file_limit(1000)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], room)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    soft, room = map(int, done.stdout.split())
    assert soft == 1100 and room == 1100 - 256  # the hard limit binds: room for 844, and said so
    assert "leaves room for 844 connections" in done.stderr


def test_the_body_budget_makes_bodies_wait_their_turn_and_is_never_lost() -> None:
    """A share that does not fit waits until one is given back; a request cancelled while it
    holds a share, or while it waits for one, gives back all it took."""
    import anyio

    from baton.server.bodies import BodyBudget

    class Stalled:  # a request whose body never comes
        scope = {"headers": [(b"content-length", b"600")]}

        async def stream(self) -> Any:
            await anyio.sleep_forever()
            yield b""

    async def scenario() -> None:
        budget = BodyBudget(1000)
        await budget._take(600)
        order: list[str] = []

        async def second() -> None:
            await budget._take(600)
            order.append("second")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(second)
            await anyio.wait_all_tasks_blocked()
            assert order == [] and budget.used == 600  # it waits: 1,200 would not fit
            budget._give(600)
        assert order == ["second"] and budget.used == 600
        budget._give(600)

        async def hold() -> None:
            async with budget.reading(Stalled(), 1000, 60.0):  # type: ignore[arg-type]
                raise AssertionError("the body never comes")

        async def cancelled(blocked: Any) -> None:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(blocked)
                await anyio.wait_all_tasks_blocked()
                tasks.cancel_scope.cancel()

        await cancelled(hold)  # cancelled holding a share, its body half read
        assert budget.used == 0
        await budget._take(1000)
        await cancelled(lambda: budget._take(10))  # cancelled waiting for a share
        budget._give(1000)
        assert budget.used == 0 and not budget._waiting

    anyio.run(scenario)
