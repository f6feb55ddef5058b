"""``GET /metrics`` on a real server, on both backends: the counters, gauges and histograms move
by exactly what happened (through the server and straight in the store), labels stay bounded,
and a scrape renders what the background read cached without touching the database."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from hooks import SECRET, cancelled_event, dispatch
from prometheus_client.parser import text_string_to_metric_families
from serving import Served, free_port, mint

from baton.access import Role
from baton.controller.loop import Controller
from baton.engine.states import Outcome
from baton.graphs.builder import GraphBuilder
from baton.graphs.params import validate_params
from baton.server.app import create_app
from baton.server.metrics import Metrics, _EventTypes
from baton.settings import Settings
from baton.store import open_store
from baton.store.protocol import Store
from baton.store.records import ClaimRequest, DeliveryResult, Report

TYPE = "metered"
DEADLINE_S = 30.0
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _graph(backend: Store, event_type: str = TYPE) -> int:
    g = GraphBuilder(event_type, defaults={"retries": 1, "retry_delay_s": 0.0, "retry_jitter": 0.0})
    g.param("parts", "list", default=["p1", "p2"]).partitions(param="parts")
    g.python("first", "m:f")
    g.python("second", "m:f", after=["first"])
    return backend.register_graph(g.build()).id


def scrape(http: httpx.Client) -> Samples:
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_until(http: httpx.Client, check: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``check`` holds (the background read runs every 0.1 s here)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        samples = scrape(http)
        if check(samples):
            return samples
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE_S} s; last scrape {samples}"
        time.sleep(0.05)


def refreshed(samples: Samples) -> float:
    return value(samples, "baton_metrics_refreshed_timestamp_seconds")


def settled(http: httpx.Client, check: Callable[[Samples], bool], what: str) -> Samples:
    """Wait for ``check``, then for two more background reads, and check again: a value that got
    there by counting something twice would have moved on."""
    first = wait_until(http, check, what)
    later = wait_until(http, lambda s: refreshed(s) > refreshed(first) + 0.15, f"{what}, two reads on")
    assert check(later), f"{what}: moved on after it got there: {later}"
    return later


def _report(task_id: int, attempt: int, run_s: float, outcome: Outcome = Outcome.SUCCEEDED) -> dict[str, Any]:
    end = time.time()
    return {"task_id": task_id, "attempt": attempt, "outcome": outcome.value, "started_at": end - run_s,
            "finished_at": end, "result": "1"}  # fmt: skip


class Remote:
    """A remote task server speaking /worker/v1 by hand."""

    def __init__(self, http: httpx.Client, worker_id: str = "r1") -> None:
        self.http = http
        answer = http.post("/worker/v1/register", json={"id": worker_id, "name": worker_id, "host": "h", "pid": 1,
                                                         "capacity": {"slots": 4}})  # fmt: skip
        assert answer.status_code == 200, answer.text
        self.id = worker_id

    def claim(self, most: int) -> list[dict[str, Any]]:
        body = {"worker_id": self.id, "claim_id": uuid.uuid4().hex, "free": {"slots": 4}, "max_tasks": most}
        answer = self.http.post("/worker/v1/claim", json=body)
        assert answer.status_code == 200, answer.text
        claims: list[dict[str, Any]] = answer.json()["claims"]
        return claims

    def report(self, *reports: dict[str, Any]) -> list[str]:
        answer = self.http.post("/worker/v1/report", json={"worker_id": self.id, "reports": list(reports)})
        assert answer.status_code == 200, answer.text
        return [a["answer"] for a in answer.json()["answers"]]


def _run_event(backend: Store, server: Served, client: str, worker: str) -> int:
    """Submit over HTTP, then run the event with a remote worker and a database-connected one:
    runs of 2, 1, 0.5 and 0.25 s reported; one lease lost (the database worker's); one stale
    report (its late one) and one replayed report."""
    with server.client(client) as http:
        created = http.post("/api/v1/events", json={"type": TYPE})
        assert created.status_code == 201, created.text
    Controller(backend).expand()
    with server.client(worker) as http:
        remote = Remote(http)
        (first,) = remote.claim(1)
        assert remote.report(_report(first["task_id"], 1, 2.0)) == ["recorded"]
        (lost,) = backend.claim(
            ClaimRequest("db1", {"slots": 1}, frozenset(), 1, -1.0)
        ).claims  # a lease already run out
        assert backend.expire_leases() == 1  # attempt 1 lost, retried
        late = Report(lost.task_id, 1, Outcome.SUCCEEDED, time.time() - 1, time.time(), result_json="1")
        assert backend.report("db1", [late]).stale == [(lost.task_id, 1)]
        two = remote.claim(2)
        assert len(two) == 2 and lost.task_id in {c["task_id"] for c in two}
        runs = [_report(c["task_id"], c["attempt"], run_s) for c, run_s in zip(two, (1.0, 0.5), strict=True)]
        assert remote.report(*runs) == ["recorded", "recorded"]
        (last,) = remote.claim(2)
        final = _report(last["task_id"], last["attempt"], 0.25)
        assert remote.report(final) == ["recorded"]
        assert remote.report(final) == ["duplicate"]
        return int(last["event_id"])


@contextmanager
def quick(backend: Store, folder: Path) -> Iterator[Served]:
    """A real server over the store that reads the database-derived values every 0.1 s."""
    server = Served(backend.url, folder, env={"BATON_METRICS_REFRESH_S": "0.1"}).start()
    try:
        yield server
    finally:
        server.stop()


def test_counters_gauges_and_histograms_move_by_exactly_what_happened(backend: Store, tmp_path: Path) -> None:
    _graph(backend)
    client, worker, viewer = mint(backend, Role.CLIENT), mint(backend, Role.WORKER), mint(backend, Role.VIEWER)
    with quick(backend, tmp_path) as server, server.client(viewer) as http:
        start = wait_until(http, lambda s: refreshed(s) > 0, "the first read")
        assert value(start, "baton_events_submitted_total", event_type=TYPE) == 0
        event_id = _run_event(backend, server, client, worker)
        assert backend.event(event_id).state == "succeeded"

        def done(s: Samples) -> bool:
            return value(s, "baton_events_finished_total", event_type=TYPE, state="succeeded") == 1

        end = settled(http, done, "the event's end counted")
        assert value(end, "baton_events_submitted_total", event_type=TYPE) == 1
        assert value(end, "baton_lease_expirations_total") == 1
        assert value(end, "baton_stale_reports_total") == 1  # the replayed report is not stale
        assert value(end, "baton_task_run_seconds_count") == 4  # the lost attempt did not run to an end
        assert value(end, "baton_task_run_seconds_sum") == 3.75
        assert value(end, "baton_task_run_seconds_bucket", le="0.5") == 2
        for histogram in ("baton_task_queue_wait_seconds", "baton_task_dispatch_latency_seconds"):
            assert value(end, f"{histogram}_count") == 4  # one per task
        assert value(end, "baton_claim_batch_size_count") == 3  # the remote claims; not the database worker's
        assert value(end, "baton_claim_batch_size_sum") == 4
        assert value(end, "baton_claim_batch_size_bucket", le="1.0") == 2
        assert value(end, "baton_http_requests_total", route="/worker/v1/claim", code_class="2xx") == 3
        assert value(end, "baton_http_requests_total", route="/worker/v1/report", code_class="2xx") == 4
        assert value(end, "baton_http_requests_total", route="/api/v1/events", code_class="2xx") == 1
        assert value(end, "baton_http_request_seconds_count", route="/worker/v1/report") == 4
        # the state now: nothing queued, the remote worker online and idle
        assert {v for (n, _), v in end.items() if n in ("baton_tasks", "baton_events")} == {0.0}
        assert value(end, "baton_workers", state="online") == 1
        assert value(end, "baton_worker_slots", state="free") == 4
        assert value(end, "baton_worker_slots", state="used") == 0
        assert len(end) <= 300  # series, with most routes a deployment uses seen


def test_gauges_show_the_queue_and_the_slots_in_use(backend: Store, tmp_path: Path) -> None:
    graph_id = _graph(backend)
    worker, viewer = mint(backend, Role.WORKER), mint(backend, Role.VIEWER)
    backend.submit(graph_id, {"parts": ["p1", "p2"]})
    Controller(backend).expand()
    with quick(backend, tmp_path) as server:
        with server.client(worker) as http:
            Remote(http).claim(1)
        with server.client(viewer) as http:
            now = wait_until(http, lambda s: value(s, "baton_tasks", state="running") == 1, "a running task")
        assert value(now, "baton_tasks", state="ready") == 1
        assert value(now, "baton_tasks", state="pending") == 2
        assert value(now, "baton_events", state="running") == 1
        assert value(now, "baton_worker_slots", state="used") == 1
        assert value(now, "baton_worker_slots", state="free") == 3
        assert value(now, "baton_oldest_ready_task_age_seconds") > 0


def test_labels_are_route_templates_and_never_ids_partitions_or_paths(backend: Store, tmp_path: Path) -> None:
    graph_id = _graph(backend)
    event, _ = backend.submit(graph_id, validate_params(backend.graph_of(graph_id), {}))
    Controller(backend).expand()
    viewer, client = mint(backend, Role.VIEWER), mint(backend, Role.CLIENT)
    with quick(backend, tmp_path) as server:
        with server.client(client) as http:
            assert http.get(f"/api/v1/events/{event.id}").status_code == 200
            assert http.get(f"/api/v1/events/{event.id}/tasks", params={"partition": "p1"}).status_code == 200
            assert http.get(f"/no/such/{event.id}").status_code == 404
            assert http.delete(f"/api/v1/events/{event.id}").status_code == 405
            too_big = http.post("/api/v1/events", content=b"x" * (3 * 1024 * 1024),  # refused unread
                                headers={"Content-Type": "application/json"})  # fmt: skip
            assert too_big.status_code == 413
        with server.client(mint(backend, Role.VIEWER, event_types=[TYPE])) as http:
            refused = http.get("/metrics")  # the counts cover every event type
            assert refused.status_code == 403 and "event types" in refused.json()["detail"]
        with server.client(mint(backend, Role.WORKER)) as http:
            assert http.get("/metrics").status_code == 403
        with server.client(viewer) as http:
            scrape(http)
            samples = wait_until(http, lambda s: refreshed(s) > 0, "a read")
        assert value(samples, "baton_events_submitted_total", event_type=TYPE) == 0  # before the server started
        routes = {dict(labels)["route"] for (_, labels) in samples if "route" in dict(labels)}
        assert routes == {"/api/v1/events/{event_id}", "/api/v1/events/{event_id}/tasks", "unmatched",
                          "/api/v1/events", "/metrics", "/healthz"}  # fmt: skip
        codes = {dict(labels)["code_class"] for (_, labels) in samples if "code_class" in dict(labels)}
        assert codes == {"2xx", "4xx"}
        forbidden = {str(event.id), "p1", "p2", *(str(t.id) for t in backend.tasks(event.id))}
        values = {v for (_, labels) in samples for k, v in labels if k != "le"}
        assert not values & forbidden
        assert len(samples) <= 300


class CountingStore:
    """A real store, with every call counted (but the change feed's, which a thread of the server
    blocks in all the time)."""

    FEED = frozenset({"wait_for_change", "change_fd"})

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.store, name)
        if not callable(found) or name in self.FEED:
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return found(*args, **kwargs)

        return counted


@contextmanager
def serving_in_process(store: Any, settings: Settings) -> Iterator[str]:
    """The app on a loopback port, run by uvicorn in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store, settings), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_S)


