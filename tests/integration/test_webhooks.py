"""Webhooks in the store, on SQLite and PostgreSQL: their definitions (checked, never answering
the secret), the deliveries a notice makes (once per webhook, whatever the dispatch repeats),
the claim that hands a delivery out with its next attempt number, the fence that keeps a late
answer from overwriting a newer try, the horizon that gives a delivery up, and the delivery log.

Times given to the claim and to results are the controller's clock; here they are read off the
wall clock, since deliveries are made at the store's."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from hooks import SECRET, cancelled_event, dispatch, notice, notices, sql

from baton.errors import Conflict, NotFound, UsageError
from baton.store import outbox
from baton.store.outbox import Kind
from baton.store.protocol import Store
from baton.store.records import DeliveryResult
from baton.store.webhooks import enqueue

URL = "https://hooks.example/baton"
LEASE_S = 60.0
HORIZON_S = 3600.0


def test_a_webhook_is_added_listed_replaced_removed_and_added_again_never_showing_its_secret(backend: Store) -> None:
    made = backend.add_webhook("ops", URL, SECRET, ["event.failed", "event.cancelled"], ["hooked"])
    assert (made.name, made.url, made.kinds, made.event_types) == ("ops", URL, ("event.cancelled", "event.failed"),
                                                                   ("hooked",))  # fmt: skip
    assert made.fingerprint == hashlib.sha256(SECRET.encode()).hexdigest()[:4] and made.disabled_at is None
    with pytest.raises(Conflict, match="replace"):
        backend.add_webhook("ops", URL, SECRET, ["event.failed"])
    replaced = backend.add_webhook("ops", URL + "/v2", SECRET[::-1], ["event.failed"], replace=True)
    assert (replaced.id, replaced.url, replaced.kinds, replaced.event_types) == (made.id, URL + "/v2",
                                                                                ("event.failed",), None)  # fmt: skip
    assert replaced.fingerprint != made.fingerprint
    removed = backend.remove_webhook("ops")
    assert removed.disabled_at is not None and backend.remove_webhook("ops") == removed  # removing again: as it was
    again = backend.add_webhook("ops", URL, SECRET, ["event.succeeded"])
    assert (again.id, again.disabled_at, again.kinds) == (made.id, None, ("event.succeeded",))
    assert [w.name for w in backend.webhooks()] == ["ops"]
    with pytest.raises(NotFound):
        backend.remove_webhook("nope")
    shown = repr(backend.webhooks()) + repr(backend.audit())
    assert SECRET not in shown and SECRET[::-1] not in shown


@pytest.mark.parametrize(
    ("name", "url", "secret", "kinds", "types", "problem"),
    [
        ("ops", "ftp://hooks.example/x", SECRET, ["event.failed"], None, "url"),
        ("ops", "https://user:pw@hooks.example/x", SECRET, ["event.failed"], None, "url"),
        ("ops", "https://hooks.example/" + "x" * 2100, SECRET, ["event.failed"], None, "url"),
        ("ops", "https://hooks.example/a b", SECRET, ["event.failed"], None, "url"),
        ("ops", URL, "short", ["event.failed"], None, "secret"),
        ("ops", URL, SECRET + " with spaces", ["event.failed"], None, "secret"),
        ("ops", URL, SECRET, [], None, "kinds"),
        ("ops", URL, SECRET, ["event.exploded"], None, "kinds"),
        ("ops", URL, SECRET, ["event.failed"], [], "event types"),
        ("-ops", URL, SECRET, ["event.failed"], None, "name"),
        ("o" * 101, URL, SECRET, ["event.failed"], None, "name"),
    ],
)
def test_a_bad_definition_is_refused_naming_what_without_quoting_the_secret(
    backend: Store, name: str, url: str, secret: str, kinds: list[str], types: list[str] | None, problem: str
) -> None:
    with pytest.raises(UsageError) as refused:
        backend.add_webhook(name, url, secret, kinds, types)
    assert problem in str(refused.value)
    assert secret not in str(refused.value)
    assert backend.webhooks() == []


def test_a_notice_makes_one_delivery_per_matching_webhook_and_dispatching_twice_makes_none(backend: Store) -> None:
    backend.add_webhook("cancels", URL, SECRET, ["event.cancelled"])
    backend.add_webhook("of-hooked", URL, SECRET, ["event.cancelled", "event.failed"], ["hooked"])
    backend.add_webhook("of-others", URL, SECRET, ["event.cancelled"], ["other"])
    backend.add_webhook("failures", URL, SECRET, ["event.failed"])
    backend.add_webhook("removed", URL, SECRET, ["event.cancelled"])
    backend.remove_webhook("removed")
    event_id = cancelled_event(backend, key="k-1", note="hello")

    assert dispatch(backend) == 2
    (row,) = notices(backend)
    with sql(backend).transaction() as tx:
        assert enqueue(tx, row) == 0  # the dispatch ran again (it died before marking the notice)
    log = backend.deliveries()
    assert sorted(d.webhook for d in log) == ["cancels", "of-hooked"]
    assert {(d.notice_id, d.kind, d.event_id, d.state, d.attempts) for d in log} == {
        (row.id, "event.cancelled", event_id, "pending", 0)}  # fmt: skip
    assert len({d.uid for d in log}) == 2


def test_a_deliverys_body_is_fixed_when_it_is_made(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled", "deadline.at_risk"])
    event_id = cancelled_event(backend, key="k-2", note="body")
    notice(backend, Kind.DEADLINE_AT_RISK, event_id, minutes_late=12)
    assert dispatch(backend) == 2
    jobs = {j.kind: j for j in backend.claim_deliveries(time.time() + 1, 10, LEASE_S)}
    ended, at_risk = json.loads(jobs["event.cancelled"].body), json.loads(jobs["deadline.at_risk"].body)
    assert ended["id"] == jobs["event.cancelled"].uid and ended["kind"] == "event.cancelled"
    assert ended["at"].endswith("Z") and ended["notice_id"] == notices(backend)[0].id and ended["detail"] == {}
    event = ended["event"]
    assert {k: event[k] for k in ("id", "type", "state", "params", "key", "error", "scheduled_for")} == {
        "id": event_id, "type": "hooked", "state": "cancelled", "params": {"note": "body"}, "key": "k-2",
        "error": None, "scheduled_for": None}  # fmt: skip
    assert event["submitted_at"].endswith("Z") and event["finished_at"].endswith("Z")
    assert at_risk["detail"] == {"minutes_late": 12} and at_risk["event"]["id"] == event_id
    assert SECRET not in repr(list(jobs.values()))  # a job carries the secret, but never shows it


def test_a_claim_hands_a_delivery_out_once_per_lease_with_its_next_attempt(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    now = time.time() + 1
    (first,) = backend.claim_deliveries(now, 10, LEASE_S)
    assert (first.attempt, first.url, first.secret, first.webhook) == (1, URL, SECRET, "ops")
    assert backend.claim_deliveries(now + LEASE_S - 1, 10, LEASE_S) == []  # taken: its taker may be posting
    (again,) = backend.claim_deliveries(now + LEASE_S, 10, LEASE_S)  # its taker died: taken again
    assert (again.id, again.uid, again.body, again.attempt) == (first.id, first.uid, first.body, 2)


def test_a_late_answer_of_an_earlier_try_changes_nothing(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    now = time.time() + 1
    (first,) = backend.claim_deliveries(now, 10, LEASE_S)
    (second,) = backend.claim_deliveries(now + LEASE_S, 10, LEASE_S)
    late = DeliveryResult(first.id, first.attempt, now + 61, 204, None, None)
    refused = DeliveryResult(second.id, second.attempt, now + 62, 500, "HTTP 500", now + 70)
    assert backend.record_deliveries([late, refused], HORIZON_S) == ["stale", "pending"]
    (d,) = backend.deliveries()
    assert (d.state, d.attempts, d.last_status, d.last_error, d.next_at) == ("pending", 2, 500, "HTTP 500", now + 70)
    (third,) = backend.claim_deliveries(now + 70, 10, LEASE_S)
    done = DeliveryResult(third.id, 3, now + 71, 200, None, None)
    assert backend.record_deliveries([done], HORIZON_S) == ["delivered"]
    assert backend.record_deliveries([done, refused], HORIZON_S) == ["stale", "stale"]  # ended: nothing moves it
    (d,) = backend.deliveries()
    assert (d.state, d.attempts, d.last_status, d.last_error, d.delivered_at) == ("delivered", 3, 200, None, now + 71)
    causes = [(a.action, a.cause) for a in backend.audit() if a.action.startswith("delivery.")]
    assert causes == [("delivery.failed", "attempt 2: HTTP 500"), ("delivery.delivered", "attempt 3 answered 200")]


def test_a_retry_past_the_horizon_gives_the_delivery_up(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled"])
    cancelled_event(backend)
    dispatch(backend)
    (made,) = backend.deliveries()
    (job,) = backend.claim_deliveries(made.created_at + 1, 10, LEASE_S)
    within = DeliveryResult(job.id, 1, made.created_at + 2, None, "ConnectError: refused", made.created_at + HORIZON_S)
    assert backend.record_deliveries([within], HORIZON_S) == ["pending"]
    (job,) = backend.claim_deliveries(made.created_at + HORIZON_S, 10, LEASE_S)
    past = DeliveryResult(job.id, 2, made.created_at + HORIZON_S, 503, "HTTP 503", made.created_at + HORIZON_S + 1)
    assert backend.record_deliveries([past], HORIZON_S) == ["expired"]
    (d,) = backend.deliveries()
    assert (d.state, d.last_status, d.delivered_at) == ("expired", 503, None)
    assert backend.claim_deliveries(made.created_at + 10 * HORIZON_S, 10, LEASE_S) == []


def test_removing_a_webhook_cancels_what_it_had_pending_and_keeps_its_log(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled"])
    for _ in range(2):
        cancelled_event(backend)
    dispatch(backend)
    (job, _) = backend.claim_deliveries(time.time() + 1, 10, LEASE_S)
    backend.record_deliveries([DeliveryResult(job.id, 1, time.time(), 204, None, None)], HORIZON_S)
    backend.remove_webhook("ops")
    assert sorted(d.state for d in backend.deliveries(webhook="ops")) == ["cancelled", "delivered"]
    assert backend.claim_deliveries(time.time() + 10 * LEASE_S, 10, LEASE_S) == []
    cancelled_event(backend)
    assert dispatch(backend) == 0  # a removed webhook receives nothing more


def test_the_delivery_log_is_newest_first_by_keyset_by_webhook_and_state(backend: Store) -> None:
    backend.add_webhook("a", URL, SECRET, ["event.cancelled"])
    backend.add_webhook("b", URL, SECRET, ["event.cancelled"])
    for _ in range(3):
        cancelled_event(backend)
    assert dispatch(backend) == 6
    everything = backend.deliveries()
    assert [d.id for d in everything] == sorted((d.id for d in everything), reverse=True)
    first = backend.deliveries(limit=4)
    rest = backend.deliveries(before=first[-1].id, limit=4)
    assert [d.id for d in first + rest] == [d.id for d in everything]
    assert {d.webhook for d in backend.deliveries(webhook="a")} == {"a"}
    assert len(backend.deliveries(webhook="a", state="pending")) == 3
    assert backend.deliveries(state="delivered") == []
    for bad in ({"state": "lost"}, {"limit": 0}, {"limit": 501}):
        with pytest.raises(UsageError):
            backend.deliveries(**bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        backend.deliveries(webhook="nope")


def test_the_metrics_sample_counts_pending_deliveries_and_each_try(backend: Store) -> None:
    backend.add_webhook("ops", URL, SECRET, ["event.cancelled"])
    start = backend.metrics_sample(None, None, 1000, 60.0)
    for _ in range(3):
        cancelled_event(backend)
    dispatch(backend)
    now = time.time() + 1
    a, b, c = backend.claim_deliveries(now, 10, LEASE_S)
    backend.record_deliveries([DeliveryResult(a.id, 1, now, 200, None, None),
                               DeliveryResult(b.id, 1, now, 500, "HTTP 500", now + 5),
                               DeliveryResult(c.id, 1, now, None, "ReadTimeout", now + 10 * HORIZON_S)],
                              HORIZON_S)  # fmt: skip
    middle = backend.metrics_sample(start.audit_id, start.audit_id, 1000, 60.0)
    sample = backend.metrics_sample(start.audit_id, middle.audit_id, 1000, 60.0)
    assert sample.deliveries_pending == 1
    assert sample.activity.deliveries == {"delivered": 1, "failed": 2, "expired": 1}


def test_a_notice_about_a_schedule_is_of_the_event_type_its_schedule_raises(backend: Store) -> None:
    backend.add_webhook("hooked-only", URL, SECRET, ["schedule.misfire"], ["hooked"])
    backend.add_webhook("others-only", URL, SECRET, ["schedule.misfire"], ["other"])
    cancelled_event(backend)  # registers the graph "hooked", raising events of type "hooked"
    with sql(backend).transaction() as tx:
        tx.q("INSERT INTO schedules (name, graph, spec, state, handled_through, created_at, updated_at) "
             "VALUES ('nightly', 'hooked', '{}', 'active', 0, 0, 0)")  # fmt: skip
        schedule_id = tx.one("SELECT id FROM schedules WHERE name = 'nightly'")[0]
        outbox.notice(tx, Kind.SCHEDULE_MISFIRE, schedule_id=schedule_id, missed=2)
    assert dispatch(backend) == 1
    (d,) = backend.deliveries()
    (job,) = backend.claim_deliveries(time.time() + 1, 10, LEASE_S)
    assert d.webhook == "hooked-only" and d.event_id is None
    body = json.loads(job.body)
    assert (body["kind"], body["schedule_id"], body["detail"], "event" in body) == (
        "schedule.misfire", schedule_id, {"missed": 2}, False)  # fmt: skip
