"""``schemathesis run`` against a live ``baton server`` on loopback, with every check and every
phase, on SQLite: it must report no failure. (``test_fuzz.py`` fuzzes the same document on
PostgreSQL, whose stricter types are where a store's refusal would surface as a 500; each run
costs about a minute of a core, and the API layer they check is the same on both.)

``test_fuzz.py`` drives the app in-process with some checks off; this test runs the schemathesis
command line as anyone would, against a real server process (uvicorn's parser, real sockets),
over a store :func:`apiseed.seed` filled so that object routes find something. One run covers
the whole document: ``/worker/v1`` with a worker token, every other operation (``/api/v1``,
``/metrics``, ``/healthz``) with an admin token, by the config file's per-operation headers.
The command (:func:`command`; the config file is :func:`config`)::

    python -m schemathesis.cli --config-file schemathesis.toml run http://127.0.0.1:PORT/openapi.json \\
        --checks all --phases examples,coverage,fuzzing,stateful --seed 20260101 --max-examples 10 \\
        --workers 1 --continue-on-failure --generation-database none --suppress-health-check too_slow \\
        --request-timeout 60 --output-sanitize false --no-color --report json --report-json-path report.json

What it is given, and why:

- ``--checks all``: every check schemathesis has. ``max_response_time`` takes a limit and is
  given none: a time limit on a shared CI machine finds load, not bugs. ``use_after_free`` and
  ``ensure_resource_availability`` follow DELETE links (the API has no DELETE) and
  ``object_level_authorization`` compares two identities (``auth.wfc`` peers): they run and
  find nothing to compare here; ``test_auth_matrix.py`` covers who may read what.
- every phase: ``examples`` (skipped: the document has no examples), ``coverage`` (the
  boundaries of every constraint, the same in each run), ``fuzzing`` (drawn from the seed) and
  ``stateful`` (sequences along the links schemathesis infers from the document).
- a fixed seed, ``--generation-database none`` and ``cache.enabled = false``: nothing a previous
  run found is replayed, so what is sent depends on the seed alone; the one health check that
  measures time (``too_slow``) is off.
- ``--continue-on-failure``: every failing operation and check is reported, not only the first;
  unsanitized, so its curl commands run as printed (the tokens are minted for this test).
- the seeded ids as dictionaries: a path id names a real object half the time.
- where the document cannot say what is valid — a graph's parameters, a graph's YAML text, an
  ``Idempotency-Key`` header that must agree with the body's key — a refusal of a request that
  fits the document is an answer (:data:`SEMANTIC`), not a lie of the document.
- the server's long poll cut to :data:`LONG_POLL_S` and its lease raised to an hour: a
  ``/worker/v1/wait`` never holds a request long and no lease runs out mid-run, so the answers
  do not depend on the machine's speed.

A failing run's findings (each with a curl command) and the server's log are the assertion's
message. ``BATON_LIVE_FUZZ_EXAMPLES`` sets the examples per operation of the fuzzing phase (CI:
:data:`CI_EXAMPLES`, about 12 s per backend on an idle two-core machine: of its ~1,600 requests,
~1,500 come from the coverage and stateful phases, which do not depend on it; 20 examples cost
another 3 s per backend for ~250 more requests) and ``BATON_LIVE_FUZZ_SEED`` the seed; the
timeout grows with the examples. A longer run, before a release or after changing the API::

    BATON_LIVE_FUZZ_EXAMPLES=200 BATON_LIVE_FUZZ_SEED=$RANDOM pytest tests/api/test_openapi_live.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from apiseed import Seeded, seed
from serving import Served, mint

from baton.access import Role
from baton.store.protocol import Store

CI_EXAMPLES = 10
EXAMPLES = int(os.environ.get("BATON_LIVE_FUZZ_EXAMPLES", CI_EXAMPLES))
SEED = int(os.environ.get("BATON_LIVE_FUZZ_SEED", "20260101"))
REQUEST_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 90.0 + 3.0 * EXAMPLES  # measured on two cores: 12-15 s at 10 examples, 15-30 s at 20, ~60 s at 100
LONG_POLL_S = 1.0
LEASE_S = 3600.0
WORKER_PATHS = "^/worker/v1/"
PHASES = "examples,coverage,fuzzing,stateful"
# Where a request that fits the document may still be refused 4xx for what it cannot state.
SEMANTIC = {
    "POST /api/v1/events": ["2xx", "400", "404", "409", "422"],  # the graph's parameters; key header vs field
    "POST /api/v1/graphs": ["2xx", "422"],  # the YAML text
    "POST /api/v1/webhooks": ["2xx", "409"],  # the name is taken (and replace is false)
    "PUT /api/v1/calendars/{name}": ["2xx", "400", "422"],  # the YAML text; the path's name and the document's
    "POST /api/v1/backfills": ["2xx", "400", "404", "409", "422"],  # the schedule; from <= to; fires in the range
}
MESSAGE_CHARS = 40_000


@dataclass(frozen=True)
class Live:
    server: Served
    seeded: Seeded
    admin: str
    worker: str


@pytest.fixture
def live(backend: Store, tmp_path: Path) -> Iterator[Live]:
    seeded = seed(backend)
    admin, worker = mint(backend, Role.ADMIN), mint(backend, Role.WORKER)
    env = {"BATON_LONG_POLL_S": str(LONG_POLL_S), "BATON_LEASE_S": str(LEASE_S)}
    server = Served(backend.url, tmp_path, env=env).start()
    try:
        yield Live(server, seeded, admin, worker)
    finally:
        server.stop()


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers and arrays are TOML's too."""
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def config(live: Live) -> str:
    """The run's schemathesis.toml: who speaks where, the seeded ids, nothing cached."""
    ids = {
        "event_id": list(live.seeded.events.values()),
        "task_id": list(live.seeded.tasks.values()),
        "attempt_id": list(live.seeded.attempts.values()),
        "graph_id": list(live.seeded.graphs.values()),
    }
    lines = [f"headers = {_toml({'Authorization': f'Bearer {live.admin}'})}", "", "[cache]", "enabled = false", ""]
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {_toml({"dictionary": name, "probability": 0.5})}' for name in ids]
    lines += ["", "[[operations]]", f"include-path-regex = {_toml(WORKER_PATHS)}",
              f"headers = {_toml({'Authorization': f'Bearer {live.worker}'})}"]  # fmt: skip
    for label, statuses in SEMANTIC.items():
        # include-name: two include keys in one block (include-path, include-method) match either
        lines += ["", "[[operations]]", f"include-name = {_toml(label)}",
                  f"checks.positive_data_acceptance.expected-statuses = {_toml(statuses)}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def command(config_file: Path, url: str, report: Path) -> list[str]:
    """``schemathesis run`` with every check and phase, the seed, and a JSON report."""
    return [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config_file), "run", f"{url}/openapi.json",
        "--checks", "all", "--phases", PHASES, "--seed", str(SEED), "--max-examples", str(EXAMPLES),
        "--workers", "1", "--continue-on-failure", "--generation-database", "none",
        "--suppress-health-check", "too_slow", "--request-timeout", str(REQUEST_TIMEOUT_S),
        "--output-sanitize", "false", "--no-color", "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip


def findings(stdout: str) -> str:
    """What schemathesis printed about what failed: its output from FAILURES or ERRORS on."""
    starts = [stdout.find(f" {title} ") for title in ("FAILURES", "ERRORS")]
    start = min((s for s in starts if s >= 0), default=0)
    return stdout[stdout.rfind("\n", 0, start) + 1 :][:MESSAGE_CHARS]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"schemathesis ran over {RUN_TIMEOUT_S:.0f} s; its output so far:\n{out[-MESSAGE_CHARS:]}")


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.long(seconds=60)
def test_schemathesis_finds_nothing_against_a_live_server(live: Live, tmp_path: Path) -> None:
    config_file, report_file = tmp_path / "schemathesis.toml", tmp_path / "schemathesis.json"
    config_file.write_text(config(live))
    document = httpx.get(f"{live.server.url}/openapi.json", timeout=REQUEST_TIMEOUT_S).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    run = _run(command(config_file, live.server.url, report_file), cwd=tmp_path)
    server_log = live.server.log.read_text(errors="replace")
    assert report_file.exists(), f"schemathesis wrote no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    report = json.loads(report_file.read_text())
    generated, took_s = report["test_cases"]["generated"], report["running_time"]
    print(f"schemathesis: seed {SEED}, {EXAMPLES} examples per operation: {generated} requests in {took_s:.1f} s")
    found = [f"{f['code']} {f['title']}: {', '.join(f['operations'])}" for f in report["failures"]]
    found += [f"error: {json.dumps(e)[:500]}" for e in report["errors"]]
    failed = run.returncode != 0 or bool(found)
    assert not failed, (
        f"schemathesis (exit {run.returncode}, seed {SEED}) reports:\n" + "\n".join(found)
        + f"\n\n{findings(run.stdout)}\n{run.stderr[-5000:]}\nthe server's log:\n{server_log[-5000:]}"
    )  # fmt: skip
    assert report["operations"]["tested"] == report["operations"]["selected"] == operations >= 20, report["operations"]
    ran = {name: phase["status"] for name, phase in report["phases"].items() if name != "examples"}
    assert ran == dict.fromkeys(("coverage", "fuzzing", "stateful"), "success"), report["phases"]
    assert "Traceback" not in server_log, server_log[-MESSAGE_CHARS:]
