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
from baton.graphs.model import CommandAction, ParamType

if TYPE_CHECKING:
    from baton.graphs.model import Graph

MAX_PARTITION_KEY = 200
MAX_PARAM_DEPTH = 64  # nesting levels of a parameter's value
MAX_ARG_BYTES = 128 * 1024 - 1  # one argv item or environment entry (Linux MAX_ARG_STRLEN)

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
        return f"expected {ptype}, got {type(value).__name__} {short(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value}"
    return None


def check_default(ptype: ParamType, default: Any) -> str | None:
    problem = type_problem(ptype, default) or _not_json(default)
    return f"default {short(default)}: {problem}" if problem else None


def _not_json(value: Any) -> str | None:
    # Defaults are stored and shipped as JSON; YAML also yields dates, NaN and cycles.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"not plain JSON ({exc})"
    return None


def _clip(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters: what a message quotes of a bad value."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_cli_params(graph: Graph, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``k=v`` strings into values of the declared types."""
    out: dict[str, Any] = {}
    problems = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            problems.append(f"{short(pair)} is not of the form name=value")
            continue
        param = graph.param(key)
        if param is None:
            problems.append(f"parameter '{_clip(key)}': unknown (declared: {_declared(graph)})")
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
            raise ValueError(f"expected integer, got {short(text)}") from None
    if ptype is ParamType.NUMBER:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected number, got {short(text)}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {short(text)}")
        return value
    if ptype is ParamType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"expected true or false, got {short(text)}")
    return _coerce_json(ptype, text)


def _coerce_json(ptype: ParamType, text: str) -> Any:
    """Lists accept JSON (``["a","b"]``) or comma-separated text; objects need JSON."""
    stripped = text.strip()
    if ptype is ParamType.LIST and not stripped.startswith("["):
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected {ptype} as JSON, got {short(text)} ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of over 4,300 digits, deep nesting
        raise ValueError(f"expected {ptype} as JSON, got {short(text)} ({exc})") from None
    problem = type_problem(ptype, value)
    if problem:
        raise ValueError(problem)
    return value


def validate_params(graph: Graph, given: Mapping[str, Any]) -> dict[str, Any]:
    """Check typed parameters against the schema and fill in defaults."""
    if not isinstance(given, Mapping):
        raise ParamsInvalid(["parameters must be a JSON object"])
    problems = [
        f"parameter '{_clip(str(key))}': unknown (declared: {_declared(graph)})"
        for key in given
        if graph.param(str(key)) is None
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
        problems += _json_problems(out) or _argv_problems(graph, out)
    if problems:
        raise ParamsInvalid(problems)
    if graph.partitions is not None:
        partition_keys(graph, out)  # raises on bad partition values
    return out


def _json_problems(params: dict[str, Any]) -> list[str]:
    problems = [f"parameter '{name}': {p}" for name, value in params.items() if (p := value_problem(value))]
    if problems:
        return problems
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        return [f"parameters are not plain JSON: {exc}"]
    return []


def _argv_problems(graph: Graph, params: Mapping[str, Any]) -> list[str]:
    """A parameter placed whole into a command's argv or environment must fit the operating
    system's cap on one argument (Linux: 128 KiB); the params file has no such cap."""
    problems = []
    for node in graph.nodes:
        if not isinstance(node.action, CommandAction):
            continue
        for item in (*node.action.argv, *node.action.env.values()):
            if not (item.startswith("{params.") and item.endswith("}")) or item[8:-1] not in params:
                continue
            value = params[item[8:-1]]
            size = len((value if isinstance(value, str) else json.dumps(value)).encode())
            if size > MAX_ARG_BYTES:
                problems.append(
                    f"parameter '{item[8:-1]}': {size:,} bytes is too long for a command argument of node "
                    f"'{node.name}' (at most {MAX_ARG_BYTES:,}); let the command read it from "
                    "the file named by BATON_PARAMS_FILE instead"
                )
    return problems


def value_problem(value: Any) -> str | None:
    """Why a parameter's value is not plain JSON text Baton can store and hand to any task, or
    None. Walked without recursion: nesting, finiteness, keys, and strings that are text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_PARAM_DEPTH:
            return f"nested deeper than {MAX_PARAM_DEPTH} levels"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, float) and not math.isfinite(item):
            return f"not plain JSON ({item} is not a finite number)"
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            for key, x in item.items():
                if not isinstance(key, str) or text_problem(key):
                    return f"object key {short(key)} must be text"
                stack.append((x, depth + 1))
        elif item is not None and not isinstance(item, bool | int | float):
            return f"not plain JSON ({type(item).__name__} is not a JSON value)"
    return None


def text_problem(text: str) -> str | None:
    """Why a string is not text a process can take (a NUL, or a lone surrogate), or None."""
    if "\x00" in text:
        return f"{short(text)} contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"{short(text)} is not valid Unicode text (a lone surrogate)"
    return None


def params_size_problem(canonical_json: str, max_bytes: int) -> str | None:
    """Why the parameters' stored JSON is too big, or None."""
    size = len(canonical_json.encode())
    if size <= max_bytes:
        return None
    return (
        f"the parameters are {size:,} bytes of JSON, over the {max_bytes:,}-byte cap "
        "(setting max_params_bytes); pass large data as a file path"
    )


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
    keys, problem = checked_keys(raw)
    if problem:
        raise ParamsInvalid([f"{where}: {problem}"])
    return keys


def checked_keys(raw: list[Any]) -> tuple[tuple[str, ...], str | None]:
    """A list's items as partition keys (strings or integers, each non-empty, at most
    :data:`MAX_PARTITION_KEY` characters, without NUL, no two alike), or why not: the one rule
    for a list parameter's partitions and for a discovery task's result."""
    keys = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, str | int):
            return (), f"items must be strings or integers, got {short(item)}"
        key = str(item)
        if not key or len(key) > MAX_PARTITION_KEY or "\x00" in key:
            return (), f"{short(item)} is not a usable partition key"
        keys.append(key)
    duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)  # not keys.count: O(n²)
    if duplicates:
        return (), f"duplicate partitions {duplicates[:5]}"
    return tuple(keys), None


def _declared(graph: Graph) -> str:
    return ", ".join(p.name for p in graph.params) or "none"
