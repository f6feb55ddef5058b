"""A schema-driven fuzz of the app's OpenAPI document (schemathesis 4), on PostgreSQL, whose
stricter types are where a store's refusal would surface as a 500 (``test_openapi_live.py`` runs
schemathesis itself against a live server on SQLite).

Every operation is sent generated requests that fit the document (positive) and that do not
(negative), with an admin token on ``/api/v1`` and a worker token on ``/worker/v1`` so they get
past auth, over a store where object routes find something (:func:`apiseed.seed`); a second
round pins the path ids to real objects. The checks, from schemathesis:

- ``not_a_server_error``: never a 5xx, whatever is sent;
- ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: every answer, errors included, is one the document states;
- ``negative_data_rejection``: what the document forbids is refused (4xx);
- ``positive_data_acceptance``: what it allows is not refused as malformed — except where the
  document cannot know (a graph's parameters, a YAML text: 422 there is an answer, not a lie);
- ``ignored_auth``: an operation that declares the bearer scheme refuses requests without it;
- ``max_response_time``: no answer takes over :data:`SLOW_S`.

Left out: the stateful checks (``use_after_free``, ``ensure_resource_availability``,
``object_level_authorization``), which need links or phases this loop does not run; the auth
matrix covers object access, and ``test_openapi_live.py`` runs every check and phase of the
schemathesis CLI against a live server.

In-process (``from_asgi``), not over loopback: a 5xx's traceback lands in this test's log
capture, and a request costs a millisecond; the HTTP layer itself (uvicorn's parser, real
chunked bodies) is covered by ``test_bad_input_api.py`` against a real server.

``BATON_FUZZ_EXAMPLES`` sets the examples per operation and mode (CI: :data:`CI_EXAMPLES`);
``BATON_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from apiseed import Seeded, seed
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi
from serving import mint

from baton.access import Role
from baton.server.app import create_app
from baton.settings import Settings
from baton.store.protocol import Store

CI_EXAMPLES = 12
EXAMPLES = int(os.environ.get("BATON_FUZZ_EXAMPLES", CI_EXAMPLES))
SEED = int(os.environ.get("BATON_FUZZ_SEED", "20260101"))
SLOW_S = 5.0
REQUEST_TIMEOUT_S = 10.0
# Where a schema-valid request may still be refused 4xx for what the document cannot state.
# (One block, one name: two include keys in a block match either, which relaxed a dozen operations.)
SEMANTIC = [
    {"include-name": "POST /api/v1/events",  # the graph's parameters; key mismatch
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "403", "404", "409", "422"]}}},
    {"include-name": "POST /api/v1/graphs",  # the YAML text
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}}},
    {"include-name": "POST /api/v1/webhooks",  # the name is taken (and replace is false)
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "409"]}}},
    {"include-name": "PUT /api/v1/calendars/{name}",  # the YAML text; the path's name and the document's
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "422"]}}},
    {"include-name": "POST /api/v1/backfills",  # the schedule; from <= to; fires in the range
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "409", "422"]}}},
]  # fmt: skip
# Bugs the fuzz found and that are not fixed yet, each pinned by a strict xfail test: (operation
# pattern, failure pattern) pairs; a failure matching one is not counted. Empty: none is open.
KNOWN: list[tuple[re.Pattern[str], re.Pattern[str]]] = []
OFF = (
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)
CONFIG = {
    "generation": {"with-security-parameters": False},
    "checks": {"max_response_time": SLOW_S, **{name: {"enabled": False} for name in OFF}},
    "operations": SEMANTIC,
}


@dataclass
class Tally:
    examples: dict[str, int] = field(default_factory=dict)  # per operation
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (operation, what) -> first report
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # per operation, how often each
    known: int = 0  # failures matching KNOWN

    def failed(self, operation: str, exc: BaseException) -> None:
        if known(operation, str(exc)):
            self.known += 1
            return
        found = getattr(exc, "exceptions", None) or [exc]
        for failure in found:
            what = getattr(failure, "title", type(failure).__name__)
            self.failures.setdefault((operation, what), str(exc)[:3000])


def known(operation: str, text: str) -> bool:
    return any(where.search(operation) and what.search(text) for where, what in KNOWN)


@pytest.fixture
def operations(backend: Store) -> Iterator[tuple[list[Any], Seeded]]:
    """The app's operations: those of ``/worker/v1`` from the document loaded with a worker
    token, the others from it loaded with an admin token. Schemathesis sends the token as the
    bearer scheme the document declares and generates no security parameters of its own, so
    every request, negative ones too, gets past auth (the auth matrix tests the refusals)."""
    seeded = seed(backend)
    app = create_app(backend, Settings(db=backend.url, long_poll_s=0.2))
    found = []
    for role, worker_routes in ((Role.ADMIN, False), (Role.WORKER, True)):
        config = {**CONFIG, "auth": {"openapi": {"bearer": {"bearer": mint(backend, role)}}}}
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(config))
        found += [
            op for r in schema.get_all_operations() if (op := r.ok()).path.startswith("/worker/") == worker_routes
        ]
    try:
        yield found, seeded
    finally:
        asgi.shutdown_lifespans()  # the change watch's thread, which schemathesis started


def _fixed_ids(path: str, s: Seeded) -> dict[str, Any]:
    ids = {"event_id": s.events, "task_id": s.tasks, "attempt_id": s.attempts, "graph_id": s.graphs}
    return {name: next(iter(values.values())) for name, values in ids.items() if "{" + name + "}" in path}


def _fuzz(operation: Any, mode: GenerationMode, tally: Tally, path_ids: dict[str, Any]) -> None:
    label = operation.label
    statuses = tally.statuses.setdefault(label, {})

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @fixed_seed(SEED)
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_ids or None))
    def run(case: Any) -> None:
        tally.examples[label] = tally.examples.get(label, 0) + 1
        try:
            response = case.call_and_validate(timeout=REQUEST_TIMEOUT_S)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        except BaseException as exc:  # schemathesis raises a BaseExceptionGroup of failures
            if isinstance(exc, KeyboardInterrupt):
                raise
            tally.failed(label, exc)

    try:
        run()
    except BaseException as exc:
        # an operation with nothing to negate (no parameters, no body) has no negative cases
        if mode is not GenerationMode.NEGATIVE or "Unsatisfiable" not in type(exc).__name__:
            raise


def _has_inputs(operation: Any) -> bool:
    described = operation.schema.raw_schema["paths"][operation.path][operation.method.lower()]
    return bool(described.get("parameters") or described.get("requestBody"))


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
@pytest.mark.long(seconds=50)
def test_the_openapi_document_holds_for_generated_requests(
    operations: tuple[list[Any], Seeded], caplog: pytest.LogCaptureFixture
) -> None:
    found, seeded = operations
    tally = Tally()
    caplog.set_level(logging.ERROR, logger="baton.api")
    for operation in found:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, tally, {})
            pinned = _fixed_ids(operation.path, seeded)
            if pinned:
                _fuzz(operation, mode, tally, pinned)
    for label, counts in tally.statuses.items():
        print(label, dict(sorted(counts.items())))
    total = sum(tally.examples.values())
    varied = [op.label for op in found if _has_inputs(op)]
    fewest = min(tally.examples[label] for label in varied)
    print(f"fuzz: {len(found)} operations, {total} requests, at least {fewest} per operation with inputs, "
          f"{tally.known} failures of known bugs (KNOWN)")  # fmt: skip
    assert len(tally.examples) == len(found) >= 20  # the others have one request to send
    assert len(varied) >= 15 and fewest >= EXAMPLES
    logged = [r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records if r.levelno >= logging.ERROR]
    errors = [text for text in logged if not known(text, text)]  # a logged line starts with its route
    report = [f"{op}: {what}\n{text}" for (op, what), text in tally.failures.items()]
    assert not report and not errors, "\n\n".join(report + errors)
