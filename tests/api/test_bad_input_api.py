"""Bad input by hand, against a real ``baton server`` on loopback (both backends): every request
below is answered a 4xx problem naming what was wrong — never a 500, never a hang (each request
has a deadline) — and afterwards the server still takes a normal submit and has lost nothing it
accepted.

Each case is a row: what is sent, the status expected, and a word the problem's ``detail`` must
hold. Decisions the rows pin down:

- an unknown query parameter is refused (422), like an unknown body field: a misspelt filter
  must not silently list everything;
- a body that is not JSON is 400, JSON of the wrong shape 422, a body sent as another media
  type 415;
- an id out of range (0, negative, past 2**62) is 404, like any unknown id; a path id that is
  not an integer at all is 422;
- a number too big for its field is 422; inside a free-form object parameter it is kept exactly.

A few inputs never reach the app: uvicorn's HTTP parser refuses a NUL or a raw non-ASCII byte
in a header line, and an oversize header block, with a bare 400 of its own (no problem body).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiseed import DEMO, PROBLEM, Seeded, raw, seed
from serving import Served, mint

from baton.access import Role
from baton.store.protocol import Store

API_CAP = 1024 * 1024  # the server's cap on an /api/v1 body, set small for the test
WORKER_CAP = 1024 * 1024  # the least the settings allow for /worker/v1


@pytest.fixture
def world(backend: Store, tmp_path: Path) -> Iterator[tuple[Served, Seeded, str, str]]:
    seeded = seed(backend)
    env = {"BATON_MAX_REQUEST_BYTES": str(API_CAP), "BATON_MAX_WORKER_REQUEST_BYTES": str(WORKER_CAP)}
    server = Served(backend.url, tmp_path, env=env).start()
    try:
        yield server, seeded, mint(backend, Role.ADMIN), mint(backend, Role.WORKER)
    finally:
        server.stop()


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | list[bytes] | None = None
    status: int | tuple[int, ...] = 422
    says: str = ""  # a word the problem's detail must hold (case-insensitive)
    headers: dict[str, str] = field(default_factory=dict)
    json_type: str | None = "application/json"
    token: str = "admin"  # or "worker"
    bare: bool = False  # answered by uvicorn's parser, not the app: no problem body
    hold_body: bool = False  # announce the body's length, send none of it (see raw)
    reset_ok: bool = False  # refused so early the connection may be reset before the answer is read


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _submit(params: dict[str, Any] | None = None, **fields: Any) -> bytes:
    return _json({"type": DEMO, "params": params or {}, **fields})


def _over(cap: int) -> list[bytes]:
    """Chunks that pass ``cap`` with the last one, and no end: the server must answer then."""
    chunk = 64 * 1024
    return [b" " * chunk] * (cap // chunk + 1)


def _nested(depth: int) -> bytes:
    return b'{"type": "api_demo", "params": {"extra": {"x": ' + b"[" * depth + b"]" * depth + b"}}}"


def cases(s: Seeded) -> list[Case]:
    event, task, attempt = s.events[DEMO], s.tasks[DEMO], s.attempts[DEMO]
    big = 2**70
    return [
        # --- bodies over the cap: declared, and streamed without a length -------------------
        Case(
            "oversize body with Content-Length",
            "POST",
            "/api/v1/events",
            b" " * (API_CAP + 1),
            413,
            "cap",
            hold_body=True,
        ),
        Case(
            "oversize worker body with Content-Length",
            "POST",
            "/worker/v1/claim",
            b" " * (WORKER_CAP + 1),
            413,
            "cap",
            token="worker",
            hold_body=True,
        ),
        Case("oversize body, chunked", "POST", "/api/v1/events", _over(API_CAP), 413, "cap"),
        Case(
            "oversize worker body, chunked", "POST", "/worker/v1/report", _over(WORKER_CAP), 413, "cap", token="worker"
        ),
        Case("oversize graph", "POST", "/api/v1/graphs", _json({"source": "x" * API_CAP}), 413, "cap", hold_body=True),
        Case("a chunked body under the cap", "POST", "/api/v1/events", [_submit(), b""], 201),
        # --- not JSON, or not a JSON object ------------------------------------------------
        Case("malformed JSON", "POST", "/api/v1/events", b'{"type": ', 400, "JSON"),
        Case("malformed JSON for a worker", "POST", "/worker/v1/claim", b"{,}", 400, "JSON", token="worker"),
        Case("JSON of the wrong shape", "POST", "/api/v1/events", b"[1, 2]", 422, "body"),
        Case("empty body", "POST", "/api/v1/events", b"", 422, "body"),
        Case("not UTF-8", "POST", "/api/v1/events", b'{"type": "\xff\xfe"}', 400, "UTF-8"),
        Case("text/plain", "POST", "/api/v1/events", _submit(), 415, "application/json", json_type="text/plain"),
        Case(
            "form data",
            "POST",
            "/api/v1/events",
            b"type=api_demo",
            415,
            "application/json",
            json_type="application/x-www-form-urlencoded",
        ),
        Case("nested 100k deep", "POST", "/api/v1/events", _nested(100_000), 400, "nested"),
        Case(
            "nested 100k deep for a worker",
            "POST",
            "/worker/v1/report",
            b'{"worker_id": "w", "reports": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            413,
            "JSON values",  # more containers than a worker's batch may hold, refused before parsing
            token="worker",
        ),
        Case(
            "an integer of 5,000 digits",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"extra": {"x": ' + b"9" * 5000 + b"}}}",
            400,
            "digits",
        ),
        Case("unknown body field", "POST", "/api/v1/events", _json({"type": DEMO, "tpye": DEMO}), 422, "tpye"),
        Case("a key twice", "POST", "/api/v1/events", b'{"type": "api_demo", "type": "api_other"}', 400, "'type'"),
        Case(
            "a key twice, nested",
            "POST",
            "/worker/v1/heartbeat",
            b'{"worker_id": "w", "running": [], "worker_id": "v"}',
            400,
            "twice",
            token="worker",
        ),
        Case(
            "no Content-Type",
            "POST",
            "/api/v1/events",
            _submit(),
            415,
            "Content-Type: application/json",
            json_type=None,
        ),
        Case(
            "a lone surrogate in a parameter's name",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"\\ud800x": 1}}',
            422,
            "ud800",
        ),
        Case(
            "too many values for an API body",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"extra": {"x": [' + b"0," * 300_000 + b"0]}}}",
            413,
            "JSON values",
        ),
        Case(
            "an integral number written with a fraction",
            "POST",
            "/worker/v1/heartbeat",
            b'{"worker_id": "w", "running": [[89670.0, 1.0]]}',
            200,
            token="worker",
        ),
        # --- numbers --------------------------------------------------------------------------
        Case("graph_version 2**70", "POST", "/api/v1/events", _submit(graph_version=big), 422, "graph_version"),
        Case("graph_version true", "POST", "/api/v1/events", _submit(graph_version=True), 422, "graph_version"),
        Case("graph_version as text", "POST", "/api/v1/events", _submit(graph_version="1"), 422, "graph_version"),
        Case("a string parameter given 2**70", "POST", "/api/v1/events", _submit({"note": big}), 422, "note"),
        Case(
            "NaN in a parameter",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"extra": {"x": NaN}}}',
            422,
            "finite",
        ),
        Case(
            "Infinity in a partition list",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"depts": [Infinity]}}',
            422,
            "depts",
        ),
        Case(
            "-Infinity as graph_version",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "graph_version": -Infinity}',
            422,
            "graph_version",
        ),
        Case(
            "since 2**70 in a wait",
            "POST",
            "/worker/v1/wait",
            _json({"worker_id": "w", "since": big}),
            422,
            "since",
            token="worker",
        ),
        Case(
            "wait_s NaN",
            "POST",
            "/worker/v1/wait",
            b'{"worker_id": "w", "since": 0, "wait_s": NaN}',
            422,
            "wait_s",
            token="worker",
        ),
        Case(
            "report times of Infinity",
            "POST",
            "/worker/v1/report",
            b'{"worker_id": "w", "reports": [{"task_id": 1, '
            b'"attempt": 1, "outcome": "succeeded", "started_at": Infinity, "finished_at": 1}]}',
            422,
            "started_at",
            token="worker",
        ),
        # --- NUL bytes and lone surrogates in strings -----------------------------------------
        Case("NUL in the type", "POST", "/api/v1/events", _json({"type": "api\x00demo"}), 422, "type"),
        Case("NUL in a parameter", "POST", "/api/v1/events", _submit({"note": "a\x00b"}), 422, "NUL"),
        Case("NUL in an object key", "POST", "/api/v1/events", _submit({"extra": {"a\x00": 1}}), 422, "key"),
        Case(
            "NUL in the idempotency key",
            "POST",
            "/api/v1/events",
            _submit(idempotency_key="k\x00"),
            422,
            "idempotency_key",
        ),
        Case("lone surrogate in the type", "POST", "/api/v1/events", b'{"type": "api\\ud800demo"}', 422, "type"),
        Case(
            "lone surrogate in a parameter",
            "POST",
            "/api/v1/events",
            b'{"type": "api_demo", "params": {"note": "\\udfff"}}',
            422,
            "surrogate",
        ),
        Case(
            "lone surrogate in a rerun partition",
            "POST",
            f"/api/v1/events/{event}/rerun",
            b'{"partition": "\\ud800"}',
            422,
            "partition",
        ),
        Case("lone surrogate in a graph", "POST", "/api/v1/graphs", b'{"source": "graph: \\ud800"}', 422, "source"),
        Case(
            "lone surrogate in a worker id",
            "POST",
            "/worker/v1/register",
            b'{"id": "\\ud800", "name": "n", "host": "h", "pid": 1, "capacity": {"slots": 1}}',
            422,
            "id",
            token="worker",
        ),
        Case(
            "NUL in a worker's label",
            "POST",
            "/worker/v1/register",
            _json({"id": "w", "name": "n", "host": "h", "pid": 1, "capacity": {"slots": 1}, "labels": ["gpu\x00"]}),
            422,
            "labels",
            token="worker",
        ),
        # --- headers --------------------------------------------------------------------------
        Case(
            "a 10,000-character idempotency key",
            "POST",
            "/api/v1/events",
            _submit(),
            422,
            "idempotency-key",
            headers={"Idempotency-Key": "k" * 10_000},
        ),
        Case(
            "a 10,000-character idempotency key field",
            "POST",
            "/api/v1/events",
            _submit(idempotency_key="k" * 10_000),
            422,
            "idempotency_key",
        ),
        Case(
            "header and field keys differ",
            "POST",
            "/api/v1/events",
            _submit(idempotency_key="a"),
            400,
            "differ",
            headers={"Idempotency-Key": "b"},
        ),
        Case(
            "a non-ASCII idempotency key",
            "POST",
            "/api/v1/events",
            _submit(),
            (200, 201),
            "",
            headers={"Idempotency-Key": "clé-é"},
        ),
        Case(
            "a 10 MB header",
            "GET",
            "/api/v1/events",
            None,
            400,
            headers={"X-Big": "x" * 10_000_000},
            bare=True,
            reset_ok=True,
        ),
        Case(
            "20,000 headers",
            "GET",
            "/api/v1/events",
            None,
            400,
            headers={f"X-{i}": "x" for i in range(20_000)},
            bare=True,
            reset_ok=True,
        ),
        Case("a NUL in a header", "GET", "/api/v1/events", None, 400, headers={"X-Nul": "a\x00b"}, bare=True),
        # --- query parameters ----------------------------------------------------------------
        Case("cursor garbage", "GET", "/api/v1/events?cursor=abc", None, 422, "cursor"),
        Case("cursor negative", "GET", f"/api/v1/events/{event}/tasks?cursor=-1", None, 422, "cursor"),
        Case("cursor 40 digits", "GET", "/api/v1/events?cursor=" + "9" * 40, None, 422, "cursor"),
        Case("since garbage", "GET", "/api/v1/events?since=yesterday", None, 422, "since"),
        Case("since 1e400", "GET", "/api/v1/events?since=1e400", None, 422, "since"),
        Case("since 2**70", "GET", f"/api/v1/events?since={big}", None, 422, "since"),
        Case("until year 99999", "GET", "/api/v1/events?until=99999-01-01T00:00:00", None, 422, "until"),
        Case("limit 0", "GET", "/api/v1/events?limit=0", None, 422, "limit"),
        Case("limit -1", "GET", f"/api/v1/events/{event}/tasks?limit=-1", None, 422, "limit"),
        Case("limit 2**70", "GET", f"/api/v1/events?limit={big}", None, 422, "limit"),
        Case("log offset 2**70", "GET", f"/api/v1/attempts/{attempt}/log?offset={big}", None, 422, "offset"),
        # found by the fuzz: PostgreSQL has no substr(text, bigint, ...), so past 2**31 was a 503
        Case("log offset 2**31", "GET", f"/api/v1/attempts/{attempt}/log?offset={2**31}", None, 422, "offset"),
        Case("log offset at the cap", "GET", f"/api/v1/attempts/{attempt}/log?offset={2**30}", None, 200),
        Case("log limit 0", "GET", f"/api/v1/attempts/{attempt}/log?limit=0", None, 422, "limit"),
        Case(
            "log stream unknown", "GET", f"/api/v1/attempts/{attempt}/log?stream=../../etc/passwd", None, 422, "stream"
        ),
        Case("state unknown", "GET", "/api/v1/events?state=exploded", None, 422, "state"),
        Case("unknown query parameter", "GET", "/api/v1/events?stat=failed", None, 422, "stat"),
        Case("unknown query parameter on tasks", "GET", f"/api/v1/events/{event}/tasks?nod=extract", None, 422, "nod"),
        Case("a query parameter given twice", "GET", "/api/v1/events?limit=1&limit=x", None, 422, "limit"),
        Case("a query string of %FF", "GET", "/api/v1/events?type=%FF%FE", None, 200),
        Case("NUL in a query", "GET", "/api/v1/events?type=a%00b", None, 422, "type"),
        Case(
            "a query parameter for a worker route",
            "POST",
            "/worker/v1/wait?x=1",
            _json({"worker_id": "w", "since": 0, "wait_s": 0}),
            422,
            "x",
            token="worker",
        ),
        # --- path ids ----------------------------------------------------------------------------
        Case("event id 0", "GET", "/api/v1/events/0", None, 422, "event_id"),
        Case("event id -1", "GET", "/api/v1/events/-1", None, 422, "event_id"),
        Case("event id 2**63", "GET", f"/api/v1/events/{2**63}", None, 422, "event_id"),
        Case("event id 2**70", "POST", f"/api/v1/events/{big}/cancel", None, 422, "event_id"),
        Case("event id abc", "GET", "/api/v1/events/abc", None, 422, "event_id"),
        Case("event id 1.5", "GET", "/api/v1/events/1.5/tasks", None, 422, "event_id"),
        Case("event id %FF", "GET", "/api/v1/events/%FF", None, 422, "event_id"),
        Case("task id 2**70", "GET", f"/api/v1/tasks/{big}", None, 422, "task_id"),
        Case("graph id -5", "GET", "/api/v1/graphs/-5", None, 422, "graph_id"),
        Case("worker graph id 2**70", "GET", f"/worker/v1/graphs/{big}", None, 422, "graph_id", token="worker"),
        Case("attempt 0-1", "GET", "/api/v1/attempts/0-1/log", None, 422, "attempt_id"),
        Case("attempt of a huge task", "GET", f"/api/v1/attempts/{big}-1/log", None, 422, "attempt_id"),
        Case("attempt 1-1-1", "GET", "/api/v1/attempts/1-1-1/log", None, 422, "attempt_id"),
        Case("attempt that does not exist", "GET", f"/api/v1/attempts/{task}-99/log", None, 404, "attempt"),
        Case("a path of raw non-ASCII bytes", "GET", "/api/v1/events/\udcff\udcfe", None, (400, 404, 422), bare=True),
        Case("a route that does not exist", "GET", "/api/v2/events", None, 404, "not"),
        Case("a method the route does not take", "DELETE", f"/api/v1/events/{event}", None, 405, "method"),
    ]


def _send(served: Served, case: Case, tokens: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {tokens[case.token]}", **case.headers}
    if case.body is not None and case.json_type:
        headers["Content-Type"] = case.json_type
    try:
        response = raw(served.url, case.method, case.path, case.body, headers, hold_body=case.hold_body)
    except (ConnectionResetError, BrokenPipeError):  # the server closed before the request was all sent
        if not case.reset_ok:
            raise
        return 400, {}, b"(connection reset)"
    return response.status, dict(response.headers), response.body


def _problem_with(case: Case, status: int, headers: dict[str, str], body: bytes) -> str | None:
    """Why the answer to ``case`` is wrong, or None."""
    wanted = case.status if isinstance(case.status, tuple) else (case.status,)
    if status not in wanted:
        return f"answered {status}, wanted {wanted}: {body[:300]!r}"
    if case.bare or status < 400:
        return None
    if headers.get("content-type") != PROBLEM:
        return f"answered {headers.get('content-type')}, not {PROBLEM}: {body[:200]!r}"
    problem = json.loads(body)
    if set(problem) < {"type", "title", "status", "detail"} or problem["status"] != status:
        return f"not a problem of status {status}: {problem}"
    if status == 422 and status not in (404, 405) and not problem.get("errors"):
        return f"a 422 without errors: {problem}"
    if case.says.lower() not in problem["detail"].lower():
        return f"the detail does not say {case.says!r}: {problem['detail']!r}"
    return None


def _since_reads_iso_and_seconds_alike(http: httpx.Client, event: dict[str, Any]) -> None:
    at = event["submitted_at"]
    iso = datetime.fromtimestamp(at - 0.001, UTC).isoformat()
    by_seconds, by_iso = ({e["id"] for e in http.get("/api/v1/events", params={"since": since}).json()["events"]}
                          for since in (at - 0.001, iso))  # fmt: skip
    assert event["id"] in by_seconds and by_seconds == by_iso
    assert http.get("/api/v1/events", params={"until": at - 0.001}).json()["events"][0]["id"] < event["id"]
    # 3e10 s is the year 2920, not (as pydantic would read it) milliseconds in 1970
    assert http.get("/api/v1/events", params={"until": 3e10}).json()["events"]


def test_every_bad_request_is_a_named_4xx_and_the_server_is_fine_afterwards(
    backend: Store, world: tuple[Served, Seeded, str, str]
) -> None:
    served, seeded, admin, worker = world
    tokens = {"admin": admin, "worker": worker}
    with served.client(admin) as http:
        accepted = http.post("/api/v1/events", json={"type": DEMO, "params": {"extra": {"big": 2**70}}})
        assert accepted.status_code == 201, accepted.text
    wrong = {}
    for case in cases(seeded):
        status, headers, body = _send(served, case, tokens)
        problem = _problem_with(case, status, headers, body)
        if problem:
            wrong[case.name] = problem
    assert not wrong, "\n".join(f"{name}: {why}" for name, why in wrong.items())
    assert "internal" not in served.log.read_text().lower() and "traceback" not in served.log.read_text().lower()
    with served.client(admin) as http:
        assert http.get("/healthz").status_code == 200
        after = http.post("/api/v1/events", json={"type": DEMO, "params": {"depts": ["x", "y"]}})
        assert after.status_code == 201, after.text
        kept = http.get(f"/api/v1/events/{accepted.json()['id']}")
        assert kept.status_code == 200 and kept.json()["params"]["extra"] == {"big": 2**70}
        for event_id in (*seeded.events.values(), after.json()["id"]):
            assert http.get(f"/api/v1/events/{event_id}").status_code == 200
        listed = {e["id"] for e in http.get("/api/v1/events", params={"limit": 200}).json()["events"]}
        _since_reads_iso_and_seconds_alike(http, accepted.json())
    submitted = {e.id for e in backend.events(limit=1000)}
    assert listed == submitted and {*seeded.events.values(), accepted.json()["id"], after.json()["id"]} <= listed


def test_a_workers_report_whose_result_cannot_be_shown_as_is_is_recorded_and_read_back(
    backend: Store, world: tuple[Served, Seeded, str, str]
) -> None:
    """Output, errors and results come from tasks, not from the worker's own code: a lone
    surrogate in them, or a result nested 300 deep, must not cost the report, nor answer a 500
    when the task is read back (both did: the answer could not be serialized)."""
    served, _, admin, worker = world
    headers = {"Authorization": f"Bearer {worker}", "Content-Type": "application/json"}
    register = {"id": "w", "name": "w", "host": "h", "pid": 1, "capacity": {"slots": 2}}
    assert raw(served.url, "POST", "/worker/v1/register", _json(register), headers).status == 200
    claim = {"worker_id": "w", "claim_id": "c1", "free": {"slots": 2}, "max_tasks": 2}
    first, second = raw(served.url, "POST", "/worker/v1/claim", _json(claim), headers).json()["claims"]
    broken = (b'{"task_id": %d, "attempt": %d, "outcome": "succeeded", "started_at": 1, "finished_at": 2, '
              b'"result": "\\"a\\\\ud800b\\"", "error": "\\udfff", "stdout": "out \\ud800", '
              b'"stderr": "\\udc80err"}') % (first["task_id"], first["attempt"])  # fmt: skip
    deep = _json({"task_id": second["task_id"], "attempt": second["attempt"], "outcome": "succeeded",
                  "started_at": 1, "finished_at": 2, "result": "[" * 300 + "]" * 300})  # fmt: skip
    answered = raw(served.url, "POST", "/worker/v1/report", b'{"worker_id": "w", "reports": [%s, %s]}' % (broken, deep),
                   headers)  # fmt: skip
    assert answered.status == 200, answered.body
    assert [a["answer"] for a in answered.json()["answers"]] == ["recorded", "recorded"]
    with served.client(admin) as http:
        shown = http.get(f"/api/v1/tasks/{first['task_id']}")
        assert shown.status_code == 200, shown.text
        assert shown.json()["state"] == "succeeded" and shown.json()["result"] == "a?b"
        log = f"/api/v1/attempts/{first['task_id']}-{first['attempt']}/log"
        out, err = http.get(log), http.get(log, params={"stream": "stderr"})
        assert out.status_code == 200 and out.json()["text"].startswith("out "), out.text
        assert err.status_code == 200 and err.json()["text"].endswith("err"), err.text
        nested = http.get(f"/api/v1/tasks/{second['task_id']}")
        assert nested.status_code == 200, nested.text
        assert nested.json()["result"] is None and "nested deeper" in nested.json()["result_problem"]
        page = http.get(f"/api/v1/events/{second['event_id']}/tasks")
        assert page.status_code == 200, page.text


# Found by the fuzz on PostgreSQL (pid 2147483648 answered 503 "the database is unavailable:
# integer out of range"): worker numbers stop at a PostgreSQL INTEGER's 2**31 - 1.
@pytest.mark.parametrize("field_name", ["pid", "exit_code"])
def test_a_worker_number_past_a_database_integer_is_refused_422(
    field_name: str, world: tuple[Served, Seeded, str, str]
) -> None:
    served, _, _, worker = world
    headers = {"Authorization": f"Bearer {worker}", "Content-Type": "application/json"}
    register = {"id": "w", "name": "w", "host": "h", "pid": 2**31 if field_name == "pid" else 1,
                "capacity": {"slots": 1}}  # fmt: skip
    registered = raw(served.url, "POST", "/worker/v1/register", _json(register), headers)
    if field_name == "pid":
        assert registered.status == 422, registered.body
        return
    claim = {"worker_id": "w", "claim_id": "c", "free": {"slots": 1}, "max_tasks": 1}
    got = raw(served.url, "POST", "/worker/v1/claim", _json(claim), headers).json()["claims"][0]
    report = {"task_id": got["task_id"], "attempt": got["attempt"], "outcome": "failed", "started_at": 1,
              "finished_at": 2, "exit_code": 2**31}  # fmt: skip
    answered = raw(served.url, "POST", "/worker/v1/report", _json({"worker_id": "w", "reports": [report]}), headers)
    assert answered.status == 422, answered.body


# Found by the fuzz: JSON true was taken for the integer 1 (wait's since, a report's exit_code);
# /worker/v1 bodies are strict like /api/v1's.
@pytest.mark.parametrize(
    ("verb", "body"),
    [
        ("wait", {"worker_id": "w", "since": True, "wait_s": 0}),
        ("report", {"worker_id": "w", "reports": [{"task_id": 1, "attempt": 1, "outcome": "failed",
                                                   "started_at": 1, "finished_at": 2, "exit_code": True}]}),
    ],
)  # fmt: skip
def test_a_worker_body_of_the_wrong_json_type_is_refused_422(
    verb: str, body: dict[str, Any], world: tuple[Served, Seeded, str, str]
) -> None:
    served, _, _, worker = world
    headers = {"Authorization": f"Bearer {worker}", "Content-Type": "application/json"}
    answered = raw(served.url, "POST", f"/worker/v1/{verb}", _json(body), headers)
    assert answered.status == 422, answered.body
