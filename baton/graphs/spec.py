"""Graph specifications: YAML files and plain dicts in, validated :class:`Graph` out.

There is one validation path. YAML is parsed within bounds (:mod:`baton.graphs.yamlload`) into a
dict; the Python builder (:mod:`baton.graphs.builder`) produces the same dict; both go through
:func:`graph_from_dict`. :func:`graph_to_dict` is the inverse, used to store a graph and ship it
to workers, so ``graph_from_dict(graph_to_dict(g)) == g``.

A graph read back from the store (``stored=True``) was validated when it was registered, maybe
by an older release with laxer number ranges: it is decoded with every check except those
ranges, so tightening a range never strands an event already running on such a graph. The
controller fails, with a cause, an event whose plan the store then cannot hold.

Every problem is collected and reported at once, each naming the file, the dotted path
(``nodes.process.after[1]``) and, for YAML files, the line.
"""

from __future__ import annotations

import dataclasses
import graphlib
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from baton.errors import GraphInvalid, Problem
from baton.graphs.chains import trigger_to_dict, triggers_from_list
from baton.graphs.keys import MAX_LIMIT, MAX_PERIOD_S, MAX_RATE_LIMIT, MIN_PERIOD_S, template_problems
from baton.graphs.model import (
    EVENT_LIMIT_POLICIES,
    Action,
    CommandAction,
    Concurrency,
    Dependency,
    DepMode,
    EventLimit,
    Graph,
    Node,
    Param,
    ParamType,
    Partitions,
    PythonAction,
    RateLimit,
    Retention,
    RetryPolicy,
    is_name,
)
from baton.graphs.params import MAX_PARTITION_KEY, check_default, short, text_problem
from baton.graphs.schedules import schedule_to_dict, schedules_from_dict
from baton.graphs.yamlload import YamlRefused, load_yaml

TARGET_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", re.ASCII)
PLACEHOLDER_RE = re.compile(r"\{(python|event_id|event_type|node|partition|attempt|params\.[A-Za-z_]\w*)\}")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

MAX_GRAPH_FILE_BYTES = 1024 * 1024

# What the store's columns and the scheduler can hold (PostgreSQL INTEGER is 32 bits) and what
# is sensible for a batch: each numeric option with its (minimum, maximum). Numbers must be finite.
INT32 = 2**31 - 1
DAY_S = 86_400.0
LIMITS: dict[str, tuple[float, float]] = {
    "retries": (0, 1_000),
    "retry_delay_s": (0, 30 * DAY_S),
    "retry_backoff": (1, 100),
    "retry_max_delay_s": (0, 30 * DAY_S),
    "retry_jitter": (0, 10),
    "timeout_s": (0.001, 366 * DAY_S),
    "priority": (-INT32, INT32),
    "slots": (1, INT32),
    "resource": (0, INT32),
    "retention_days": (0.001, 36_600),
}
RETENTION_KEYS = {"succeeded_days", "failed_days", "cancelled_days"}

TOP_KEYS = {"graph", "event", "description", "python_path", "params", "partitions", "defaults", "nodes", "raised_by",
            "retention", "schedules", "event_limit"}  # fmt: skip
EVENT_LIMIT_KEYS = {"max_running", "policy"}
MAX_RUNNING_EVENTS = 1_000_000
OPTION_KEYS = {
    "retries",
    "retry_delay_s",
    "retry_backoff",
    "retry_max_delay_s",
    "retry_jitter",
    "timeout_s",
    "priority",
    "labels",
    "cost",
    "barrier",
    "concurrency",
    "rate_limit",
}
NODE_KEYS = OPTION_KEYS | {"run", "command", "env", "cwd", "after", "partitioned", "description", "partitions_from",
                           "max_partitions"}  # fmt: skip
MAX_DYNAMIC_PARTITIONS = 100_000  # the highest max_partitions: a discovery's plan is one transaction
STATIC = ""  # the partition source of a node partitioned by the graph's 'partitions' (else: its discovery)
PARAM_KEYS = {"type", "required", "default", "description"}


def render_path(path: tuple[str, ...]) -> str:
    """``nodes.process.after[1]``; a key that is not a plain word is quoted: ``nodes["../x"]``."""
    out = ""
    for segment in path:
        if segment.startswith("[") and segment.endswith("]") and segment[1:-1].isdigit():
            out += segment
        elif _PLAIN_SEGMENT.fullmatch(segment):
            out += f".{segment}" if out else segment
        else:
            out += f"[{quote(segment[:60] + ('...' if len(segment) > 60 else ''))}]"
    return out or "(top level)"


