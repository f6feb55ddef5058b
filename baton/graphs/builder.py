"""A Python API for graphs that produces exactly what a YAML file would.

    g = GraphBuilder("year_end_report", python_path=[".."])
    g.param("year", "integer", default=2025)
    g.param("departments", "list", default=["sales", "hr"])
    g.partitions(param="departments")
    g.python("extract", "year_end_report.tasks:extract_finance", retries=2)
    g.python("process", "year_end_report.tasks:process", after=["extract"])
    g.python("hq_summary", "year_end_report.tasks:hq_summary", after=["process"], partitioned=False)
    g.command("hq_report", ["{python}", "-m", "year_end_report.render_hq"], after=["hq_summary"],
              partitioned=False)
    graph = g.build()

The builder only assembles the same plain dict a YAML file holds; :meth:`GraphBuilder.build`
validates it through :func:`baton.graphs.spec.graph_from_dict`, so both routes share every check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baton.graphs.model import Graph
from baton.graphs.spec import graph_from_dict

After = Sequence[str | tuple[str, str]]


class GraphBuilder:
    def __init__(
        self,
        name: str,
        event: str | None = None,
        description: str = "",
        python_path: Sequence[str] = (),
        defaults: dict[str, Any] | None = None,
    ) -> None:
        self._data: dict[str, Any] = {"graph": name, "params": {}, "nodes": {}}
        if event is not None:
            self._data["event"] = event
        if description:
            self._data["description"] = description
        if python_path:
            self._data["python_path"] = list(python_path)
        if defaults:
            self._data["defaults"] = dict(defaults)

    def param(
        self, name: str, type: str, *, default: Any = ..., required: bool | None = None, description: str = ""
    ) -> GraphBuilder:
        spec: dict[str, Any] = {"type": type}
        if default is not ...:
            spec["default"] = default
        if required is not None:
            spec["required"] = required
        if description:
            spec["description"] = description
        self._data["params"][name] = spec
        return self

    def partitions(self, *, param: str | None = None, values: Sequence[str] | None = None) -> GraphBuilder:
        self._data["partitions"] = {"param": param} if param is not None else {"values": list(values or [])}
        return self

    def python(self, name: str, target: str, *, after: After = (), **options: Any) -> GraphBuilder:
        """A node that calls ``module:function`` with a TaskContext."""
        return self._node(name, {"run": target}, after, options)

    def command(
        self, name: str, argv: Sequence[str], *, after: After = (), env: dict[str, str] | None = None, **options: Any
    ) -> GraphBuilder:
        """A node that runs an argv list (placeholders only as whole items; never a shell)."""
        spec: dict[str, Any] = {"command": list(argv)}
        if env:
            spec["env"] = dict(env)
        return self._node(name, spec, after, options)

    def _node(self, name: str, spec: dict[str, Any], after: After, options: dict[str, Any]) -> GraphBuilder:
        if after:
            spec["after"] = [a if isinstance(a, str) else {"node": a[0], "mode": a[1]} for a in after]
        if "labels" in options:
            options["labels"] = list(options["labels"])
        self._data["nodes"][name] = {**spec, **options}
        return self

    def schedule(self, name: str, **spec: Any) -> GraphBuilder:
        """A schedule, with the keys a YAML ``schedules`` entry takes (``cron="0 2 * * *"``,
        ``timezone=``, ``params=``, ``calendar=``, ``deadline="06:00"``, ``priority=10``, ...)."""
        self._data.setdefault("schedules", {})[name] = dict(spec)
        return self

    def raised_by(self, event: str, *, when: Sequence[str] = ("succeeded",),
                  params: dict[str, Any] | None = None) -> GraphBuilder:  # fmt: skip
        """Raise this graph when an event of type ``event`` ends in one of ``when``."""
        trigger = {"event": event, "when": list(when), "params": dict(params or {})}
        self._data.setdefault("raised_by", []).append(trigger)
        return self

    def event_limit(self, max_running: int, policy: str = "queue") -> GraphBuilder:
        """At most ``max_running`` events of this graph run at once; ``policy`` (``queue``,
        ``cancel_newest``, ``cancel_oldest``) says what becomes of one more."""
        self._data["event_limit"] = {"max_running": max_running, "policy": policy}
        return self

    def retention(self, **days: float) -> GraphBuilder:
        """``succeeded_days=``, ``failed_days=``, ``cancelled_days=``."""
        self._data["retention"] = dict(days)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def build(self, base_dir: str | Path | None = None) -> Graph:
        """Validate and return the graph (raises GraphInvalid listing every problem)."""
        base = Path(base_dir) if base_dir is not None else None
        return graph_from_dict(self.to_dict(), source=f"builder:{self._data['graph']}", base_dir=base)
