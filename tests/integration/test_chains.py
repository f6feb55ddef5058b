"""Chained events on both stores: an event's end raises the graphs that declare ``raised_by``
on it, once per (source, graph, state), whatever is dispatched twice or rolled back on the way."""

from __future__ import annotations

import time
from typing import Any

import pytest

from baton.controller.duties import Dispatch, Expand
from baton.engine.states import EventState, Outcome
from baton.errors import UsageError
from baton.graphs.params import validate_params
from baton.graphs.spec import load_graph_text
from baton.store import chaining
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, Report

SOURCE = """
graph: report
params: {year: {type: integer}}
nodes:
  total: {run: "m:f", partitioned: false}
"""
PUBLISH = """
graph: publish
params:
  year: {type: integer}
  total: {type: object, default: {}}
  origin: {type: string, default: ""}
raised_by:
  - event: report
    when: [succeeded]
    params: {year: "{source.params.year}", total: "{source.results.total}", origin: "report {source.id}"}
nodes:
  copy: {run: "m:f", partitioned: false}
"""
ALARM = """
graph: alarm
params: {failed: {type: integer}}
raised_by:
  - {event: report, when: [failed, cancelled], params: {failed: "{source.id}"}}
nodes:
  page: {run: "m:f", partitioned: false}
"""


def register(backend: Store, *texts: str) -> list[int]:
    return [backend.register_graph(load_graph_text(text)).id for text in texts]


def raise_report(backend: Store, year: int) -> int:
    graph_id = backend.latest_graph("report").id
    event, _ = backend.submit(graph_id, validate_params(backend.graph_of(graph_id), {"year": year}))
    Expand(10).run(backend, 0.0)
    return event.id


def finish_all(backend: Store, outcome: Outcome, result: str | None = None) -> None:
    """Claim every ready task and report ``outcome`` for all of them in one transaction."""
    claims = backend.claim(ClaimRequest("w", {"slots": 100}, frozenset(), 100, 60.0)).claims
    now = time.time()
    reports = tuple(Report(c.task_id, c.attempt, outcome, now, now, result_json=result) for c in claims)
    backend.claim(ClaimRequest("w", {"slots": 0}, frozenset(), 0, 60.0, reports=reports))


def raised_by(backend: Store, event_type: str) -> list[Any]:
    return sorted((e for e in backend.events(limit=100) if e.type == event_type), key=lambda e: e.id)


def test_a_success_raises_the_chained_graph_once_with_mapped_parameters(backend: Store) -> None:
    register(backend, SOURCE, PUBLISH, ALARM)
    source = raise_report(backend, 2025)
    finish_all(backend, Outcome.SUCCEEDED, '{"revenue": 12}')
    assert backend.event_state(source) is EventState.SUCCEEDED
    duty = Dispatch(100)
    assert duty.run(backend, 0.0) >= 1
    assert duty.run(backend, 0.0) == 0  # nothing left: dispatched once
    (chained,) = raised_by(backend, "publish")
    assert chained.params == {"year": 2025, "total": {"revenue": 12}, "origin": f"report {source}"}
    assert chained.key == f"chain:{source}:publish:succeeded"
    assert raised_by(backend, "alarm") == []  # it waits for failures only


def test_a_failure_raises_only_what_waits_for_failures(backend: Store) -> None:
    register(backend, SOURCE, PUBLISH, ALARM)
    source = raise_report(backend, 2024)
    finish_all(backend, Outcome.FAILED)
    Dispatch(100).run(backend, 0.0)
    assert [e.params for e in raised_by(backend, "alarm")] == [{"failed": source}]
    assert raised_by(backend, "publish") == []


def test_two_sources_ending_in_one_transaction_raise_two_events(backend: Store) -> None:
    register(backend, SOURCE, PUBLISH)
    first, second = raise_report(backend, 2023), raise_report(backend, 2024)
    finish_all(backend, Outcome.SUCCEEDED, "{}")  # both events end in the same commit
    assert backend.event(first).finished_at == backend.event(second).finished_at
    Dispatch(100).run(backend, 0.0)
    assert sorted(e.params["year"] for e in raised_by(backend, "publish")) == [2023, 2024]


def test_a_dispatch_that_dies_before_its_commit_raises_nothing_and_the_next_raises_once(
    backend: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(backend, SOURCE, PUBLISH)
    raise_report(backend, 2022)
    finish_all(backend, Outcome.SUCCEEDED, "{}")
    real = chaining.raise_chained

    def then_die(*args: Any) -> int:
        real(*args)  # the chained event is inserted ...
        raise RuntimeError("the controller died here")  # ... and the transaction never commits

    monkeypatch.setattr(chaining, "raise_chained", then_die)
    with pytest.raises(RuntimeError):
        Dispatch(100).run(backend, 0.0)
    assert raised_by(backend, "publish") == []
    monkeypatch.setattr(chaining, "raise_chained", real)
    Dispatch(100).run(backend, 0.0)
    assert len(raised_by(backend, "publish")) == 1


def test_a_notice_dispatched_again_raises_nothing_new(backend: Store) -> None:
    """As if two controllers dispatched one notice (the key is what holds, not the row's flag)."""
    register(backend, SOURCE, PUBLISH)
    raise_report(backend, 2021)
    finish_all(backend, Outcome.SUCCEEDED, "{}")
    Dispatch(100).run(backend, 0.0)
    with backend.transaction() as tx:  # type: ignore[attr-defined]
        rows = tx.rows("SELECT id, at, kind, event_id, schedule_id, detail FROM notices")
        made = sum(chaining.raise_chained(tx, chaining.NoticeRow(*row)) for row in rows)
    assert made == 0
    assert len(raised_by(backend, "publish")) == 1


def test_a_cycle_of_chains_is_refused_at_registration(backend: Store) -> None:
    register(backend, SOURCE, PUBLISH)
    loop = SOURCE + 'raised_by: [{event: publish, params: {year: "{source.params.year}"}}]\n'
    with pytest.raises(UsageError, match="cycle of chained events: report → publish → report"):
        register(backend, loop)
    self_loop = PUBLISH.replace("event: report", "event: publish")
    with pytest.raises(UsageError, match="publish → publish"):
        register(backend, self_loop)
