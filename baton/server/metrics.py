"""``GET /metrics``: the server's Prometheus metrics (``baton_`` names, seconds, ``_total`` counters).

Two sources, one registry per app (never the process-wide default, so two apps in one process
share nothing):

- **in-process**: what passes through this server — HTTP requests and their latency by route
  *template* (``/api/v1/events/{event_id}``, never the path asked for; a path no route knows is
  ``unmatched``) and the size of each claim batch it hands out;
- **the store**: one background thread reads :meth:`~baton.store.protocol.MetricsStore.metrics_sample`
  every ``metrics_refresh_s`` (5 s): the gauges of the state now, and, from the audit, what every
  process did since (events submitted and finished, lease expiries, stale reports, queue-wait,
  run and dispatch-latency times, webhook deliveries' tries), so the counters cover
  database-connected workers and controllers too. They count from the server's start, as
  Prometheus counters do.

A scrape only renders what is cached: it never reads the database. Labels are bounded: no event,
task or attempt ids, partitions or raw paths; at most ``MAX_EVENT_TYPES`` event types, the rest
as ``other``. ``docs/metrics.md`` lists every metric.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton.access import Action
from baton.engine.states import TaskState
from baton.errors import Forbidden
from baton.server.auth import needs, token_of
from baton.server.background import Background
from baton.server.bodies import BodyBudget
from baton.server.door import GuardedRoute
from baton.server.state import state_of
from baton.store.protocol import MetricsStore
from baton.store.records import Activity, ClaimResult, MetricsSample

log = logging.getLogger("baton.api")
REFRESH_ROWS = 20_000  # audit rows counted per refresh; a backlog is caught up by the next ones
MAX_EVENT_TYPES = 100  # distinct event_type label values; later types are counted as OTHER
OTHER = "other"
CLOSE_REASONS = ("evicted", "refused", "timed_out")  # see baton.server.connections
UNMATCHED = "unmatched"
DELIVERY_OUTCOMES = ("delivered", "failed", "expired")
STOP_WAIT_S = 5.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
RUN_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
HTTP_BUCKETS = (0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 30.0)
BATCH_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64)
TEXT_FORMAT = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus reads (the names need no escaping)


class _EventTypes:
    """The first ``cap`` event types seen keep their name as a label; any later one is ``other``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.named: set[str] = set()

    def label(self, event_type: str) -> str:
        if event_type not in self.named and len(self.named) < self.cap:
            self.named.add(event_type)
        return event_type if event_type in self.named else OTHER


