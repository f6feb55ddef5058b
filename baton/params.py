"""Event parameters: checked against a graph's schema before anything is written.

Two entry points: :func:`parse_cli_params` turns ``--param k=v`` strings into typed values
(``year=2025`` becomes an int when the schema says integer), and :func:`validate_params`
checks typed values (from the CLI or a JSON client) and fills in defaults. Both name the
parameter in every message.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from baton.errors import ParamsInvalid
from baton.model import ParamType

if TYPE_CHECKING:
    from baton.model import Graph

MAX_PARTITION_KEY = 200

_PY_TYPES: dict[ParamType, tuple[type, ...]] = {
    ParamType.STRING: (str,),
    ParamType.INTEGER: (int,),
    ParamType.NUMBER: (int, float),
    ParamType.BOOLEAN: (bool,),
    ParamType.LIST: (list,),
    ParamType.OBJECT: (dict,),
}


def type_problem(ptype: ParamType, value: Any) -> str | None:
    """Why ``value`` is not of ``ptype``, or None when it is."""
    if isinstance(value, bool) and ptype is not ParamType.BOOLEAN:
        return f"expected {ptype}, got a boolean"
    if not isinstance(value, _PY_TYPES[ptype]):
        return f"expected {ptype}, got {type(value).__name__} {_short(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value}"
    return None


def check_default(ptype: ParamType, default: Any) -> str | None:
    problem = type_problem(ptype, default) or _not_json(default)
    return f"default {_short(default)}: {problem}" if problem else None


def _not_json(value: Any) -> str | None:
    # Defaults are stored and shipped as JSON; YAML also yields dates, NaN and cycles.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"not plain JSON ({exc})"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_cli_params(graph: Graph, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``k=v`` strings into values of the declared types."""
    out: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            problems.append(f"{pair!r} is not of the form name=value")
            continue
        param = graph.param(key)
        if param is None:
            problems.append(f"parameter '{key}': unknown (declared: {_declared(graph)})")
            continue
        try:
            out[key] = _coerce(param.type, text)
        except ValueError as exc:
            problems.append(f"parameter '{key}': {exc}")
    if problems:
        raise ParamsInvalid(problems)
    return out


def _coerce(ptype: ParamType, text: str) -> Any:
    if ptype is ParamType.STRING:
        return text
    if ptype is ParamType.INTEGER:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected integer, got {text!r}") from None
    if ptype is ParamType.NUMBER:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {text!r}")
        return value
    if ptype is ParamType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    return _coerce_json(ptype, text)


def _coerce_json(ptype: ParamType, text: str) -> Any:
    """Lists accept JSON (``["a","b"]``) or comma-separated text; objects need JSON."""
    stripped = text.strip()
    if ptype is ParamType.LIST and not stripped.startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected {ptype} as JSON, got {text!r} ({exc.msg})") from None
    problem = type_problem(ptype, value)
    if problem:
        raise ValueError(problem)
    return value


def validate_params(graph: Graph, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check typed parameters against the schema and fill in defaults."""
    if not isinstance(given, Mapping):
        raise ParamsInvalid(["parameters must be a JSON object"])
    problems = [
        f"parameter '{key}': unknown (declared: {_declared(graph)})" for key in given if graph.param(str(key)) is None
    ]
    out: dict[str, Any] = {}
    for param in graph.params:
        if param.name not in given:
            if param.required:
                problems.append(f"parameter '{param.name}': required but missing ({param.type})")
            else:
                out[param.name] = param.default
            continue
        problem = type_problem(param.type, given[param.name])
        if problem:
            problems.append(f"parameter '{param.name}': {problem}")
        out[param.name] = given[param.name]
    if not problems:
        problems += _json_problems(out)
    if problems:
        raise ParamsInvalid(problems)
    if graph.partitions is not None:
        partition_keys(graph, out)  # raises on bad partition values
    return out


def _json_problems(params: dict[str, Any]) -> list[str]:
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [f"parameters are not plain JSON: {exc}"]
    return []


def partition_keys(graph: Graph, params: Mapping[str, Any]) -> tuple[str, ...]:
    """The event's partitions, validated: non-empty, unique, short strings or integers."""
    spec = graph.partitions
    if spec is None:
        return ()
    if spec.param is None:
        return spec.values
    raw = params.get(spec.param)
    where = f"parameter '{spec.param}' (the partitions)"
    if not isinstance(raw, list) or not raw:
        raise ParamsInvalid([f"{where}: must be a non-empty list"])
    keys = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ParamsInvalid([f"{where}: items must be strings or integers, got {_short(item)}"])
        key = str(item)
        if not key or len(key) > MAX_PARTITION_KEY or "\x00" in key:
            raise ParamsInvalid([f"{where}: {_short(item)} is not a usable partition key"])
        keys.append(key)
    duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)  # not keys.count: O(n²)
    if duplicates:
        raise ParamsInvalid([f"{where}: duplicate partitions {duplicates[:5]}"])
    return tuple(keys)


def _declared(graph: Graph) -> str:
    return ", ".join(p.name for p in graph.params) or "none"
