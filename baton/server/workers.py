"""``/worker/v1``: the task communication server. Remote task servers reach the store only
through these routes, holding a URL and a ``worker`` token; the server holds the database.

Each route is one verb of :class:`~baton.store.protocol.WorkerLink`, so fencing, leases and
idempotency live once, in the store's transactions, whichever way a worker connects:

- ``terms``: the server's lease, heartbeat, long poll and caps, which its workers keep instead
  of their own settings;
- ``register``: declare capacity and labels (a token limited to labels refuses others);
- ``claim``: hand in reports and take up to 64 tasks in one transaction (claims arriving together
  from several workers share one: :mod:`baton.server.gathering`); a retried ``claim_id``
  answers the same attempts (the id is kept with the tasks, so a restarted server answers it
  too); each report is answered ``recorded``, ``duplicate`` or ``stale``;
- ``wait``: an idle worker's long poll (``long_poll_s``), answered as soon as work may have
  appeared (see :mod:`baton.server.changes`), the server restarted, or it is stopping;
- ``report`` (reports alone, gathered with the claims as a claim of nothing), ``heartbeat`` (one
  transaction of three statements per worker, whatever it holds; its answer says which attempts
  to stop), ``logs`` (running attempts' new output, for their live logs; fenced like reports,
  and by offset), ``leave``, ``graphs/{id}``.

A worker's id on the server is the one it chose plus its token's id, so a token can neither
speak for another token's workers nor collide with them.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from baton.access import Action, TokenRecord
from baton.errors import Forbidden, NotFound
from baton.server.auth import needs, token_of
from baton.server.door import GuardedRoute, ObjectId
from baton.server.state import link_of, reads_of, state_of
from baton.store.records import ClaimRequest, Report, WorkerInfo
from baton.wire.api import GraphOut
from baton.wire.workers import (
    AnswerOut,
    ClaimIn,
    ClaimOut,
    ClaimWire,
    EventWire,
    HeartbeatIn,
    HeartbeatOut,
    LeaveIn,
    LogsIn,
    LogsOut,
    Registered,
    ReportsIn,
    ReportsOut,
    StopOut,
    Terms,
    WaitIn,
    WaitOut,
    WorkerIn,
)

router = APIRouter(prefix="/worker/v1", tags=["task servers"], route_class=GuardedRoute)
WORK = needs(Action.WORK)
BATCH = needs(Action.WORK, body="batch")  # reports and live logs: the large bodies


def answered(body: BaseModel) -> Response:
    """The answer as JSON, encoded once: the hot routes skip FastAPI's second validation of what
    they return (their ``response_model`` still documents it)."""
    return Response(body.model_dump_json(), media_type="application/json")


def scoped(worker_id: str, token: TokenRecord) -> str:
    """The id a worker has on the server: its own, tied to the token it speaks with."""
    return f"{worker_id}@t{token.id}"


def _labels(token: TokenRecord, labels: Sequence[str]) -> frozenset[str]:
    wanted = frozenset(labels)
    problem = token.labels_problem(wanted)
    if problem:
        raise Forbidden(problem)
    return wanted


def answers(
    reports: Sequence[Report], stale: Sequence[tuple[int, int]], duplicate: Sequence[tuple[int, int]]
) -> list[AnswerOut]:
    stale_set, duplicate_set = set(stale), set(duplicate)

    def answer(pair: tuple[int, int]) -> AnswerOut:
        said = "stale" if pair in stale_set else "duplicate" if pair in duplicate_set else "recorded"
        return AnswerOut(task_id=pair[0], attempt=pair[1], answer=said)

    return [answer((r.task_id, r.attempt)) for r in reports]


@router.get("/terms", response_model=Terms, **WORK)
def terms(request: Request) -> Terms:
    s = state_of(request).settings
    return Terms(lease_s=s.lease_s, heartbeat_s=s.heartbeat_interval_s, long_poll_s=s.long_poll_s,
                 max_result_bytes=s.max_result_bytes, max_log_bytes=s.max_log_bytes,
                 max_request_bytes=s.max_worker_request_bytes, hold_s=s.hold_lease_s)  # fmt: skip


@router.post("/register", response_model=Registered, **WORK)
def register(request: Request, body: WorkerIn) -> Registered:
    token = token_of(request)
    worker_id = scoped(body.id, token)
    info = WorkerInfo(worker_id, body.name, body.host, body.pid, dict(body.capacity), _labels(token, body.labels))
    link_of(request).register_worker(info)
    return Registered(worker_id=worker_id)


@router.post("/claim", response_model=ClaimOut, **BATCH)
def claim(request: Request, body: ClaimIn) -> Response:
    token = token_of(request)
    state = state_of(request)
    changes = state.changes.count  # before the claim looks: a change after it moves the count on
    reports = [r.report() for r in body.reports]
    result = state.gatherer.claim(ClaimRequest(
        scoped(body.worker_id, token), dict(body.free), _labels(token, body.labels), body.max_tasks,
        state.settings.lease_s, tuple(reports), body.event_id, claim_id=body.claim_id, hold=body.hold,
        hold_s=state.settings.hold_lease_s if body.holding else 0.0,
        capacity=None if body.capacity is None else dict(body.capacity),
        starts=tuple((int(t), int(a)) for t, a in body.starts), releases=tuple(body.releases), idle=body.idle,
    ))  # fmt: skip
    state.metrics.observe_claim(len(result.claims) + len(result.holds))
    state.metrics.observe_holds(result)
    known = set(body.known_events)
    events = {c.event_id: c for c in [*result.claims, *result.holds] if c.event_id not in known}
    return answered(ClaimOut(claims=[ClaimWire.of(c) for c in result.claims], answers=answers(reports,
                    result.rejected, result.duplicate), changes=changes, epoch=state.changes.epoch,
                    events=[EventWire.of(c) for c in events.values()], holds=[ClaimWire.of(c) for c in result.holds],
                    refused_starts=[list(p) for p in result.refused_starts],
                    recalled=result.recalled, yield_holds=result.yield_holds))  # fmt: skip


@router.post("/wait", response_model=WaitOut, **WORK)
async def wait(request: Request, body: WaitIn) -> Response:
    token_of(request)
    state = state_of(request)
    watch = state.changes
    changes = await watch.wait(body.since, min(body.wait_s, state.settings.long_poll_s), body.epoch)
    return answered(WaitOut(changes=changes, changed=watch.news(body.since, body.epoch), epoch=watch.epoch))


@router.post("/report", response_model=ReportsOut, **BATCH)
def report(request: Request, body: ReportsIn) -> Response:
    token = token_of(request)
    state = state_of(request)
    reports = tuple(r.report() for r in body.reports)
    if not reports:
        return answered(ReportsOut(answers=[]))
    # a claim of nothing: reports from several workers share a transaction with the claims beside them
    result = state.gatherer.claim(ClaimRequest(scoped(body.worker_id, token), {}, frozenset(), 0,
                                               state.settings.lease_s, reports))  # fmt: skip
    return answered(ReportsOut(answers=answers(reports, result.rejected, result.duplicate)))


@router.post("/heartbeat", response_model=HeartbeatOut, **needs(Action.WORK, body="heartbeat"))
def heartbeat(request: Request, body: HeartbeatIn) -> Response:
    token = token_of(request)
    state = state_of(request)
    running = [(int(t), int(a)) for t, a in body.running]
    held = [(int(t), int(a)) for t, a in body.held]
    hold_s = state.settings.hold_lease_s if body.holding or held else 0.0
    orders = state.link.heartbeat(scoped(body.worker_id, token), running, state.settings.lease_s, held, hold_s)
    return answered(HeartbeatOut(stop=[StopOut.of(o) for o in orders]))


@router.post("/logs", response_model=LogsOut, **BATCH)
def logs(request: Request, body: LogsIn) -> Response:
    """Append running attempts' new output to their live logs (dropped for an attempt the worker
    no longer holds: a token speaks only for its own workers)."""
    token = token_of(request)
    tails = [t.tail() for t in body.tails]
    held = link_of(request).append_logs(scoped(body.worker_id, token), tails) if tails else []
    return answered(LogsOut(held=held))


@router.post("/leave", status_code=204, **WORK)
def leave(request: Request, body: LeaveIn) -> None:
    link_of(request).deregister_worker(scoped(body.worker_id, token_of(request)))


@router.get("/graphs/{graph_id}", response_model=GraphOut, **WORK)
def graph(request: Request, graph_id: ObjectId) -> GraphOut:
    if not 1 <= graph_id <= 2**62:
        raise NotFound(f"no graph {graph_id}")
    return GraphOut.of(reads_of(request).graph(graph_id), with_spec=True)