class _WithoutCreated(Collector):
    """The library's counters and histograms without their ``_created`` series (the text format
    does not need them, and they would double the series of every counter)."""

    def __init__(self, metrics: Sequence[Counter | Histogram]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        for metric in self.metrics:
            for family in metric.collect():
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                yield family


SCHEDULE_STATES = ("active", "paused", "ended", "retired")


class _StoreGauges(Collector):
    """The gauges of the last sample read (none before the first read)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        if self.metrics.last is None:
            return
        sample, at = self.metrics.last
        yield _labelled("baton_events", "Unfinished events by state.", sample.events, ("submitted", "running"))
        yield _labelled(
            "baton_tasks", "Tasks of running events by state (the queue depth).", sample.tasks, list(TaskState)
        )
        age = 0.0 if sample.oldest_ready_at is None else max(0.0, sample.at - sample.oldest_ready_at)
        yield GaugeMetricFamily(
            "baton_oldest_ready_task_age_seconds", "How long the longest-waiting claimable task has waited.", value=age
        )
        slots = {"used": sample.slots_used, "free": sample.slots_free}
        yield _labelled("baton_worker_slots", "Slots of online workers: used by running tasks, or free.", slots)
        workers = {"online": sample.workers_online, "stale": sample.workers_stale}
        yield _labelled("baton_workers", "Active workers: online, or stale (silent for over a lease).", workers)
        pending = sample.deliveries_pending
        yield GaugeMetricFamily(
            "baton_webhook_deliveries_pending", "Webhook deliveries not yet delivered nor given up.", value=pending
        )
        yield GaugeMetricFamily(
            "baton_events_at_risk",
            "Unfinished events whose forecast end is past their deadline.",
            value=sample.events_at_risk,
        )
        yield _labelled("baton_schedules", "Schedules by state.", sample.schedules, SCHEDULE_STATES)
        yield GaugeMetricFamily(
            "baton_backfills_running", "Backfills still raising fires.", value=sample.backfills_running
        )
        yield GaugeMetricFamily(
            "baton_tasks_parked", "Ready tasks parked until their concurrency key has a free slot.",
            value=sample.tasks_parked,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "baton_limit_keys_full", "Concurrency keys with as many tasks running as their limit.",
            value=sample.limit_keys_full,
        )  # fmt: skip
        yield GaugeMetricFamily("baton_pauses", "Pauses in force (events, graphs, nodes of events).",
                                value=sample.pauses)  # fmt: skip
        yield GaugeMetricFamily(
            "baton_events_queued",
            "Submitted events of graphs whose event limit queues them, waiting for a place.",
            value=sample.events_queued,
        )
        yield GaugeMetricFamily(
            "baton_tasks_paused", "Pending and ready tasks a pause holds out of the claims.", value=sample.tasks_paused
        )
        yield GaugeMetricFamily(
            "baton_tasks_rate_waiting", "Ready tasks parked until their rate limit allows a start.",
            value=sample.tasks_rate_waiting,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "baton_tasks_held", "Ready tasks workers hold beyond their free slots (not running, no attempt used).",
            value=sample.tasks_held,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "baton_metrics_refreshed_timestamp_seconds", "When the database-derived values were read.", value=at
        )


class _Door(Collector):
    """The server's connections and request bodies, read from :mod:`baton.server.connections` and
    :class:`~baton.server.bodies.BodyBudget` at each scrape (both in memory)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        if self.metrics.bodies is not None:
            yield GaugeMetricFamily("baton_http_body_budget_used_bytes",
                                    "Request bodies being read, parsed and handled now (of body_budget_bytes).",
                                    value=self.metrics.bodies.used)  # fmt: skip
        if self.metrics.connections is None:
            return
        open_now, closed = self.metrics.connections()
        yield GaugeMetricFamily("baton_http_connections", "Open HTTP connections.", value=open_now)
        family = CounterMetricFamily("baton_http_connections_closed", "Connections the server closed or refused "
                                     "to protect itself, by reason.", labels=["reason"])  # fmt: skip
        for reason in CLOSE_REASONS:
            family.add_metric([reason], float(closed.get(reason, 0)))
        yield family


def _labelled(name: str, doc: str, values: Mapping[str, int], keys: Iterable[str] | None = None) -> GaugeMetricFamily:
    """A gauge by ``state``: every key of ``keys`` (0 when missing), so the series stay put."""
    family = GaugeMetricFamily(name, doc, labels=["state"])
    for key in keys if keys is not None else values:
        family.add_metric([key], float(values.get(key, 0)))
    return family


class Metrics(Background):
    """Every metric of one app, and the thread that reads the store's part of them."""

    thread_name = "baton-metrics"
    stop_wait_s = STOP_WAIT_S

    def __init__(self, store: MetricsStore, refresh_s: float, stale_after_s: float) -> None:
        super().__init__()
        self.store = store
        self.refresh_s = refresh_s
        self.stale_after_s = stale_after_s
        self.last: tuple[MetricsSample, float] | None = None  # the last sample, and when (Unix time) it was read
        self._after: int | None = None  # the last audit id counted
        self._seen: int | None = None  # the newest audit id at the previous read: counted up to next
        self._types = _EventTypes(MAX_EVENT_TYPES)
        self.registry = CollectorRegistry()
        self._define()
        self.bodies: BodyBudget | None = None  # set by the app
        self.connections: Callable[[], tuple[int, Mapping[str, int]]] | None = None  # set by the server
        self.registry.register(_StoreGauges(self))
        self.registry.register(_Door(self))
        self.registry.register(_WithoutCreated(self._library))

    def _define(self) -> None:
        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            made = Counter(name, doc, labels, registry=None)
            self._library.append(made)
            return made

        def histogram(name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> Histogram:
            made = Histogram(name, doc, labels, registry=None, buckets=buckets)
            self._library.append(made)
            return made

        self._library: list[Counter | Histogram] = []
        self.submitted = counter("baton_events_submitted_total", "Events submitted.", ["event_type"])
        self.finished = counter(
            "baton_events_finished_total", "Events finished, by final state.", ["event_type", "state"]
        )
        self.lease_expirations = counter(
            "baton_lease_expirations_total", "Attempts ended because their lease expired (worker lost)."
        )
        self.stale_reports = counter(
            "baton_stale_reports_total", "Reports refused because their attempt was no longer current."
        )
        self.deliveries = counter(
            "baton_webhook_deliveries_total",
            "Webhook delivery tries by outcome: delivered, failed (refused or unanswered), expired (given up).",
            ["outcome"],
        )
        for outcome in DELIVERY_OUTCOMES:  # every series from the start, at 0
            self.deliveries.labels(outcome)
        self.deadlines_missed = counter(
            "baton_deadlines_missed_total", "Events whose deadline passed before they ended (marked once each)."
        )
        self.fires_missed = counter(
            "baton_schedule_fires_missed_total",
            "Schedules' fires not raised: outside the catch-up window or policy, or skipped by overlap.",
        )
        self.events_pruned = counter("baton_events_pruned_total", "Finished events removed by retention.")
        self.rate_refused = counter(
            "baton_rate_starts_refused_total",
            "Task starts a rate limit refused (each parks its task until a start is allowed).",
        )
        self.partitions_discovered = counter(
            "baton_partitions_discovered_total",
            "Partitions planned from discovery tasks' results (new keys only: a re-run's known ones are not counted).",
        )
        self.tasks_aged = counter(
            "baton_task_ageing_raises_total",
            "Raises of a waiting task's priority by ageing (one per task per step).",
        )
        self.hold_expiries = counter(
            "baton_hold_expiries_total", "Held tasks returned to the queue because their worker stopped renewing them."
        )
        self.hold_recalls = counter(
            "baton_hold_recalls_total",
            "Held tasks asked back from their workers (a pause, a higher priority waiting, an idle worker).",
        )
        self.refresh_errors = counter(
            "baton_metrics_refresh_errors_total", "Reads of the database-derived values that failed."
        )
        self.queue_wait = histogram(
            "baton_task_queue_wait_seconds", "From claimable to claimed, per task end.", LATENCY_BUCKETS
        )
        self.dispatch = histogram(
            "baton_task_dispatch_latency_seconds",
            "From ready (last dependency done) to claimed, per task end.",
            LATENCY_BUCKETS,
        )
        self.run = histogram("baton_task_run_seconds", "How long attempts ran, as their workers report.", RUN_BUCKETS)
        self.held = histogram(
            "baton_task_held_seconds", "How long held tasks waited at their worker before it started them.",
            LATENCY_BUCKETS,
        )  # fmt: skip
        self.claim_batch = histogram(
            "baton_claim_batch_size", "Tasks handed out per claim served by this server.", BATCH_BUCKETS
        )
        self.http_requests = counter(
            "baton_http_requests_total", "HTTP requests answered, by route template.", ["route", "code_class"]
        )
        self.http_seconds = histogram(
            "baton_http_request_seconds", "HTTP request latency, by route template.", HTTP_BUCKETS, ["route"]
        )

    # --- in-process observations ------------------------------------------------------------

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, f"{status // 100}xx").inc()
        self.http_seconds.labels(route).observe(seconds)

    def observe_claim(self, tasks: int) -> None:
        self.claim_batch.observe(tasks)

    def observe_holds(self, result: ClaimResult) -> None:
        for seconds in result.held_s:
            self.held.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- the store's part -------------------------------------------------------------------

    def refresh(self) -> None:
        """One read of the store: new gauges, and the activity since the last read counted. The
        first read only finds where the audit stands: counters count from the server's start."""
        sample = self.store.metrics_sample(self._after, self._seen, REFRESH_ROWS, self.stale_after_s)
        if self._after is not None:
            self._count(sample.activity)
        self._after, self._seen = sample.activity.through, sample.audit_id
        self.last = (sample, time.time())  # one reference: a scrape never sees half of two reads

    def _count(self, activity: Activity) -> None:
        for event_type, n in activity.submitted.items():
            self.submitted.labels(self._types.label(event_type)).inc(n)
        for (event_type, state), n in activity.finished.items():
            self.finished.labels(self._types.label(event_type), state).inc(n)
        for outcome, n in activity.deliveries.items():
            self.deliveries.labels(outcome).inc(n)
        self.deadlines_missed.inc(activity.deadlines_missed)
        self.fires_missed.inc(activity.fires_missed)
        self.events_pruned.inc(activity.events_pruned)
        self.rate_refused.inc(activity.rate_starts_refused)
        self.tasks_aged.inc(activity.tasks_aged)
        self.partitions_discovered.inc(activity.partitions_discovered)
        self.hold_expiries.inc(activity.hold_expiries)
        self.hold_recalls.inc(activity.hold_recalls)
        self.lease_expirations.inc(activity.lease_expirations)
        self.stale_reports.inc(activity.stale_reports)
        for histogram, values in ((self.queue_wait, activity.queue_wait_s), (self.run, activity.run_s),
                                  (self.dispatch, activity.dispatch_latency_s)):  # fmt: skip
            for value in values:
                histogram.observe(value)

    def try_refresh(self) -> bool:
        """:meth:`refresh`, or, when the store cannot be read, keep the last values, count the
        failure and say so (the next round tries again)."""
        try:
            self.refresh()
        except Exception as exc:
            self.refresh_errors.inc()
            log.warning("cannot read the metrics from the store: %s", exc)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_refresh()
            self._stop.wait(self.refresh_s)


# --- HTTP ------------------------------------------------------------------------------------


class HttpMetrics:
    """ASGI middleware: count each HTTP request and time it to its last byte, by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: list[tuple[re.Pattern[str], str]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe_request(self.route_template(scope), status, time.perf_counter() - started)

    def route_template(self, scope: Scope) -> str:
        """The template of the route that answered, never the path itself; for a request refused
        before routing (a body over the cap), the template its path fits; else ``unmatched``."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        if self._templates is None:
            self._templates = _templates(scope.get("app"))
        asked = scope.get("path", "")
        return next((template for pattern, template in self._templates if pattern.match(asked)), UNMATCHED)


def _templates(app: Any) -> list[tuple[re.Pattern[str], str]]:
    """The app's path templates (from its OpenAPI document), each with a pattern that matches its paths."""
    paths = app.openapi().get("paths", {}) if hasattr(app, "openapi") else {}
    return [(compile_path(template)[0], template) for template in paths]


router = APIRouter(tags=["metrics"], route_class=GuardedRoute)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {TEXT_FORMAT: {}}, "description": "Prometheus text format"}},
    **needs(Action.READ),
)
async def scrape(request: Request) -> Response:
    """Every metric in Prometheus text format, rendered from memory (see ``docs/metrics.md``).
    The counts cover every event type, so a token limited to some is refused."""
    if token_of(request).event_types is not None:
        raise Forbidden("/metrics counts every event type: scrape with a token not limited to event types")
    return Response(state_of(request).metrics.render(), media_type=TEXT_FORMAT)
