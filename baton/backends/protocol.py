"""The backend protocol: domain verbs, each one transaction.

:class:`WorkerLink` is the narrow part a task server uses. It is all a worker knows about
the rest of the system, so a remote transport (HTTP) can implement it later without
touching the worker. :class:`Backend` adds what the controller, the CLI and tests use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from baton.model import Graph
from baton.planner import Plan
from baton.records import (
    AttemptRecord,
    AuditRecord,
    ClaimResult,
    EventRecord,
    GraphRecord,
    Report,
    StopOrder,
    TaskRecord,
    WorkerInfo,
)
from baton.states import EventState


class WorkerLink(Protocol):
    """What a worker may do: register, claim (reporting first), report, heartbeat, leave."""

    pushes_changes: bool  # True when wait_for_change is woken by the store, not by polling

    def register_worker(self, info: WorkerInfo) -> None: ...

    def graph(self, graph_id: int) -> GraphRecord: ...

    def claim(
        self,
        worker_id: str,
        free: Mapping[str, int],
        labels: frozenset[str],
        limit: int,
        lease_s: float,
        reports: Sequence[Report] = (),
        event_id: int | None = None,
    ) -> ClaimResult:
        """Record ``reports`` (fenced by attempt), then claim up to ``limit`` ready tasks that
        fit in ``free`` capacity and whose required labels the worker has (``event_id``: of
        that event only). One transaction."""
        ...

    def report(self, worker_id: str, reports: Sequence[Report]) -> list[tuple[int, int]]:
        """Record reports; return the (task_id, attempt) pairs rejected as stale."""
        ...

    def heartbeat(self, worker_id: str, running: Sequence[tuple[int, int]], lease_s: float) -> list[StopOrder]:
        """Extend the leases of the attempts this worker still holds; say which to stop."""
        ...

    def deregister_worker(self, worker_id: str) -> None: ...

    def wait_for_change(self, timeout_s: float) -> bool:
        """Block until something may have changed in the store, or the timeout passes."""
        ...

    def change_fd(self) -> int | None:
        """A descriptor that becomes readable when the store may have changed (then ask
        ``wait_for_change(0)``), for waiting on it beside other descriptors; None when changes
        can only be polled."""
        ...


class Backend(WorkerLink, Protocol):
    """Everything: graphs, events, the controller's verbs and the reads behind the CLI."""

    def migrate(self) -> None: ...

    def close(self) -> None: ...

    # graphs
    def register_graph(self, graph: Graph, source: str = "") -> GraphRecord: ...

    def latest_graph(self, event_type: str) -> GraphRecord: ...

    def graphs(self) -> list[GraphRecord]: ...

    # events
    def submit(self, graph_id: int, params: Mapping[str, Any], key: str | None = None) -> tuple[EventRecord, bool]:
        """Accept an event durably. The same key returns the same event (created False);
        the same key with other parameters raises Conflict."""
        ...

    def events_to_expand(self, limit: int) -> list[EventRecord]: ...

    def save_plan(self, event_id: int, plan: Plan) -> bool:
        """Create every task of the event at once; False if it was already expanded."""
        ...

    def expire_leases(self, limit: int = 500) -> int:
        """End attempts whose lease ran out (cause worker_lost); return how many."""
        ...

    def cancel(self, event_id: int, actor: str = "operator") -> EventRecord: ...

    def rerun(
        self, event_id: int, partition: str | None = None, node: str | None = None, actor: str = "operator"
    ) -> int:
        """Re-run failed and cancelled tasks (optionally one partition or node) and what depends
        on them, keeping every success; return how many tasks were reset."""
        ...

    # reads
    def event(self, event_id: int) -> EventRecord: ...

    def event_state(self, event_id: int) -> EventState: ...

    def events(self, limit: int = 20) -> list[EventRecord]: ...

    def tasks(self, event_id: int, node: str | None = None, partition: str | None = None) -> list[TaskRecord]: ...

    def node_counts(self, event_id: int) -> dict[str, dict[str, int]]: ...

    def attempts(self, task_ids: Sequence[int]) -> list[AttemptRecord]: ...

    def audit(self, event_id: int | None = None, task_id: int | None = None) -> list[AuditRecord]: ...
