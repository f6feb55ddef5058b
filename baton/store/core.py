"""The SQL store's core: the dialect hooks (connections, transactions, the clock, a few
clauses) a dialect supplies, the caches every verb shares (graphs, recent events, claim
requirements), and the graph reads. The verbs are in one module per caller: :mod:`~baton.store.worker`,
:mod:`~baton.store.controller`, :mod:`~baton.store.operator`; :mod:`~baton.store.sql` assembles them.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from baton.engine.states import Outcome
from baton.errors import NotFound
from baton.graphs.model import Graph
from baton.graphs.spec import graph_from_dict
from baton.store import claims
from baton.store.advance import Ended
from baton.store.journal import SqlDebug
from baton.store.migrate import HEAD, Revision, Upgrade, read_revision
from baton.store.records import (
    GraphRecord,
    Report,
)
from baton.store.retry import retried
from baton.store.rows import (
    GraphRow,
    IdRow,
    Running,
    SpecRow,
)
from baton.store.text import storable
from baton.store.tx import Tx, read_one, read_rows, scalar, select_list

if TYPE_CHECKING:
    from baton.store.protocol import ChangeFeed

MAX_KEY_CHARS = 200  # an idempotency key
REQUIREMENTS_CHECK_S = 1.0
GATE_ROUNDS = 4  # picks per claim when candidates are parked on full concurrency keys or spent rates
K = TypeVar("K")
V = TypeVar("V")


def ended_here(tx: Tx, row: Running, outcome: Outcome, error: str) -> Ended:
    """An attempt the backend itself ends (lease expired, claim reply lost)."""
    report = Report(row.id, row.attempt, outcome, row.started_at or tx.now, tx.now, error=error)
    return Ended(report, event_id=row.event_id, graph_id=row.graph_id, node=row.node, partition=row.partition,
                 failures=row.failures, worker_id=row.worker_id, cancelling=bool(row.event_cancelling))  # fmt: skip


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def storable_report(r: Report) -> Report:
    """The report with its texts made storable by any database (see :func:`storable`)."""
    stdout, stderr = storable(r.stdout), storable(r.stderr)
    error = None if r.error is None else storable(r.error)
    if stdout is r.stdout and stderr is r.stderr and error is r.error:
        return r
    return dataclasses.replace(r, stdout=stdout, stderr=stderr, error=error)


def canonical_params(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=False)


class _Recent(OrderedDict[K, V]):
    """A dict that forgets its oldest entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class SqlCore(ABC):
    """Backend verbs over a SQL database; see :mod:`baton.store.protocol`."""

    dialect = ""  # "sqlite", "postgresql"

    skip_locked = ""  # "FOR UPDATE OF t SKIP LOCKED" where the database has it: claim without waiting

    row_lock = ""  # "FOR UPDATE OF t" where the database locks rows, not the whole file

    event_lock = ""  # "FOR UPDATE": two controllers must not plan one event at once

    # "FOR KEY SHARE OF t" where the database locks rows: keeps an attempt from ending (which
    # locks its task FOR UPDATE) until the commit, without waiting on a heartbeat's lease update
    share_lock = ""

    pushes_changes = False  # True when wait_for_change is woken by the database (LISTEN/NOTIFY)

    reconnect_s = 0.0  # how long verbs retry transient failures (0: never)

    def __init__(self, max_result_bytes: int, max_params_bytes: int, max_log_bytes: int) -> None:
        self.max_result_bytes = max_result_bytes
        self.max_params_bytes = max_params_bytes
        self.max_log_bytes = max_log_bytes  # a live log stops growing there
        self._graphs: dict[int, Graph] = {}
        self._requirements: dict[int, claims.Requirement] = {}
        self._requirements_checked = 0.0
        self._requirements_stale = True
        self._events = _Recent[int, claims.EventInfo](256)  # immutable parts of recent events, for claims
        self._lock = threading.Lock()
        # The time transactions run at, when a test sets it (seconds since the epoch; e.g.
        # FakeClock.wall): leases, backoffs and rate windows then follow it, not the database's clock.
        self.clock: Callable[[], float] | None = None

    @property
    def debug(self) -> SqlDebug:
        return SqlDebug(self.transaction, self.dialect)

    @abstractmethod
    def transaction(self, write: bool = True) -> AbstractContextManager[Tx]:
        """Open a transaction; a write transaction takes the write lock at once."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL this backend was opened with (another process opens the same store with it)."""

    def schema_revision(self) -> Revision:
        with self.transaction(write=False) as tx:
            return read_revision(tx, self.dialect)

    def migrate(self) -> Upgrade:
        """Bring the schema to HEAD (nothing is written when it is there already)."""
        revision = self.schema_revision()
        if revision.at_head:
            return Upgrade(revision, HEAD)
        return self._upgrade()

    @abstractmethod
    def _upgrade(self) -> Upgrade:
        """Run the migrations, serialised with other processes the dialect's way."""

    @abstractmethod
    def close(self) -> None: ...

    def _after_plan(self, tx: Tx, tasks: int) -> None:  # noqa: B027 (a hook most dialects leave empty)
        """A dialect's chance to act after an event's tasks were inserted (see PostgreSQL)."""

    @abstractmethod
    def wait_for_change(self, timeout_s: float) -> bool: ...

    @abstractmethod
    def change_fd(self) -> int | None: ...

    def wake_feed(self) -> ChangeFeed:
        """Changes that may have made work claimable or finished an event (where the database
        wakes only for those, as PostgreSQL's NOTIFY does: this backend itself)."""
        return self

    def graph_of(self, graph_id: int) -> Graph:
        """The validated graph of a registered version (immutable, so cached forever)."""
        graph = self._graphs.get(graph_id)
        if graph is None:
            graph = self._cache_graph(graph_id, self.graph(graph_id).spec)
        return graph

    def _graph_in(self, tx: Tx, graph_id: int) -> Graph:
        """graph_of, read through an open transaction."""
        graph = self._graphs.get(graph_id)
        if graph is None:
            row = read_one(tx, SpecRow, "SELECT spec FROM graphs WHERE id = ?", (graph_id,))
            if row is None:
                raise NotFound(f"no graph with id {graph_id}")
            graph = self._cache_graph(graph_id, json.loads(row.spec))
        return graph

    def _cache_graph(self, graph_id: int, spec: Mapping[str, Any]) -> Graph:
        graph = graph_from_dict(spec, source=f"graph #{graph_id}", stored=True)
        with self._lock:
            self._graphs[graph_id] = graph
        return graph

    @retried
    def graph(self, graph_id: int) -> GraphRecord:
        with self.transaction(write=False) as tx:
            row = read_one(tx, GraphRow, f"SELECT {select_list(GraphRow)} FROM graphs WHERE id = ?", (graph_id,))
        if row is None:
            raise NotFound(f"no graph with id {graph_id}")
        return GraphRecord(**{**row._asdict(), "spec": json.loads(row.spec)})

    @retried
    def latest_graph(self, event_type: str) -> GraphRecord:
        with self.transaction(write=False) as tx:
            graph_id = scalar(tx, "SELECT MAX(id) FROM graphs WHERE event_type = ?", (event_type,))
        if graph_id is None:
            raise NotFound(f"no graph is registered for event type '{event_type}' (see 'baton graph register')")
        return self.graph(graph_id)

    @retried
    def graphs(self) -> list[GraphRecord]:
        with self.transaction(write=False) as tx:
            ids = [r.id for r in read_rows(tx, IdRow, "SELECT id FROM graphs ORDER BY name, version")]
        return [self.graph(i) for i in ids]

    def statements_executed(self) -> float | None:
        """Statements run so far, where the database counts them (see PostgreSQL); else None."""
        return None
