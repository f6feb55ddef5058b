"""The store's side of the server's metrics (``metrics_sample``), on SQLite and PostgreSQL: the
gauges of the state now, and the activity the audit records, counted exactly once however the
reads are cut."""

from __future__ import annotations

import time

from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.store.protocol import Store
from baton.store.records import Activity, Claim, ClaimRequest, MetricsSample, Report, WorkerInfo

LIMIT = 10_000
STALE_S = 30.0
OVER = -1.0  # a lease that has already run out by the store's clock: the next look expires it


def _submit(backend: Store) -> int:
    g = GraphBuilder("gauged", defaults={"retries": 1, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("parts", "list", default=["p1", "p2"]).partitions(param="parts")
    g.python("first", "m:f")
    g.python("second", "m:f", after=["first"])
    graph = g.build()
    event, _ = backend.submit(backend.register_graph(graph).id, validate_params(graph, {}))
    Controller(backend).expand()
    return event.id


def _ended(claim: Claim, outcome: Outcome, run_s: float) -> Report:
    end = time.time()
    return Report(claim.task_id, claim.attempt, outcome, end - run_s, end, result_json="1", error="boom")


def _one(backend: Store, worker: str, lease_s: float = 30.0, reports: tuple[Report, ...] = ()) -> Claim:
    (claim,) = backend.claim(ClaimRequest(worker, {"slots": 1}, frozenset(), 1, lease_s, reports)).claims
    return claim


def _play(backend: Store) -> None:
    """One event through every kind of end: two successes, a failure retried, a lost lease that
    fails the task for good, a stale report and a replayed one."""
    backend.register_worker(WorkerInfo("w1", "w1", "host", 1, {"slots": 4}))
    a, b = backend.claim(ClaimRequest("w1", {"slots": 2}, frozenset(), 2, 30.0)).claims
    good, bad = (a, b) if a.partition == "p1" else (b, a)
    backend.report("w1", [_ended(good, Outcome.SUCCEEDED, 2.0), _ended(bad, Outcome.FAILED, 3.0)])
    downstream = _one(backend, "w1")
    assert (downstream.node, downstream.partition) == ("second", "p1")
    retry = _one(backend, "w1", lease_s=OVER)
    assert (retry.task_id, retry.attempt) == (bad.task_id, 2)
    assert backend.expire_leases() == 1  # out of retries: first[p2] fails, second[p2] can never run
    finish = _ended(downstream, Outcome.SUCCEEDED, 1.5)
    answers = backend.report("w1", [finish, _ended(retry, Outcome.SUCCEEDED, 0.5)])
    assert answers.stale == [(retry.task_id, 2)]
    assert backend.report("w1", [finish]).duplicate == [(downstream.task_id, downstream.attempt)]


def _through(backend: Store, after: int, limit: int = LIMIT) -> list[Activity]:
    """Every activity after ``after`` up to the newest audit row, read in pages of ``limit``."""
    top = backend.metrics_sample(None, None, limit, STALE_S).audit_id
    pages = []
    while after < top:
        page = backend.metrics_sample(after, top, limit, STALE_S).activity
        assert after < page.through <= top
        pages.append(page)
        after = page.through
    return pages


def test_a_sample_counts_each_kind_of_end_once_from_the_audit(backend: Store) -> None:
    start = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert start.activity == Activity(through=start.audit_id)
    event_id = _submit(backend)
    _play(backend)
    assert backend.event(event_id).state == "failed"
    (activity,) = _through(backend, start.audit_id)
    assert activity.submitted == {"gauged": 1}
    assert activity.finished == {("gauged", "failed"): 1}
    assert activity.lease_expirations == 1
    assert activity.stale_reports == 1  # the replayed report is not stale
    assert sorted(activity.run_s) == [1.5, 2.0, 3.0]  # the lost attempt did not run to an end
    # one per task that ended after a claim: first[p1], second[p1] and first[p2] (its last attempt)
    assert len(activity.queue_wait_s) == len(activity.dispatch_latency_s) == 3
    assert all(0.0 <= s < 60.0 for s in activity.queue_wait_s + activity.dispatch_latency_s)


def test_reads_in_small_pages_count_the_same_as_one_read(backend: Store) -> None:
    after = backend.metrics_sample(None, None, LIMIT, STALE_S).audit_id
    _submit(backend)
    _play(backend)
    (whole,) = _through(backend, after)
    pages = _through(backend, after, limit=2)
    assert len(pages) > 3
    assert sum(p.lease_expirations for p in pages) == whole.lease_expirations
    assert sum(p.stale_reports for p in pages) == whole.stale_reports
    assert sorted(s for p in pages for s in p.run_s) == sorted(whole.run_s)
    assert sum(len(p.queue_wait_s) for p in pages) == len(whole.queue_wait_s)
    assert [p.submitted for p in pages if p.submitted] == [whole.submitted]
    assert [p.finished for p in pages if p.finished] == [whole.finished]


def _gauges(sample: MetricsSample) -> tuple[object, ...]:
    tasks = {state: n for state, n in sample.tasks.items() if n}
    return (dict(sample.events), tasks, sample.workers_online, sample.workers_stale, sample.slots_used,
            sample.slots_free)  # fmt: skip


def test_gauges_show_queue_depth_workers_and_slots_now(backend: Store) -> None:
    empty = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert _gauges(empty) == ({}, {}, 0, 0, 0, 0) and empty.oldest_ready_at is None
    _submit(backend)
    backend.register_worker(WorkerInfo("w1", "w1", "host", 1, {"slots": 4}))
    backend.register_worker(WorkerInfo("w2", "w2", "host", 2, {"slots": 8}))
    backend.register_worker(WorkerInfo("gone", "gone", "host", 3, {"slots": 8}))
    backend.deregister_worker("gone")
    queued = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert _gauges(queued) == ({"running": 1}, {"ready": 2, "pending": 2}, 2, 0, 0, 12)
    assert queued.oldest_ready_at is not None and 0 <= queued.at - queued.oldest_ready_at < 60
    claim = _one(backend, "w1")
    running = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert _gauges(running) == ({"running": 1}, {"ready": 1, "pending": 2, "running": 1}, 2, 0, 1, 11)
    silent = backend.metrics_sample(None, None, LIMIT, stale_after_s=1e-9)
    assert (silent.workers_online, silent.workers_stale, silent.slots_used, silent.slots_free) == (0, 2, 0, 0)
    backend.report("w1", [_ended(claim, Outcome.SUCCEEDED, 0.1)])
    after = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert _gauges(after)[1] == {"ready": 2, "pending": 1, "succeeded": 1}


def test_the_event_centre_is_counted_from_the_audit_and_its_gauges_read_now(backend: Store) -> None:
    from baton.clock import FakeClock
    from baton.controller.duties import Deadlines
    from baton.controller.schedules import Ticker
    from baton.graphs.spec import load_graph_text
    from baton.store.records import PruneRequest

    start = backend.metrics_sample(None, None, LIMIT, STALE_S).audit_id
    backend.register_graph(
        load_graph_text("""
graph: metered
retention: {succeeded_days: 1, failed_days: 1, cancelled_days: 1}
schedules:
  hourly: {cron: "0 * * * *", catch_up: latest, overlap: allow}
nodes: {only: {run: "m:f", partitioned: false}}
""")
    )
    clock = FakeClock(wall_start=backend.schedule("hourly").handled_through)
    begun = clock.wall()
    ahead = 5 * 3600 + 1800  # five or six fires gone by: the latest is raised, the rest missed
    if (begun + ahead) % 3600 < 120:  # (unless the newest were under a minute old: on time, raised too)
        ahead += 120
    clock.advance(ahead)
    fires = int(clock.wall() // 3600 - begun // 3600)
    Ticker(30.0, clock).run(backend, clock.now())
    late = _submit(backend)
    backend.cancel(late)
    metered = backend.latest_graph("metered").id
    event, _ = backend.submit(metered, {}, deadline_at=time.time() - 1)
    backend.cancel(event.id)  # ends past its deadline: marked missed as it ends
    backend.submit(metered, {}, key="late", deadline_at=time.time() - 1)  # past it, unfinished
    Deadlines(15.0, FakeClock(wall_start=time.time())).run(backend, 0.0)  # marked at risk and missed
    pages = _through(backend, start)
    assert sum(p.fires_missed for p in pages) == fires - 1
    assert sum(p.deadlines_missed for p in pages) == 2
    since = backend.metrics_sample(None, None, LIMIT, STALE_S).audit_id
    while backend.prune(PruneRequest(time.time() + 2 * 86_400.0)).events:
        pass
    assert sum(p.events_pruned for p in _through(backend, since)) == 1  # the cancelled metered one
    sample = backend.metrics_sample(None, None, LIMIT, STALE_S)
    assert sample.schedules == {"active": 1} and sample.backfills_running == 0 and sample.events_at_risk == 1
