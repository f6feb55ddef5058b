"""Templated parameter values: ``"{source.params.year}"`` or ``"report-{fire.date}"``.

A value given to an event by something other than a person (a schedule's fire, another event's
end) may name facts of its cause in braces. A string that is exactly one placeholder takes the
fact's own value and type (an integer stays an integer, a list stays a list); placeholders inside
longer text are written as text. Lists and mappings are rendered item by item. ``{{`` and ``}}``
are literal braces. There is no expression language: a name is looked up, nothing is evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
_BRACES = re.compile(r"\{\{|\}\}")


class Unknown(LookupError):
    """A placeholder names no fact (``name``); raised by a lookup."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def names_in(value: Any) -> Iterator[str]:
    """Every placeholder name in a value, nested values included."""
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(_BRACES.sub("", value))
    elif isinstance(value, list):
        for item in value:
            yield from names_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from names_in(item)


def render(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with each placeholder replaced by ``lookup(name)`` (which raises :class:`Unknown`
    for a name it does not know)."""
    if isinstance(value, str):
        return _render_text(value, lookup)
    if isinstance(value, list):
        return [render(item, lookup) for item in value]
    if isinstance(value, dict):
        return {key: render(item, lookup) for key, item in value.items()}
    return value


def _render_text(text: str, lookup: Callable[[str], Any]) -> Any:
    whole = PLACEHOLDER.fullmatch(text)
    if whole:
        return lookup(whole.group(1))
    parts = _BRACES.split(text)
    out = [PLACEHOLDER.sub(lambda m: _as_text(lookup(m.group(1))), part) for part in parts]
    literal = iter(_BRACES.findall(text))
    return "".join(piece + (next(literal, "")[:1]) for piece in out)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