def test_a_scrape_reads_nothing_from_the_store_and_shows_the_last_read(backend: Store) -> None:
    graph_id = _graph(backend)
    viewer = mint(backend, Role.VIEWER)
    counting = CountingStore(backend)
    settings = Settings(metrics_refresh_s=300.0, token_cache_s=300.0)
    with (
        serving_in_process(counting, settings) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}) as http,
    ):
        before = wait_until(http, lambda s: refreshed(s) > 0, "the first read")
        assert counting.calls.count("metrics_sample") == 1
        backend.submit(graph_id, {"parts": ["p1", "p2"]})
        Controller(backend).expand()  # the store changes; the next read is 300 s away
        calls = len(counting.calls)
        scrapes = [scrape(http) for _ in range(20)]
        assert counting.calls[calls:] == []  # not one call into the store (the token is cached too)
        for samples in scrapes:
            for name in ("baton_tasks", "baton_events", "baton_metrics_refreshed_timestamp_seconds"):
                assert {k: v for k, v in samples.items() if k[0] == name} == {
                    k: v for k, v in before.items() if k[0] == name
                }
        assert value(scrapes[-1], "baton_tasks", state="ready") == 0  # what the store held at the read


def test_two_apps_in_one_process_share_no_metric(backend: Store) -> None:
    settings = Settings(metrics_refresh_s=300.0)
    one, two = (create_app(backend, settings).state.baton.metrics for _ in range(2))
    one.observe_claim(5)
    one.observe_request("/metrics", 200, 0.01)
    assert b"baton_claim_batch_size_sum 5.0" in one.render()
    assert b"baton_claim_batch_size_sum 0.0" in two.render()
    assert b"baton_http_requests_total{" not in two.render()


