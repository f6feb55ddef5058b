"""``baton.Client``: an application's way to a Baton server, over ``/api/v1`` (httpx).

    with baton.Client("https://baton.example:8470", token, ca_file="ca.pem") as client:
        event, created = client.submit("year_end_report", {"year": 2025}, key="year-end-2025")
        final = client.wait(event.id, on_progress=lambda s: print(s.state, s.count("succeeded")))

Errors are Baton's own (see :mod:`baton.client.session`): :class:`~baton.errors.Unauthenticated`
(401), :class:`~baton.errors.Forbidden` (403), :class:`~baton.errors.NotFound` (404),
:class:`~baton.errors.Conflict` (409, with ``existing_event``), :class:`~baton.errors.ParamsInvalid`
(422 naming each parameter), :class:`~baton.errors.UsageError` (other 4xx, and a server
certificate that ``ca_file`` or the system's CAs do not vouch for), and
:class:`~baton.errors.TransientError` when the server is unreachable or answers 5xx.

Retries. A request that fails with :class:`~baton.errors.TransientError` is sent again (``retries``
times, with doubling pauses from 0.2 s) only when sending it twice cannot do anything twice:

- every read (``GET``);
- ``submit`` with a ``key``: the server answers a repeated key with the event it already made
  (``created`` is then False, even when it was this call's lost first try that made it);
- ``register_calendar`` and ``pause_schedule`` (doing either twice leaves what doing it once
  does), and a backfill's dry run;
- never ``submit`` without a key, ``cancel`` (a second one is refused as the event is already
  cancelled), ``rerun``, ``register_graph``, ``resume_schedule``, ``trigger_schedule`` (each
  fire now raises an event), ``start_backfill`` or ``cancel_backfill``: their errors reach the
  caller, who knows whether repeating is right.

:meth:`Client.wait` also rides out a server that is away for up to ``outage_s`` (a restart).
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Unpack
from urllib.parse import quote

import httpx

from baton.client.objects import (
    Attempt,
    BackfillPlan,
    EventStatus,
    GraphVersion,
    ScheduleStatus,
    Task,
    Worker,
    backfill_of,
    calendar_of,
    delivery_of,
    event_of,
    graph_of,
    graph_version_of,
    log_of,
    parsed,
    plan_of,
    schedule_of,
    status_of,
    task_of,
    webhook_of,
    worker_of,
)
from baton.client.session import Session, SessionOptions
from baton.clock import Backoff
from baton.engine.states import EventState, TaskState
from baton.errors import BackendError, NotFound, TransientError, UsageError
from baton.store.records import (
    BackfillRecord,
    CalendarRecord,
    DeliveryRecord,
    EventRecord,
    GraphRecord,
    LimitKeyRecord,
    LogChunk,
    PauseAnswer,
    PauseRecord,
    RateKeyRecord,
    ResumeAnswer,
    WaitingGroup,
    WebhookRecord,
)
from baton.wire.api import (
    BackfillOut,
    CalendarOut,
    CancelOut,
    DeliveryPage,
    EventOut,
    EventPage,
    GraphOut,
    GraphRegistered,
    LimitKeyOut,
    LogOut,
    PausedOut,
    PauseOut,
    RateKeyOut,
    RerunOut,
    ResumedOut,
    ScheduleOut,
    TaskOut,
    TaskPage,
    WaitingGroupOut,
    WebhookOut,
    WorkerOut,
)

__all__ = ["Attempt", "BackfillPlan", "Client", "EventStatus", "GraphVersion", "ScheduleStatus", "Task", "Worker"]

RETRIES = 3
BACKOFF = Backoff(first_s=0.2, max_s=2.0)  # between the tries of a call that is safe to repeat
LOG_SLICE = 65_536
EVENTS_PAGE, TASKS_PAGE = 50, 100
MICROSECOND = Decimal("0.000001")


def _epoch(value: datetime | float | None) -> str | None:
    """A time as the API reads it: epoch seconds to the microsecond, rounded down (the server
    rounds to the nearest, which could put an event's own ``submitted_at`` past a bound made of it).
    Rounded in decimal from the float's exact value: ``seconds * 1e6`` in floating point can
    round up to the next microsecond (for about one time in 170), past the time itself."""
    if value is None:
        return None
    seconds = value.timestamp() if isinstance(value, datetime) else float(value)
    return str(Decimal(seconds).quantize(MICROSECOND, rounding=ROUND_FLOOR))


class Client:
    """A session with one Baton server, authenticated by an API token (``baton token create``)."""

    def __init__(self, url: str, token: str, *, retries: int = RETRIES, **options: Unpack[SessionOptions]) -> None:
        """``retries``: tries of a call that is safe to repeat, after the first; ``options``:
        ``ca_file``, ``timeout_s``, ``transport`` (:class:`~baton.client.session.SessionOptions`)."""
        self.session = Session(url, token, **options)
        self.retries = retries

    @property
    def url(self) -> str:
        return self.session.url

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- events ----------------------------------------------------------------------------

    def submit(
        self,
        event_type: str,
        params: Mapping[str, Any] | None = None,
        key: str | None = None,
        graph_version: int | None = None,
        deadline_at: float | None = None,
        priority: int = 0,
    ) -> tuple[EventRecord, bool]:
        """Raise an event, to end by ``deadline_at`` (epoch seconds) if given, its tasks' priorities
        raised by ``priority`` (-1000 to 1000; higher runs first); ``created`` is False
        when ``key`` already named it (with the same type, parameters and graph version; otherwise
        :class:`~baton.errors.Conflict` names it)."""
        body: dict[str, Any] = {"type": event_type, "params": dict(params or {})}
        if key is not None:
            body["idempotency_key"] = key  # in the body, where any text fits (a header takes ASCII only)
        if graph_version is not None:
            body["graph_version"] = graph_version
        if deadline_at is not None:
            body["deadline_at"] = deadline_at
        if priority:
            body["priority"] = priority

        response = self._send("POST", "/api/v1/events", body, retry=key is not None)
        return event_of(parsed(EventOut, response.json())), response.status_code == 201

    def event(self, event_id: int) -> EventStatus:
        """An event with its tasks counted per node and state."""
        return status_of(parsed(EventOut, self._get(f"/api/v1/events/{int(event_id)}").json()))

    def events(
        self,
        *,
        type: str | None = None,  # the API's own name for it
        state: EventState | str | None = None,
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        backfill_id: int | None = None,
        limit: int | None = None,
        page_size: int = EVENTS_PAGE,
    ) -> Iterator[EventRecord]:
        """Events newest first, submitted in ``[since, until)`` (datetimes or epoch seconds), raised
        by backfill ``backfill_id`` if given, page by page as they are iterated; ``limit``: at most
        that many (None: all)."""
        query = {"type": type, "state": None if state is None else str(state), "since": _epoch(since),
                 "until": _epoch(until), "backfill": backfill_id}  # fmt: skip
        for page in self._pages("/api/v1/events", query, limit, page_size):
            yield from (event_of(e) for e in parsed(EventPage, page).events)

    def tasks(
        self,
        event_id: int,
        *,
        node: str | None = None,
        state: TaskState | str | None = None,
        partition: str | None = None,
        limit: int | None = None,
        page_size: int = TASKS_PAGE,
    ) -> Iterator[Task]:
        """An event's tasks in id order, page by page as they are iterated (without attempts)."""
        query = {"node": node, "partition": partition, "state": None if state is None else str(state)}
        for page in self._pages(f"/api/v1/events/{int(event_id)}/tasks", query, limit, page_size):
            yield from (task_of(t) for t in parsed(TaskPage, page).tasks)

    def task(self, task_id: int) -> Task:
        """One task with its finished attempts."""
        return task_of(parsed(TaskOut, self._get(f"/api/v1/tasks/{int(task_id)}").json()))

    def cancel(self, event_id: int) -> EventRecord:
        """Cancel an event: tasks not started never start, running ones are told to stop. Not
        retried (see the module's notes); an event already finished is a Conflict."""
        out = parsed(CancelOut, self._send("POST", f"/api/v1/events/{int(event_id)}/cancel").json())
        return event_of(out.event)

    def rerun(self, event_id: int, partition: str | None = None, node: str | None = None) -> int:
        """Run failed and cancelled tasks again (all, one partition or one node) with what depends
        on them; return how many were reset. Not retried."""
        body = {k: v for k, v in (("partition", partition), ("node", node)) if v is not None}
        return parsed(RerunOut, self._send("POST", f"/api/v1/events/{int(event_id)}/rerun", body).json()).reset

    def wait(
        self,
        event_id: int,
        timeout_s: float | None = None,
        on_progress: Callable[[EventStatus], object] | None = None,
        *,
        poll_s: float = 0.25,
        max_poll_s: float = 2.0,
        outage_s: float = 30.0,
    ) -> EventStatus:
        """Wait until the event has finished and return it. It looks every ``poll_s``, slowing to
        ``max_poll_s`` while nothing changes; each look sends the last ``version`` as
        ``If-None-Match``, so an unchanged event costs a bodiless 304. ``on_progress`` gets the
        latest status after every look (the same object when nothing changed). Raises
        :class:`TimeoutError` after ``timeout_s``, and TransientError once the server has been
        unreachable for ``outage_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        status = self.event(event_id)
        delay = poll_s
        away_since: float | None = None
        while True:
            if on_progress is not None:
                on_progress(status)
            if status.state.terminal:
                return status
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"event {event_id} is still {status.state} after {timeout_s:g} s")
            time.sleep(delay if deadline is None else min(delay, deadline - now))
            try:
                fresh = self._changed(event_id, status.version)
            except TransientError:
                away_since = away_since or time.monotonic()
                if time.monotonic() - away_since > outage_s:
                    raise
                fresh = None
            else:
                away_since = None
            status, delay = (status, min(delay * 1.5, max_poll_s)) if fresh is None else (fresh, poll_s)

    def _changed(self, event_id: int, version: str) -> EventStatus | None:
        """The event if it changed since ``version``; None on 304 Not Modified."""
        response = self._get(f"/api/v1/events/{int(event_id)}", headers={"If-None-Match": f'"{version}"'})
        return None if response.status_code == 304 else status_of(parsed(EventOut, response.json()))

    # --- logs ------------------------------------------------------------------------------

    def log(self, attempt_id: str, stream: str = "stdout", offset: int = 0, limit: int = LOG_SLICE) -> LogChunk:
        """Up to ``limit`` characters of an attempt's ``stdout`` or ``stderr`` from ``offset``;
        the chunk's ``next_offset`` is where the next slice starts, ``size`` the stream's length."""
        query = {"stream": stream, "offset": offset, "limit": limit}
        path = f"/api/v1/attempts/{quote(attempt_id, safe='')}/log"
        return log_of(parsed(LogOut, self._get(path, params=query).json()))

    def log_slices(
        self, attempt_id: str, stream: str = "stdout", offset: int = 0, *, follow: bool = False, poll_s: float = 0.5,
        timeout_s: float | None = None, slice_chars: int = LOG_SLICE,
    ) -> Iterator[LogChunk]:  # fmt: skip
        """The slices of a stream from ``offset`` to its end (a finished attempt's whole output;
        a running one's so far, which its worker sends every few seconds: ``live`` slices). With
        ``follow``, a running attempt, or one not started yet, is followed until it ends and its
        stored output read to the end (NotFound once its task has ended without it, TimeoutError
        after ``timeout_s``). The stored output of a log over the store's cap keeps only its head
        and tail, so past the cap what follows a live slice is the stored log's from that offset.
        A stream with nothing in it yields one empty slice."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        first = True
        while True:
            try:
                chunk: LogChunk | None = self.log(attempt_id, stream, offset, slice_chars)
            except NotFound:
                if not follow or not self._may_come(attempt_id):
                    raise
                chunk = None
            if chunk is not None:
                if chunk.text or (first and chunk.size == 0 and not chunk.live):
                    yield chunk
                first, offset = False, chunk.next_offset
                if chunk.text and chunk.next_offset < chunk.size:
                    continue  # more is there now
                if not chunk.live or not follow:
                    return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"attempt {attempt_id} has not ended after {timeout_s:g} s")
            time.sleep(poll_s)

    def read_log(self, attempt_id: str, stream: str = "stdout") -> str:
        """The whole of one stream of a finished attempt, or what a running one wrote so far."""
        return "".join(chunk.text for chunk in self.log_slices(attempt_id, stream))

    def _may_come(self, attempt_id: str) -> bool:
        """Whether an attempt not recorded yet may still be: its task has not ended, and has not
        passed that attempt either (a task that does not exist raises NotFound)."""
        task_id, _, attempt = attempt_id.partition("-")
        if not (task_id.isdigit() and attempt.isdigit()):
            return False
        task = self.task(int(task_id))
        return not task.state.terminal and task.attempt <= int(attempt)

    # --- graphs and workers ----------------------------------------------------------------

    def graphs(self, event_type: str | None = None) -> list[GraphVersion]:
        """Every registered graph version this token may see (``event_type``: of that type)."""
        answer = self._get("/api/v1/graphs", params={"type": event_type}).json()
        return [graph_version_of(parsed(GraphOut, g)) for g in _listed(answer)]

    def graph(self, graph_id: int) -> GraphRecord:
        """One graph version with its specification."""
        return graph_of(parsed(GraphOut, self._get(f"/api/v1/graphs/{int(graph_id)}").json()))

    def latest_graph(self, event_type: str) -> GraphRecord:
        """The graph version events of ``event_type`` run by default (the newest)."""
        versions = self.graphs(event_type)
        if not versions:
            raise NotFound(f"no graph is registered for event type '{event_type}' (see 'baton graph register')")
        return self.graph(max(versions, key=lambda g: g.version).id)

    def register_graph(self, yaml_text: str, filename: str = "graph.yaml") -> tuple[GraphVersion, bool]:
        """Register a graph from its YAML text (an admin token); ``created`` is False when the
        same content was registered before. Invalid graphs raise a UsageError naming each problem."""
        body = {"source": yaml_text, "filename": filename}
        out = parsed(GraphRegistered, self._send("POST", "/api/v1/graphs", body).json())
        return graph_version_of(out.graph), out.created

    def workers(self) -> list[Worker]:
        """Task servers with capacity, labels, running tasks and last heartbeat."""
        return [worker_of(parsed(WorkerOut, w)) for w in _listed(self._get("/api/v1/workers").json())]

    # --- webhooks (an admin token) -----------------------------------------------------------

    def add_webhook(
        self,
        name: str,
        url: str,
        secret: str,
        kinds: Sequence[str],
        event_types: Sequence[str] | None = None,
        replace: bool = False,
    ) -> WebhookRecord:
        """Add a webhook (``replace``: change one that exists). Not retried: if the answer was lost,
        adding again is a Conflict, and ``replace`` makes it the same."""
        body = {"name": name, "url": url, "secret": secret, "kinds": list(kinds), "replace": replace,
                "event_types": None if event_types is None else list(event_types)}  # fmt: skip
        return webhook_of(parsed(WebhookOut, self._send("POST", "/api/v1/webhooks", body).json()))

    def remove_webhook(self, name: str) -> WebhookRecord:
        """Remove a webhook (its log stays); removing it again answers the same, so it is retried."""
        path = f"/api/v1/webhooks/{quote(name, safe='')}"
        return webhook_of(parsed(WebhookOut, self._send("DELETE", path, retry=True).json()))

    def webhooks(self) -> list[WebhookRecord]:
        """Every webhook, removed ones too; never a secret."""
        return [webhook_of(parsed(WebhookOut, w)) for w in _listed(self._get("/api/v1/webhooks").json())]

    def deliveries(
        self, webhook: str | None = None, state: str | None = None, before: int | None = None, limit: int = 50
    ) -> list[DeliveryRecord]:
        """The delivery log, newest first: up to ``limit`` deliveries older than ``before``."""
        query = {"webhook": webhook, "state": state, "limit": limit, "cursor": before}
        page = parsed(DeliveryPage, self._get("/api/v1/webhooks/deliveries", params=query).json())
        return [delivery_of(d) for d in page.deliveries]

    # --- concurrency keys -------------------------------------------------------------------

    def limit_keys(self, after: str | None = None, limit: int = 100) -> list[LimitKeyRecord]:
        """A page of concurrency keys in order (``after``: the last key of the previous page)."""
        query: dict[str, str | int] = {"limit": limit} | ({} if after is None else {"after": after})
        return [parsed(LimitKeyOut, k).record() for k in _listed(self._get("/api/v1/limits", params=query).json())]

    def waiting(self, event_id: int) -> list[WaitingGroup]:
        """Why the event's tasks are not running, per node and reason (docs/limits.md)."""
        answer = _listed(self._get(f"/api/v1/events/{int(event_id)}/waiting").json())
        return [parsed(WaitingGroupOut, g).record() for g in answer]

    # --- pauses --------------------------------------------------------------------------

    def pause(
        self, *, graph: str | None = None, event_id: int | None = None, node: str | None = None, reason: str = ""
    ) -> PauseAnswer:
        """Pause a graph (by name), an event, or a node of an event (``event_id`` and ``node``):
        nothing of it starts until resumed, running tasks finish. Pausing what is paused answers
        the pause in force (``created`` False). Not retried."""
        body = _scope(graph, event_id, node) | {"reason": reason}
        return parsed(PausedOut, self._send("POST", "/api/v1/pauses", body).json()).record()

    def resume(self, *, graph: str | None = None, event_id: int | None = None, node: str | None = None) -> ResumeAnswer:
        """End a pause: what no other pause holds may start again; the answer counts it, and names
        the pauses still holding part of it. A target that is not paused is a Conflict. Not retried."""
        body = _scope(graph, event_id, node)
        return parsed(ResumedOut, self._send("POST", "/api/v1/pauses/resume", body).json()).record()

    def pauses(self, event_id: int | None = None) -> list[PauseRecord]:
        """The pauses in force, oldest first: all, or those that hold one event."""
        query = {} if event_id is None else {"event_id": int(event_id)}
        return [parsed(PauseOut, p).record() for p in _listed(self._get("/api/v1/pauses", params=query).json())]

    def rate_keys(self, after: str | None = None, limit: int = 100) -> list[RateKeyRecord]:
        """A page of rate limits' keys in order (``after``: the last key of the previous page)."""
        query: dict[str, str | int] = {"limit": limit} | ({} if after is None else {"after": after})
        got = _listed(self._get("/api/v1/limits/rates", params=query).json())
        return [parsed(RateKeyOut, k).record() for k in got]

    # --- calendars, schedules and backfills ------------------------------------------------

    def calendars(self) -> list[CalendarRecord]:
        """Every registered business calendar, by name."""
        return [calendar_of(parsed(CalendarOut, c)) for c in _listed(self._get("/api/v1/calendars").json())]

    def calendar(self, name: str) -> CalendarRecord:
        return calendar_of(parsed(CalendarOut, self._get(f"/api/v1/calendars/{quote(name, safe='')}").json()))

    def register_calendar(self, name: str, yaml_text: str, filename: str = "calendar.yaml") -> CalendarRecord:
        """Register (or replace) calendar ``name`` from its YAML text (an admin token); an invalid
        one raises a UsageError naming each problem with its line."""
        body = {"source": yaml_text, "filename": filename}
        answer = self._send("PUT", f"/api/v1/calendars/{quote(name, safe='')}", body, retry=True)
        return calendar_of(parsed(CalendarOut, answer.json()))

    def schedules(self, next_fires: int = 5) -> list[ScheduleStatus]:
        """Every schedule this token may see, retired ones too, each with its next fires."""
        answer = self._get("/api/v1/schedules", params={"next": next_fires}).json()
        return [schedule_of(parsed(ScheduleOut, s)) for s in _listed(answer)]

    def schedule(self, name: str, next_fires: int = 5) -> ScheduleStatus:
        path = f"/api/v1/schedules/{quote(name, safe='')}"
        return schedule_of(parsed(ScheduleOut, self._get(path, params={"next": next_fires}).json()))

    def pause_schedule(self, name: str, note: str = "") -> ScheduleStatus:
        """Raise none of its fires until resumed (those of the pause are never raised)."""
        answer = self._send("POST", f"/api/v1/schedules/{quote(name, safe='')}/pause", {"note": note}, retry=True)
        return schedule_of(parsed(ScheduleOut, answer.json()))

    def resume_schedule(self, name: str) -> ScheduleStatus:
        """Raise its fires again from now on; a schedule not paused is a Conflict. Not retried."""
        answer = self._send("POST", f"/api/v1/schedules/{quote(name, safe='')}/resume")
        return schedule_of(parsed(ScheduleOut, answer.json()))

    def trigger_schedule(self, name: str) -> EventRecord:
        """Fire now: the event a fire at this instant would raise. Not retried (each is a new event)."""
        answer = self._send("POST", f"/api/v1/schedules/{quote(name, safe='')}/trigger")
        return event_of(parsed(EventOut, answer.json()))

    def backfills(self, limit: int = 50) -> list[BackfillRecord]:
        """Backfills this token may see, newest first."""
        answer = self._get("/api/v1/backfills", params={"limit": limit}).json()
        return [backfill_of(parsed(BackfillOut, b)) for b in _listed(answer)]

    def backfill(self, backfill_id: int) -> BackfillRecord:
        return backfill_of(parsed(BackfillOut, self._get(f"/api/v1/backfills/{int(backfill_id)}").json()))

    def start_backfill(
        self, schedule: str, from_at: float, to_at: float, *, max_running: int = 1, rerun: bool = False
    ) -> BackfillRecord:
        """Raise the schedule's fires in ``[from_at, to_at]`` (epoch seconds), in order, at most
        ``max_running`` unfinished at once. Not retried: after a lost answer, look at ``backfills()``."""
        body = _backfill_body(schedule, from_at, to_at, max_running, rerun, dry_run=False)
        return backfill_of(parsed(BackfillOut, self._send("POST", "/api/v1/backfills", body).json()))

    def dry_run_backfill(
        self, schedule: str, from_at: float, to_at: float, *, max_running: int = 1, rerun: bool = False
    ) -> BackfillPlan:
        """What :meth:`start_backfill` would raise: its fires, those that already have an event,
        the first and last few fire times. Stores nothing, so it is retried."""
        body = _backfill_body(schedule, from_at, to_at, max_running, rerun, dry_run=True)
        return plan_of(parsed(BackfillOut, self._send("POST", "/api/v1/backfills", body, retry=True).json()))

    def cancel_backfill(self, backfill_id: int) -> BackfillRecord:
        """Raise no more of its fires; one not running is a Conflict. Not retried."""
        answer = self._send("POST", f"/api/v1/backfills/{int(backfill_id)}/cancel")
        return backfill_of(parsed(BackfillOut, answer.json()))

    # --- plumbing --------------------------------------------------------------------------

    def _get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return self._send("GET", path, params=params, headers=headers, retry=True)

    def _pages(self, path: str, query: Mapping[str, Any], limit: int | None, page_size: int) -> Iterator[Any]:
        """Keyset pages, each read when the one before is used up, until ``limit`` items."""
        cursor: str | None = None
        left = limit
        while left is None or left > 0:
            size = page_size if left is None else min(page_size, left)
            page = self._get(path, params={**query, "limit": size, "cursor": cursor}).json()
            yield page
            if left is not None:  # a page that another follows is full
                left -= size
            cursor = page.get("next_cursor") if isinstance(page, dict) else None
            if cursor is None:
                return

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> httpx.Response:
        """One call, sent again on a TransientError when ``retry`` (see the module's notes)."""
        tries = max(0, self.retries) if retry else 0
        for pause in dataclasses.replace(BACKOFF, tries=tries).delays():
            try:
                return self._call(method, path, body, params, headers)
            except TransientError:
                time.sleep(pause)
        return self._call(method, path, body, params, headers)

    def _call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        """A certificate this client does not trust is no passing failure: a UsageError, at once."""
        try:
            return self.session.call(method, path, body, params=params, headers=headers)
        except TransientError as exc:
            why = untrusted_certificate(exc)
            if why is None:
                raise
            hint = "give the CA that signed it (ca_file, --ca-file or BATON_CA_FILE)"
            raise UsageError(f"{self.url} has a certificate this client does not trust ({why}); {hint}") from exc


def untrusted_certificate(exc: BaseException) -> str | None:
    """Why the server's certificate was refused, when that is what ``exc`` came from."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen.verify_message or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _backfill_body(schedule: str, from_at: float, to_at: float, max_running: int, rerun: bool,
                   dry_run: bool) -> dict[str, Any]:  # fmt: skip
    return {"schedule": schedule, "from": float(from_at), "to": float(to_at), "max_running": max_running,
            "rerun": rerun, "dry_run": dry_run}  # fmt: skip


def _scope(graph: str | None, event_id: int | None, node: str | None) -> dict[str, Any]:
    return {k: v for k, v in (("graph", graph), ("event_id", event_id), ("node", node)) if v is not None}


def _listed(answer: Any) -> list[Any]:
    if not isinstance(answer, list):
        raise BackendError(f"the server's answer is not a list: {str(answer)[:200]}")
    return answer