def quote(text: str) -> str:
    """``text`` in double quotes, readable (letters of any script as they are) but with every
    invisible or control character escaped, so a message cannot hide or reorder what it shows."""
    out = []
    for ch in text:
        if ch in '"\\' or (unicodedata.category(ch)[0] in "CZ" and ch != " "):
            out.append(json.dumps(ch)[1:-1] if ch in '"\\' or ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _Collector:
    """Collects problems with their YAML line numbers."""

    def __init__(self, source: str, lines: Mapping[tuple[str, ...], int], ranges: bool = True) -> None:
        self.source = source
        self.lines = lines
        self.ranges = ranges  # check numbers against LIMITS (not for graphs read back from the store)
        self.problems: list[Problem] = []

    def add(self, path: tuple[str, ...], message: str, line: int | None = None) -> None:
        found = line if line is not None else self._line(path)
        self.problems.append(Problem(f"{self.source}: {render_path(path)}", message, found))

    def _line(self, path: tuple[str, ...]) -> int | None:
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return None


def load_graph_file(path: str | Path) -> Graph:
    """Read and validate a YAML graph file. Relative ``python_path`` entries are resolved
    against the file's directory. Files over :data:`MAX_GRAPH_FILE_BYTES` are refused unread."""
    file = Path(path)
    try:
        with file.open("rb") as f:
            raw = f.read(MAX_GRAPH_FILE_BYTES + 1)
    except OSError as exc:
        raise GraphInvalid(str(file), [Problem(str(file), f"cannot read file: {exc.strerror or exc}")]) from exc
    if len(raw) > MAX_GRAPH_FILE_BYTES:
        problem = Problem(str(file), f"the file is over {MAX_GRAPH_FILE_BYTES:,} bytes; a graph file is smaller")
        raise GraphInvalid(str(file), [problem])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(str(file), f"cannot read file: not UTF-8 text (byte {exc.start})")
        raise GraphInvalid(str(file), [problem]) from exc
    return load_graph_text(text, source=str(file), base_dir=file.resolve().parent)


def load_graph_text(text: str, source: str = "<string>", base_dir: Path | None = None) -> Graph:
    """Validate a graph given as YAML text (bounded: see :mod:`baton.graphs.yamlload`)."""
    if len(text) > MAX_GRAPH_FILE_BYTES:
        raise GraphInvalid(source, [Problem(source, f"the text is over {MAX_GRAPH_FILE_BYTES:,} characters")])
    try:
        document = load_yaml(text)
    except YamlRefused as exc:
        c = _Collector(source, {})
        for p in exc.problems:
            c.add(p.path, p.message, line=p.line)
        raise GraphInvalid(source, c.problems) from exc
    return graph_from_dict(document.data, source=source, base_dir=base_dir, lines=document.lines)


def graph_from_dict(
    data: Any,
    source: str = "<graph>",
    base_dir: Path | None = None,
    lines: Mapping[tuple[str, ...], int] | None = None,
    stored: bool = False,
) -> Graph:
    """Validate a graph given as plain data; raise GraphInvalid listing every problem.
    ``stored``: the graph comes back from the store (number ranges are not checked again)."""
    c = _Collector(source, lines or {}, ranges=not stored)
    if not isinstance(data, dict):
        c.add((), "a graph must be a mapping with at least 'graph' and 'nodes'")
        raise GraphInvalid(source, c.problems)
    _unknown_keys(c, (), data, TOP_KEYS)
    name = _name(c, ("graph",), data.get("graph"), required=True)
    event = _name(c, ("event",), data.get("event", name), required=False) or name
    params = _params(c, data.get("params", {}))
    partitions = _partitions(c, data.get("partitions"), params)
    defaults = _defaults(c, data.get("defaults", {}))
    nodes = _nodes(c, data.get("nodes"), defaults, partitions is not None, params)
    python_path = _python_path(c, data.get("python_path", []), base_dir)
    description = _text(c, ("description",), data.get("description", ""))
    raised_by = triggers_from_list(c, data.get("raised_by", []), params)
    retention = _retention(c, data.get("retention"))
    event_limit = _event_limit(c, data.get("event_limit"))
    schedules = schedules_from_dict(c, data.get("schedules", {}), params)
    ordered = _topological(c, nodes) if not c.problems else ()
    _discovered_after(c, ordered)
    if c.problems:
        raise GraphInvalid(source, c.problems)
    return Graph(
        name=name or "",
        event_type=event or "",
        nodes=ordered,
        params=params,
        partitions=partitions,
        description=description,
        python_path=python_path,
        raised_by=raised_by,
        retention=retention,
        schedules=schedules,
        event_limit=event_limit,
    )


def _retention(c: _Collector, raw: Any) -> Retention | None:
    """``retention: {succeeded_days: 14, failed_days: 30, cancelled_days: 14}``, each optional."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        c.add(("retention",), "must be a mapping such as {succeeded_days: 14, failed_days: 30}")
        return None
    _unknown_keys(c, ("retention",), raw, RETENTION_KEYS)
    days = {}
    for key in sorted(RETENTION_KEYS & raw.keys()):
        value = _number(c, ("retention", key), raw[key], *LIMITS["retention_days"])
        if value is not None:
            days[key] = float(value)
    return Retention(**days)


def _event_limit(c: _Collector, raw: Any) -> EventLimit | None:
    """``event_limit: {max_running: 2, policy: queue}`` (policy optional)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        c.add(("event_limit",), "must be a mapping such as {max_running: 2, policy: queue}")
        return None
    _unknown_keys(c, ("event_limit",), raw, EVENT_LIMIT_KEYS)
    if "max_running" not in raw:
        c.add(("event_limit",), "needs max_running: at most this many events of the graph run at once")
        return None
    most = _number(c, ("event_limit", "max_running"), raw["max_running"], 1, MAX_RUNNING_EVENTS, integer=True)
    policy = raw.get("policy", "queue")
    if policy not in EVENT_LIMIT_POLICIES:
        c.add(("event_limit", "policy"), f"{short(policy)} is not a policy (expected one of: "
                                         f"{', '.join(EVENT_LIMIT_POLICIES)})")  # fmt: skip
        return None
    return None if most is None else EventLimit(int(most), policy)


def _text(c: _Collector, path: tuple[str, ...], value: Any) -> str:
    """A description: any string (records a problem and gives "" otherwise)."""
    if isinstance(value, str):
        return value
    c.add(path, f"must be a string, not {type(value).__name__}")
    return ""


def _unknown_keys(c: _Collector, path: tuple[str, ...], data: dict[str, Any], known: set[str]) -> None:
    for key in data:
        if key not in known:
            hint = ", ".join(sorted(known))
            c.add((*path, str(key)), f"unknown key {short(key)} (expected one of: {hint})")


def _name(c: _Collector, path: tuple[str, ...], value: Any, required: bool) -> str | None:
    if value is None:
        if required:
            c.add(path, "is required")
        return None
    if not is_name(value):
        c.add(path, f"{short(value)} is not a valid name (letters, digits, _ . -; starting with a letter)")
        return None
    return str(value)


def _params(c: _Collector, raw: Any) -> tuple[Param, ...]:
    if not isinstance(raw, dict):
        c.add(("params",), "must be a mapping of parameter name to {type, default, ...}")
        return ()
    out = []
    for pname, path, spec in _entries(c, "params", raw, "must be a mapping with at least 'type'"):
        _unknown_keys(c, path, spec, PARAM_KEYS)
        param = _param(c, path, pname, spec)
        if param is not None:
            out.append(param)
    return tuple(out)


def _entries(
    c: _Collector, section: str, raw: dict[Any, Any], not_mapping: str
) -> Iterator[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """The entries of a named section whose name is valid and whose body is a mapping, each with
    its path; the others are reported (``not_mapping`` says what the body must be)."""
    for name, spec in raw.items():
        path = (section, str(name))
        if _name(c, path, name, required=True) is None:
            continue
        if not isinstance(spec, dict):
            c.add(path, not_mapping)
            continue
        yield name, path, spec


def _param(c: _Collector, path: tuple[str, ...], name: str, spec: dict[str, Any]) -> Param | None:
    try:
        ptype = ParamType(str(spec.get("type")))
    except ValueError:
        choices = ", ".join(t.value for t in ParamType)
        c.add((*path, "type"), f"{short(spec.get('type'))} is not a parameter type ({choices})")
        return None
    required = spec.get("required", "default" not in spec)
    if not isinstance(required, bool):
        c.add((*path, "required"), "must be true or false")
        return None
    default = spec.get("default")
    if "default" in spec:
        problem = check_default(ptype, default)
        if problem:
            c.add((*path, "default"), problem)
            return None
        if required:
            c.add((*path, "required"), "a parameter with a default cannot be required")
            return None
    return Param(name, ptype, required, default, _text(c, (*path, "description"), spec.get("description", "")))


def _partitions(c: _Collector, raw: Any, params: tuple[Param, ...]) -> Partitions | None:
    if raw is None:
        return None
    path = ("partitions",)
    if not isinstance(raw, dict) or len(raw) != 1 or not ({"param", "values"} & raw.keys()):
        c.add(path, "must be {param: NAME} (a list parameter) or {values: [A, B, ...]}")
        return None
    if "param" in raw:
        pname = raw["param"]
        match = next((p for p in params if p.name == pname), None)
        if match is None:
            c.add((*path, "param"), f"unknown parameter {short(pname)}")
        elif match.type is not ParamType.LIST:
            c.add((*path, "param"), f"parameter {pname!r} must have type list, not {match.type}")
        return Partitions(param=str(pname))
    values = raw["values"]
    if not isinstance(values, list) or not values:
        c.add((*path, "values"), "must be a non-empty list")
        return None
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in values):
        c.add((*path, "values"), "partition values must be non-empty strings or integers")
        return None
    keys = tuple(str(v) for v in values)
    if any(not k or len(k) > MAX_PARTITION_KEY or "\x00" in k for k in keys):
        allowed = f"non-empty strings or integers of at most {MAX_PARTITION_KEY} characters, without NUL"
        c.add((*path, "values"), f"partition values must be {allowed}")
        return None
    if len(set(keys)) != len(keys):
        c.add((*path, "values"), "partition values must be unique")
    return Partitions(values=keys)


def _defaults(c: _Collector, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        c.add(("defaults",), "must be a mapping of node options")
        return {}
    _unknown_keys(c, ("defaults",), raw, OPTION_KEYS)
    return {k: v for k, v in raw.items() if k in OPTION_KEYS}


def _nodes(
    c: _Collector, raw: Any, defaults: dict[str, Any], has_partitions: bool, params: tuple[Param, ...]
) -> dict[str, Node]:
    if not isinstance(raw, dict) or not raw:
        c.add(("nodes",), "is required: a mapping of node name to node")
        return {}
    sources: dict[str, str | None] = {}  # each node's partition source (None: unpartitioned)
    for name, raw_spec in raw.items():
        body = raw_spec if isinstance(raw_spec, dict) else {}
        found = body.get("partitions_from")
        flag = body.get("partitioned", has_partitions or found is not None)
        sources[name] = (found if isinstance(found, str) else STATIC) if flag is True else None
    out = {}
    for name, path, spec in _entries(c, "nodes", raw, "must be a mapping with 'run' or 'command'"):
        node = _node(c, path, name, {**defaults, **spec}, sources, has_partitions, params)
        if node is not None:
            out[name] = node
    return out


def _node(
    c: _Collector,
    path: tuple[str, ...],
    name: str,
    spec: dict[str, Any],
    sources: dict[str, str | None],
    has_partitions: bool,
    params: tuple[Param, ...],
) -> Node | None:
    _unknown_keys(c, path, spec, NODE_KEYS)
    dynamic = _dynamic(c, path, name, spec, sources)
    is_partitioned = spec.get("partitioned", has_partitions or dynamic is not None)
    if not isinstance(is_partitioned, bool):
        c.add((*path, "partitioned"), "must be true or false")
        return None
    if dynamic is not None and not is_partitioned:
        c.add((*path, "partitioned"), "a node with 'partitions_from' is partitioned (by its discovery's result)")
    elif is_partitioned and not has_partitions and dynamic is None:
        c.add((*path, "partitioned"), "the graph declares no 'partitions' (nor the node 'partitions_from')")
    action = _action(c, path, spec, is_partitioned, params)
    after = _after(c, path, name, spec.get("after", []), sources)
    retry = _retry(c, path, spec)
    options = _options(c, path, spec)
    concurrency = _concurrency(c, (*path, "concurrency"), spec.get("concurrency"), is_partitioned, params)
    rate_limit = _rate_limit(c, (*path, "rate_limit"), spec.get("rate_limit"), is_partitioned, params)
    if action is None or after is None or retry is None or options is None or concurrency is False:
        return None
    if dynamic is not None:
        options |= dynamic
    if rate_limit is False:
        return None
    return Node(
        name=name,
        action=action,
        partitioned=is_partitioned,
        after=after,
        retry=retry,
        description=_text(c, (*path, "description"), spec.get("description", "")),
        concurrency=concurrency,
        rate_limit=rate_limit,
        **options,
    )


def _dynamic(
    c: _Collector, path: tuple[str, ...], name: str, spec: dict[str, Any], sources: dict[str, str | None]
) -> dict[str, Any] | None:
    """``partitions_from: NODE`` (an unpartitioned node whose result lists the partitions) and
    ``max_partitions``, as Node fields; None when the node is not dynamic (or is wrong: said)."""
    found = spec.get("partitions_from")
    if found is None:
        if "max_partitions" in spec:
            c.add((*path, "max_partitions"), "applies only to a node with 'partitions_from'")
        return None
    where = (*path, "partitions_from")
    if not isinstance(found, str) or found not in sources or found == name:
        known = ", ".join(sorted(n for n, s in sources.items() if s is None and n != name))
        c.add(where, f"{short(found)} must name an unpartitioned node of this graph (unpartitioned: {known or 'none'})")
        return None
    if sources[found] is not None:
        c.add(where, f"the discovery node '{found}' must be unpartitioned: its one task lists the partitions")
        return None
    cap = _number(c, (*path, "max_partitions"), spec.get("max_partitions", Node.max_partitions), 1,
                  MAX_DYNAMIC_PARTITIONS, integer=True)  # fmt: skip
    return None if cap is None else {"partitions_from": found, "max_partitions": int(cap)}


def _discovered_after(c: _Collector, ordered: tuple[Node, ...]) -> None:
    """A dynamic node must run after its discovery (in its ``after``, or upstream of it): its
    tasks are planned when the discovery succeeds."""
    if not any(n.partitions_from is not None for n in ordered):
        return
    upstream: dict[str, set[str]] = {}
    for node in ordered:
        upstream[node.name] = {d.upstream for d in node.after}.union(*(upstream[d.upstream] for d in node.after))
        if node.partitions_from is not None and node.partitions_from not in upstream[node.name]:
            c.add(("nodes", node.name, "partitions_from"),
                  f"'{node.partitions_from}' must be upstream of '{node.name}': list it in 'after'")  # fmt: skip


def _concurrency(
    c: _Collector, path: tuple[str, ...], raw: Any, partitioned: bool, params: tuple[Param, ...]
) -> Concurrency | Literal[False] | None:
    """``{key: TEMPLATE, limit: N}``; None when absent, False when wrong (said)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or "key" not in raw or "limit" not in raw:
        c.add(path, "must be a mapping {key: TEMPLATE, limit: N}, e.g. {key: 'erp', limit: 3}")
        return False
    _unknown_keys(c, path, raw, {"key", "limit"})
    problems = template_problems(raw["key"], {p.name for p in params}, partitioned)
    for problem in problems:
        c.add((*path, "key"), problem)
    limit = _number(c, (*path, "limit"), raw["limit"], 1, MAX_LIMIT, integer=True)
    if problems or limit is None:
        return False
    return Concurrency(raw["key"], int(limit))


def _rate_limit(
    c: _Collector, path: tuple[str, ...], raw: Any, partitioned: bool, params: tuple[Param, ...]
) -> RateLimit | Literal[False] | None:
    """``{key: TEMPLATE, limit: N, period_s: S}``; None when absent, False when wrong (said)."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not {"key", "limit", "period_s"} <= raw.keys():
        c.add(path, "must be a mapping {key: TEMPLATE, limit: N, period_s: S}, "
                    "e.g. {key: 'partner-api', limit: 100, period_s: 60}")  # fmt: skip
        return False
    _unknown_keys(c, path, raw, {"key", "limit", "period_s"})
    problems = template_problems(raw["key"], {p.name for p in params}, partitioned)
    for problem in problems:
        c.add((*path, "key"), problem)
    limit = _number(c, (*path, "limit"), raw["limit"], 1, MAX_RATE_LIMIT, integer=True)
    period = _number(c, (*path, "period_s"), raw["period_s"], MIN_PERIOD_S, MAX_PERIOD_S)
    if problems or limit is None or period is None:
        return False
    return RateLimit(raw["key"], int(limit), float(period))


def _action(
    c: _Collector, path: tuple[str, ...], spec: dict[str, Any], partitioned: bool, params: tuple[Param, ...]
) -> Action | None:
    if ("run" in spec) == ("command" in spec):
        c.add(path, "needs exactly one of 'run' (module:function) or 'command' (an argv list)")
        return None
    if "run" in spec:
        target = spec["run"]
        if not isinstance(target, str) or not TARGET_RE.fullmatch(target):
            c.add((*path, "run"), f"{short(target)} must look like 'package.module:function'")
            return None
        for key in ("env", "cwd"):
            if key in spec:
                c.add((*path, key), f"'{key}' applies only to 'command' nodes")
        return PythonAction(target)
    return _command(c, path, spec, partitioned, params)


def _command(
    c: _Collector, path: tuple[str, ...], spec: dict[str, Any], partitioned: bool, params: tuple[Param, ...]
) -> CommandAction | None:
    argv = spec["command"]
    if not isinstance(argv, list) or not argv or not all(_os_text(a) for a in argv):
        c.add((*path, "command"), "must be a non-empty list of strings without NUL (an argv list; no shell is used)")
        return None
    env = spec.get("env", {})
    if not isinstance(env, dict) or not all(_os_text(k) and k and "=" not in k and _os_text(v) for k, v in env.items()):
        c.add((*path, "env"), "must be a mapping of variable name (no '=') to string, without NUL")
        return None
    cwd = spec.get("cwd")
    if cwd is not None and not (_os_text(cwd) and cwd):
        c.add((*path, "cwd"), "must be a non-empty string without NUL")
    names = {p.name for p in params}
    for i, item in enumerate(argv):
        _check_placeholders(c, (*path, "command", f"[{i}]"), item, partitioned, names)
    for key, value in env.items():
        _check_placeholders(c, (*path, "env", str(key)), value, partitioned, names)
    return CommandAction(tuple(argv), dict(env), cwd)


def _check_placeholders(c: _Collector, path: tuple[str, ...], item: str, partitioned: bool, names: set[str]) -> None:
    found = PLACEHOLDER_RE.findall(item)
    if not found:
        return
    if PLACEHOLDER_RE.fullmatch(item) is None:
        c.add(path, f"{short(item)}: a placeholder must be the whole item, e.g. ['--year', '{{params.year}}']")
        return
    ref = found[0]
    if ref == "partition" and not partitioned:
        c.add(path, "{partition} is used in a node that is not partitioned")
    if ref.startswith("params.") and ref[7:] not in names:
        c.add(path, f"unknown parameter '{ref[7:]}' (declared: {', '.join(sorted(names)) or 'none'})")


def _after(
    c: _Collector, path: tuple[str, ...], name: str, raw: Any, sources: dict[str, str | None]
) -> tuple[Dependency, ...] | None:
    if not isinstance(raw, list):
        c.add((*path, "after"), "must be a list of node names or {node: NAME, mode: same|all|broadcast}")
        return None
    deps = []
    for i, item in enumerate(raw):
        ipath = (*path, "after", f"[{i}]")
        up, mode = (item.get("node"), item.get("mode")) if isinstance(item, dict) else (item, None)
        if isinstance(item, dict):
            _unknown_keys(c, ipath, item, {"node", "mode"})
        if not isinstance(up, str) or up not in sources:
            known = ", ".join(sorted(sources))
            c.add(ipath, f"unknown node {short(up)} (nodes in this graph: {known})")
            continue
        dep = _dependency(c, ipath, up, mode, sources[up], sources.get(name))
        if dep is not None:
            deps.append(dep)
    if len({d.upstream for d in deps}) != len(deps):
        c.add((*path, "after"), "lists the same upstream node twice")
    return tuple(deps)


def _dependency(
    c: _Collector, path: tuple[str, ...], up: str, mode: Any, up_source: str | None, down_source: str | None
) -> Dependency | None:
    """The edge's mode: ``same`` only between nodes whose partitions come from the same place (the
    graph's, or one discovery's); ``all`` between partitioned nodes else."""
    up_part, down_part = up_source is not None, down_source is not None
    if not up_part:
        allowed = {DepMode.BROADCAST}
    elif down_part and up_source == down_source:
        allowed = {DepMode.SAME, DepMode.ALL}
    else:
        allowed = {DepMode.ALL}
    default = DepMode.SAME if DepMode.SAME in allowed else next(iter(allowed))
    try:
        chosen = DepMode(mode) if mode is not None else default
    except ValueError:
        c.add(path, f"mode {short(mode)} is not one of same, all, broadcast")
        return None
    if chosen not in allowed:
        shape = f"{'partitioned' if up_part else 'unpartitioned'} '{up}' → "
        shape += "partitioned node" if down_part else "unpartitioned node"
        if up_part and down_part and up_source != down_source:
            shape += " whose partitions come from elsewhere"
        ok = ", ".join(sorted(m.value for m in allowed))
        c.add(path, f"mode '{chosen}' is not valid for {shape} (allowed: {ok})")
        return None
    return Dependency(up, chosen)


def _retry(c: _Collector, path: tuple[str, ...], spec: dict[str, Any]) -> RetryPolicy | None:
    default = RetryPolicy()  # the graph format's defaults are the policy's own
    retries = _option(c, path, spec, "retries", default.retries, integer=True)
    delay = _option(c, path, spec, "retry_delay_s", default.delay_s)
    backoff = _option(c, path, spec, "retry_backoff", default.backoff)
    max_delay = _option(c, path, spec, "retry_max_delay_s", default.max_delay_s)
    jitter = _option(c, path, spec, "retry_jitter", default.jitter)
    if retries is None or delay is None or backoff is None or max_delay is None or jitter is None:
        return None
    return RetryPolicy(int(retries), float(delay), float(backoff), float(max_delay), float(jitter))


def _option(
    c: _Collector, path: tuple[str, ...], spec: dict[str, Any], key: str, default: float, integer: bool = False
) -> float | None:
    low, high = LIMITS[key]
    return _number(c, (*path, key), spec.get(key, default), low, high, integer=integer)


def _options(c: _Collector, path: tuple[str, ...], spec: dict[str, Any]) -> dict[str, Any] | None:
    ok = True
    timeout = spec.get("timeout_s")
    if timeout is not None and _option(c, path, spec, "timeout_s", 0) is None:
        ok = False
    priority = _option(c, path, spec, "priority", 0, integer=True)
    labels = spec.get("labels", [])
    if not isinstance(labels, list) or not all(is_name(x) for x in labels):
        c.add((*path, "labels"), "must be a list of label names")
        ok = False
    cost = _cost(c, (*path, "cost"), spec.get("cost", {}))
    barrier = spec.get("barrier", False)
    if not isinstance(barrier, bool):
        c.add((*path, "barrier"), "must be true or false")
        ok = False
    if not ok or priority is None or cost is None:
        return None
    return {
        "timeout_s": float(timeout) if timeout is not None else None,
        "priority": int(priority),
        "labels": frozenset(labels),
        "cost": cost,
        "barrier": barrier,
    }


def _cost(c: _Collector, path: tuple[str, ...], raw: Any) -> dict[str, int] | None:
    if not isinstance(raw, dict):
        c.add(path, "must be a mapping such as {slots: 1, mem_mb: 512}")
        return None
    cost = {"slots": 1}
    for key, value in raw.items():
        if not is_name(key):
            c.add(path, f"{short(key)} is not a valid resource name")
            return None
        low, high = LIMITS["slots" if key == "slots" else "resource"]
        amount = _number(c, (*path, key), value, low, high, integer=True)
        if amount is None:
            return None
        cost[key] = int(amount)
    return cost


def _number(
    c: _Collector, path: tuple[str, ...], value: Any, low: float, high: float, integer: bool = False
) -> float | None:
    """The value as a number within [low, high], or None after recording why not. Integers are
    compared before any conversion (a 400-digit integer does not fit a float)."""
    wrong_kind = integer and not isinstance(value, int)
    if isinstance(value, bool) or not isinstance(value, int | float) or wrong_kind:
        c.add(path, f"{short(value)} must be {'an integer' if integer else 'a number'}")
        return None
    if not c.ranges:
        return value  # an integer stays exact (int() of it later), whatever its size
    if isinstance(value, float) and not math.isfinite(value):
        c.add(path, f"{value!r} is not allowed: must be a finite number between {_fmt(low)} and {_fmt(high)}")
        return None
    if not low <= value <= high:
        kind = "an integer" if integer else "a number"
        c.add(path, f"{short(value)} is out of range: must be {kind} between {_fmt(low)} and {_fmt(high)}")
        return None
    return float(value)


def _fmt(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _os_text(value: Any) -> bool:
    """A string the operating system can take as an argument, variable or path."""
    return isinstance(value, str) and text_problem(value) is None


def _python_path(c: _Collector, raw: Any, base_dir: Path | None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(_os_text(p) and p for p in raw):
        c.add(("python_path",), "must be a list of directories (non-empty strings without NUL)")
        return ()
    base = base_dir or Path.cwd()
    return tuple(str((base / p).resolve()) for p in raw)


def _topological(c: _Collector, nodes: dict[str, Node]) -> tuple[Node, ...]:
    sorter = graphlib.TopologicalSorter({n.name: [d.upstream for d in n.after] for n in nodes.values()})
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        # graphlib lists the cycle upstream first: each node is a dependency of the next.
        c.add(("nodes", cycle[0], "after"), "dependency cycle: " + " → ".join(cycle))
        return ()
    return tuple(nodes[name] for name in order)


# --- serialisation -------------------------------------------------------------------------


def graph_to_dict(graph: Graph) -> dict[str, Any]:
    """The canonical plain-data form of a graph: valid input for graph_from_dict."""
    data: dict[str, Any] = {"graph": graph.name, "event": graph.event_type}
    if graph.description:
        data["description"] = graph.description
    data["python_path"] = list(graph.python_path)
    data["params"] = {p.name: _param_dict(p) for p in graph.params}
    if graph.partitions is not None:
        part = graph.partitions
        data["partitions"] = {"param": part.param} if part.param else {"values": list(part.values)}
    data["nodes"] = {n.name: _node_dict(n) for n in graph.nodes}
    # Written only when declared, so a graph without them keeps the digest it always had.
    if graph.raised_by:
        data["raised_by"] = [trigger_to_dict(t) for t in graph.raised_by]
    if graph.schedules:
        data["schedules"] = {s.name: schedule_to_dict(s) for s in graph.schedules}
    if graph.event_limit is not None:
        data["event_limit"] = dataclasses.asdict(graph.event_limit)
    if graph.retention is not None:
        kept = dataclasses.asdict(graph.retention)
        data["retention"] = {key: days for key, days in kept.items() if days is not None}
    return data


def _param_dict(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"type": p.type.value, "required": p.required}
    if p.default is not None:  # an optional parameter may have no default
        out["default"] = p.default
    if p.description:
        out["description"] = p.description
    return out


def _node_dict(n: Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(n.action, PythonAction):
        out["run"] = n.action.target
    else:
        out["command"] = list(n.action.argv)
        if n.action.env:
            out["env"] = dict(n.action.env)
        if n.action.cwd is not None:
            out["cwd"] = n.action.cwd
    out["partitioned"] = n.partitioned
    out["after"] = [{"node": d.upstream, "mode": d.mode.value} for d in n.after]
    r = n.retry
    out |= {
        "retries": r.retries,
        "retry_delay_s": r.delay_s,
        "retry_backoff": r.backoff,
        "retry_max_delay_s": r.max_delay_s,
        "retry_jitter": r.jitter,
        "priority": n.priority,
        "labels": sorted(n.labels),
        "cost": dict(n.cost),
        "barrier": n.barrier,
    }
    if n.timeout_s is not None:
        out["timeout_s"] = n.timeout_s
    if n.description:
        out["description"] = n.description
    if n.concurrency is not None:
        out["concurrency"] = {"key": n.concurrency.key, "limit": n.concurrency.limit}
    if n.rate_limit is not None:
        rate = n.rate_limit
        out["rate_limit"] = {"key": rate.key, "limit": rate.limit, "period_s": rate.period_s}
    if n.partitions_from is not None:  # written only when declared: other graphs keep their digests
        out["partitions_from"] = n.partitions_from
        out["max_partitions"] = n.max_partitions
    return out


def graph_digest(graph: Graph) -> str:
    """A content hash: registering the same graph twice yields the same version."""
    canonical = json.dumps(graph_to_dict(graph), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