def test_event_types_past_the_cap_are_counted_as_other(backend: Store) -> None:
    for name in ("t1", "t2", "t3"):
        graph_id = _graph(backend, name)
        backend.submit(graph_id, {})
    labels = _EventTypes(2)
    assert [labels.label(t) for t in ("t1", "t2", "t3", "t1", "t4")] == ["t1", "t2", "other", "t1", "other"]
    metrics = Metrics(backend, refresh_s=300.0, stale_after_s=30.0)
    metrics._types = _EventTypes(2)
    metrics._after = 0  # count the audit from its start, as if the server had started before it
    metrics.refresh()  # finds the newest id: the rows up to it have all committed
    metrics.refresh()
    text = metrics.render().decode()
    assert 'baton_events_submitted_total{event_type="t1"} 1.0' in text
    assert 'baton_events_submitted_total{event_type="t2"} 1.0' in text
    assert 'baton_events_submitted_total{event_type="other"} 1.0' in text
    assert 't3"' not in text


def test_a_failed_read_keeps_the_last_values_and_is_counted(store_url: str) -> None:
    store = open_store(store_url, Settings(reconnect_s=0.0))
    metrics = Metrics(store, refresh_s=300.0, stale_after_s=30.0)
    assert metrics.try_refresh()
    before = metrics.render().decode()
    store.close()
    assert not metrics.try_refresh()
    after = metrics.render().decode()
    assert "baton_metrics_refresh_errors_total 1.0" in after
    kept = [line for line in before.splitlines() if line.startswith(("baton_tasks", "baton_metrics_refreshed"))]
    assert kept and all(line in after.splitlines() for line in kept)


