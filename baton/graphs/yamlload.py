"""YAML in bounded time and memory: the only place Baton parses YAML.

Anchors and aliases are legal YAML and handy for sharing a block of options, but an alias is a
reference: nine aliases of nine aliases of ... ("billion laughs") compose into a few hundred
nodes that expand into billions once the values are turned into strings or JSON. So the
document is composed first (aliases stay references), then measured as if every alias were
expanded, and refused when that exceeds :data:`MAX_NODES` nodes or :data:`MAX_DEPTH` levels,
or when an alias refers to itself. Only then is it constructed into Python values.

Duplicate keys in one mapping are refused too (YAML says they are an error; PyYAML keeps the
last one silently). Every refusal names the dotted path and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

MAX_DEPTH = 64  # nesting levels, aliases expanded
MAX_NODES = 100_000  # scalars, sequences and mappings, aliases expanded
MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlProblem:
    """Why a document was refused: where (a path of keys and ``[i]`` indexes) and what."""

    path: tuple[str, ...]
    message: str
    line: int | None


class YamlRefused(Exception):
    """The text is not YAML Baton will read; ``problems`` says where and why."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class Document:
    """A parsed document: its data, and the line where each path starts."""

    data: Any
    lines: Mapping[tuple[str, ...], int]


if yaml.__with_libyaml__:  # libyaml scans and parses (iteratively, in C); composing stays ours
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
else:  # pragma: no cover - PyYAML built without libyaml

    class _Parser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _OverBounds(yaml.composer.ComposerError):
    """Composing stopped at a bound (the document may be valid YAML, but too big to read)."""


class _Loader(yaml.composer.Composer, _Parser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """Parses with libyaml, composes in Python so that composing can refuse to go past MAX_DEPTH
    levels (the composer recurses) or MAX_NODES nodes, and constructs safe values only."""

    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH or self._composed > MAX_NODES:
                event: Any = self.peek_event()
                deep = self._depth > MAX_DEPTH
                what = f"nested deeper than {MAX_DEPTH} levels" if deep else f"more than {MAX_NODES:,} values"
                raise _OverBounds(None, None, what, event.start_mark)
            node: yaml.Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def load_yaml(text: str) -> Document:
    """Parse one YAML document within the bounds above; raise YamlRefused otherwise."""
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise YamlRefused([_yaml_problem(exc)]) from exc
        if root is None:
            return Document(None, {})
        lines, paths, duplicates = _walk(root)
        _check_expansion(root, paths)
        if duplicates:
            raise YamlRefused(sorted(duplicates, key=lambda p: p.line or 0))
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError as exc:
            raise YamlRefused([_yaml_problem(exc)]) from exc
        except Exception as exc:  # PyYAML's own constructors fail oddly on some tagged values
            raise YamlRefused([YamlProblem((), f"not valid YAML: a value cannot be read ({exc})", None)]) from exc
        return Document(data, lines)
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = "too large to read" if isinstance(exc, _OverBounds) else "not valid YAML"
    return YamlProblem((), f"{what}: {exc}", line)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: yaml.Node, paths: Mapping[int, tuple[str, ...]]) -> None:
    """Measure the document as if every alias were expanded, without expanding anything: each
    distinct node is sized once (post-order, no recursion), and a node reached again through an
    alias adds its size again. A node met again while it is still being sized is a cycle."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            if size[key] > MAX_NODES:
                message = f"expands to more than {MAX_NODES:,} values (aliases counted)"
                raise YamlRefused([_too_big(node, paths, message)])
            if depth[key] > MAX_DEPTH:
                message = f"nests deeper than {MAX_DEPTH} levels (aliases expanded)"
                raise YamlRefused([_too_big(node, paths, message)])
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise YamlRefused([_too_big(node, paths, "an alias refers to a node that contains it (a recursive alias)")])
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _too_big(node: yaml.Node, paths: Mapping[int, tuple[str, ...]], message: str) -> YamlProblem:
    return YamlProblem(paths.get(id(node), ()), message, node.start_mark.line + 1)


def _walk(
    root: yaml.Node,
) -> tuple[dict[tuple[str, ...], int], dict[int, tuple[str, ...]], list[YamlProblem]]:
    """The line where each path starts, the first path of each node, and every duplicate key
    (with its path and line). A node reached again through an alias is not walked again."""
    lines: dict[tuple[str, ...], int] = {}
    paths: dict[int, tuple[str, ...]] = {}
    duplicates: list[YamlProblem] = []
    stack: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in paths:
            continue
        paths[id(node)] = path
        if isinstance(node, yaml.MappingNode):
            entries = [(key, value, (*path, str(key.value))) for key, value in node.value if key.tag != MERGE_TAG]
            duplicates += _duplicate_keys(entries)
            for key, value, sub in reversed(entries):  # popped in document order
                lines[sub] = key.start_mark.line + 1
                stack.append((value, sub))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, f"[{i}]")) for i, item in reversed(list(enumerate(node.value))))
    return lines, paths, duplicates


def _duplicate_keys(entries: list[tuple[yaml.Node, yaml.Node, tuple[str, ...]]]) -> list[YamlProblem]:
    first: dict[tuple[str, str], int] = {}
    found = []
    for key, _, path in entries:
        if not isinstance(key, yaml.ScalarNode):
            continue
        ident, line = (key.tag, str(key.value)), key.start_mark.line + 1
        if ident in first:
            name = ident[1] if len(ident[1]) <= 60 else ident[1][:57] + "..."
            found.append(YamlProblem(path, f"duplicate key '{name}' (first at line {first[ident]})", line))
        else:
            first[ident] = line
    return found
