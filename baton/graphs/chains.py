"""Chained events: a graph raised when an event of another type ends in a given state.

```yaml
raised_by:
  - event: year_end_report        # the source event type
    when: [succeeded]             # succeeded, failed, cancelled (default: succeeded)
    params:                       # this graph's parameters, templated from the source event
      year: "{source.params.year}"
      reports: "{source.params.out_dir}"
```

A placeholder names a fact of the source event (:data:`SOURCE_FACTS`, ``source.params.NAME``
or ``source.results.NODE``, the result of one of its unpartitioned nodes). The controller raises
the chained event from the outbox row written when the source ended, under a key made of the
source's id, this graph and the state, so each (source, graph, state) raises one event, however
often the controller crashes on the way (:mod:`baton.controller.dispatch`).
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Mapping
from typing import Any, Protocol

from baton.graphs.model import Param, Trigger
from baton.graphs.params import short
from baton.graphs.templates import names_in

END_STATES = ("succeeded", "failed", "cancelled")
SOURCE_FACTS = ("source.id", "source.type", "source.state", "source.key", "source.scheduled_for",
                "source.finished_at")  # fmt: skip
_NESTED = re.compile(r"source\.(params|results)\.[A-Za-z_][A-Za-z0-9_.\-]*")
TRIGGER_KEYS = {"event", "when", "params"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")


class Problems(Protocol):
    """Where validation problems go (the graph loader's collector)."""

    def add(self, path: tuple[str, ...], message: str) -> None: ...


def triggers_from_list(c: Problems, raw: Any, params: tuple[Param, ...]) -> tuple[Trigger, ...]:
    """Validate a graph's ``raised_by`` list; every problem goes to ``c`` with its path."""
    if not isinstance(raw, list):
        c.add(("raised_by",), "must be a list of {event: TYPE, when: [STATES], params: {...}}")
        return ()
    out = [_trigger(c, ("raised_by", f"[{i}]"), item, params) for i, item in enumerate(raw)]
    found = [t for t in out if t is not None]
    if len({t.event for t in found}) != len(found):
        c.add(("raised_by",), "names the same source event type twice; list its states in one entry's 'when'")
    return tuple(found)


def _trigger(c: Problems, path: tuple[str, ...], item: Any, params: tuple[Param, ...]) -> Trigger | None:
    if not isinstance(item, dict):
        c.add(path, "must be a mapping {event: TYPE, when: [STATES], params: {...}}")
        return None
    for key in item:
        if key not in TRIGGER_KEYS:
            c.add((*path, str(key)), f"unknown key {short(key)} (expected one of: event, params, when)")
    event = item.get("event")
    if not isinstance(event, str) or not NAME.fullmatch(event):
        c.add((*path, "event"), f"{short(event)} is not an event type name")
        return None
    when = _when(c, (*path, "when"), item.get("when", ["succeeded"]))
    values = _params(c, (*path, "params"), item.get("params", {}), params)
    if when is None or values is None:
        return None
    return Trigger(event, when, values)


def _when(c: Problems, path: tuple[str, ...], raw: Any) -> tuple[str, ...] | None:
    states = [raw] if isinstance(raw, str) else raw
    if not isinstance(states, list) or not states or any(s not in END_STATES for s in states):
        c.add(path, f"{short(raw)}: must be one or more of {', '.join(END_STATES)}")
        return None
    return tuple(sorted(set(states), key=END_STATES.index))


def _params(c: Problems, path: tuple[str, ...], raw: Any, params: tuple[Param, ...]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        c.add(path, "must be a mapping of parameter name to value or template")
        return None
    declared = {p.name for p in params}
    ok = True
    for name, value in raw.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            c.add((*path, str(name)), f"unknown parameter {short(name)} (declared: {known})")
            ok = False
        for ref in names_in(value):
            if ref not in SOURCE_FACTS and not _NESTED.fullmatch(ref):
                known = ", ".join((*SOURCE_FACTS, "source.params.NAME", "source.results.NODE"))
                c.add((*path, str(name)), f"unknown placeholder {{{ref}}} (known: {known})")
                ok = False
    missing = [p.name for p in params if p.required and p.name not in raw]
    if missing:
        c.add(path, f"required parameter(s) not given: {', '.join(missing)}")
        ok = False
    return dict(raw) if ok else None


def trigger_to_dict(trigger: Trigger) -> dict[str, Any]:
    return {"event": trigger.event, "when": list(trigger.when), "params": dict(trigger.params)}


def chain_cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    """A cycle in ``edges`` (source event type -> the event types its ends raise), as the list
    of types around it, or None."""
    sorter = graphlib.TopologicalSorter({source: sorted(raised) for source, raised in edges.items()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        return list(reversed(exc.args[1]))  # graphlib lists it against the edges' direction
    return None
