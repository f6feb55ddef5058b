"""Frozen types for graphs. Built only by :mod:`baton.graphs.spec`, which validates them.

A graph is a set of nodes; a node is split into one task per partition (or one task if it
is not partitioned). Edges say how a downstream task waits for an upstream node:

- ``same``: partition p waits only for the upstream task of partition p (pipelining);
- ``all``: every downstream task waits for every upstream task (fan-in);
- ``broadcast``: an unpartitioned upstream task feeds every downstream task.

``all`` and ``broadcast`` are *node-level* edges: they are satisfied once, when the whole
upstream node has succeeded, so a fan-in over P partitions costs O(P), never O(P²).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from baton.graphs.schedules import Schedule  # which imports this module for Param

# An event's priority (a client's submit, a schedule's ``priority:``), added to each of its tasks'
# node priority when it is planned (baton.engine.priorities). Higher runs first.
MIN_EVENT_PRIORITY = -1000
MAX_EVENT_PRIORITY = 1000
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")  # always used with fullmatch


def is_name(value: Any) -> bool:
    """A valid graph, node, parameter, label, resource, schedule or calendar name."""
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LIST = "list"
    OBJECT = "object"


class DepMode(StrEnum):
    SAME = "same"
    ALL = "all"
    BROADCAST = "broadcast"

    @property
    def node_level(self) -> bool:
        """True when the edge is satisfied by the whole upstream node, not one task."""
        return self is not DepMode.SAME


@dataclass(frozen=True)
class Param:
    name: str
    type: ParamType
    required: bool = False
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class Partitions:
    """Where an event's partitions come from: a list parameter, or a static list."""

    param: str | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after the first, waiting delay_s * backoff**(n-1)."""

    retries: int = 0
    delay_s: float = 1.0
    backoff: float = 2.0
    max_delay_s: float = 300.0
    jitter: float = 0.1


@dataclass(frozen=True)
class PythonAction:
    """Call ``module:function`` with a TaskContext."""

    target: str


@dataclass(frozen=True)
class CommandAction:
    """Run an argv list; placeholders are replaced only as whole items (never a shell)."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None


Action = PythonAction | CommandAction


@dataclass(frozen=True)
class Dependency:
    upstream: str
    mode: DepMode


@dataclass(frozen=True)
class Concurrency:
    """At most ``limit`` tasks whose ``key`` (a template: ``{partition}``, ``{node}``,
    ``{event_type}``, ``{params.NAME}``) renders the same run at once, across the cluster."""

    key: str
    limit: int


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` starts of tasks whose ``key`` (a template, as for :class:`Concurrency`)
    renders the same in any ``period_s`` seconds, across the cluster (baton.engine.rates)."""

    key: str
    limit: int
    period_s: float


@dataclass(frozen=True)
class Node:
    name: str
    action: Action
    partitioned: bool
    after: tuple[Dependency, ...] = ()
    barrier: bool = False
    retry: RetryPolicy = RetryPolicy()
    timeout_s: float | None = None
    priority: int = 0
    labels: frozenset[str] = frozenset()
    cost: Mapping[str, int] = field(default_factory=lambda: {"slots": 1})
    description: str = ""
    concurrency: Concurrency | None = None
    rate_limit: RateLimit | None = None
    partitions_from: str | None = None  # dynamic: its partitions are this discovery node's result
    max_partitions: int = 10_000  # dynamic: the most partitions its discovery may return

    @property
    def dynamic(self) -> bool:
        """Its partitions come from a discovery task's result, planned when that task succeeds."""
        return self.partitions_from is not None

    def edges(self) -> tuple[Dependency, ...]:
        """Dependencies as the engine applies them: a barrier turns every edge into ``all``."""
        if not self.barrier:
            return self.after
        return tuple(Dependency(d.upstream, _barrier_mode(d.mode)) for d in self.after)


def _barrier_mode(mode: DepMode) -> DepMode:
    return DepMode.ALL if mode is DepMode.SAME else mode


@dataclass(frozen=True)
class Trigger:
    """Raise the graph when an event of type ``event`` ends in one of ``when``, with ``params``
    templated from that event (:mod:`baton.graphs.chains`)."""

    event: str
    when: tuple[str, ...] = ("succeeded",)
    params: Mapping[str, Any] = field(default_factory=dict)


EVENT_LIMIT_POLICIES = ("queue", "cancel_newest", "cancel_oldest")


@dataclass(frozen=True)
class EventLimit:
    """At most ``max_running`` events of the graph (every version) run at once; ``policy`` says
    what becomes of one more: ``queue`` (it waits, in order of priority then submission), ``cancel_newest`` (it
    is cancelled) or ``cancel_oldest`` (the oldest running one is cancelled and it starts)."""

    max_running: int
    policy: str = "queue"


@dataclass(frozen=True)
class Retention:
    """How long the graph's finished events are kept, per end state, in days (None: forever)."""

    succeeded_days: float | None = None
    failed_days: float | None = None
    cancelled_days: float | None = None

    def days(self, state: str) -> float | None:
        return {"succeeded": self.succeeded_days, "failed": self.failed_days,
                "cancelled": self.cancelled_days}.get(state)  # fmt: skip


@dataclass(frozen=True)
class Graph:
    """A validated graph. ``nodes`` is in topological order."""

    name: str
    event_type: str
    nodes: tuple[Node, ...]
    params: tuple[Param, ...] = ()
    partitions: Partitions | None = None
    description: str = ""
    python_path: tuple[str, ...] = ()
    raised_by: tuple[Trigger, ...] = ()
    retention: Retention | None = None
    schedules: tuple[Schedule, ...] = ()
    event_limit: EventLimit | None = None

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)

    def node(self, name: str) -> Node:
        return self._by_name[name]

    @functools.cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @functools.cached_property
    def downstream(self) -> dict[str, tuple[tuple[Node, DepMode], ...]]:
        """For each node, the nodes that depend on it and through which mode."""
        out: dict[str, list[tuple[Node, DepMode]]] = {n.name: [] for n in self.nodes}
        for node in self.nodes:
            for dep in node.edges():
                out[dep.upstream].append((node, dep.mode))
        return {k: tuple(v) for k, v in out.items()}

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @functools.cached_property
    def discoveries(self) -> dict[str, tuple[Node, ...]]:
        """Each discovery node with the dynamic nodes planned from its result, in topological
        order (empty for a graph without dynamic partitions: nothing is looked up then)."""
        out: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.partitions_from is not None:
                out.setdefault(node.partitions_from, []).append(node)
        return {k: tuple(v) for k, v in out.items()}