def test_webhook_deliveries_are_counted_by_outcome_and_the_pending_ones_gauged(backend: Store) -> None:
    metrics = Metrics(backend, refresh_s=300.0, stale_after_s=30.0)
    metrics.refresh()  # where the audit stands: counters count from here
    assert 'baton_webhook_deliveries_total{outcome="expired"} 0.0' in metrics.render().decode()
    backend.add_webhook("ops", "https://hooks.example/ops", SECRET, ["event.cancelled"])
    for _ in range(3):
        cancelled_event(backend)
    dispatch(backend)
    now = time.time() + 1
    a, b, c = backend.claim_deliveries(now, 10, 60.0)
    backend.record_deliveries([DeliveryResult(a.id, 1, now, 204, None, None),
                               DeliveryResult(b.id, 1, now, 500, "HTTP 500", now + 5),
                               DeliveryResult(c.id, 1, now, None, "ConnectError", now + 10**6)], 3600.0)  # fmt: skip
    metrics.refresh()
    metrics.refresh()  # counts up to the newest id the previous read saw
    text = metrics.render().decode()
    counted = {"delivered": 1, "failed": 2, "expired": 1}
    for outcome, n in counted.items():
        assert f'baton_webhook_deliveries_total{{outcome="{outcome}"}} {n}.0' in text, outcome
    assert "baton_webhook_deliveries_pending 1.0" in text
