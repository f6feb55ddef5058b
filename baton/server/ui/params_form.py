"""The "Raise event" form on a graph's page: one field per declared parameter, and the typed
parameters made from what an operator typed into them.

The browser posts each field as it was typed (a checkbox as true or false); the server turns the
text into the declared type here, so the rules live in one place and every message names its
parameter as the API's do ("parameter 'year': must be an integer, got '20.5'"). The typed values
then take the API's own path (:func:`baton.server.submits.submit_event`), so a value of the
wrong type, a missing required parameter or an unknown one is refused with the API's message.

What each type takes (each field's hint says it):

- string: the text as typed; integer and number: a decimal number (the browser's number input);
- boolean: a checkbox (ticked: true);
- list: one item per line (each item is text; blank lines are skipped), or a JSON list when the
  text starts with ``[`` (numbers, or items that hold line breaks);
- object: a JSON object.

An empty field is left out, so the graph's default applies (and a required parameter is refused
as missing, by the API's rule). JSON in a field is counted before it is parsed, within one budget
of values per form, the same as an API body's (:func:`baton.server.bodies.json_values`): a
form costs no more to parse than the API's body would.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baton.errors import ParamsInvalid
from baton.graphs.model import Graph, Param, ParamType
from baton.graphs.params import short
from baton.server.bodies import DuplicateKey, TooManyValues, json_values

INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
CONTROLS = {
    ParamType.STRING: "text",
    ParamType.INTEGER: "integer",
    ParamType.NUMBER: "number",
    ParamType.BOOLEAN: "checkbox",
    ParamType.LIST: "lines",
    ParamType.OBJECT: "json",
}
HINTS = {
    ParamType.STRING: "text",
    ParamType.INTEGER: "a whole number, such as 2025",
    ParamType.NUMBER: "a number, such as 0.25 or 1e6",
    ParamType.BOOLEAN: "ticked: true; not ticked: false",
    ParamType.LIST: "one item per line (each item is text), or a JSON list such as [1, 2]",
    ParamType.OBJECT: 'a JSON object, such as {"region": "emea"}',
}


@dataclass(frozen=True)
class FormField:
    """One parameter as the form shows it: its control, its default as pre-filled text (or a
    ticked box), its description and a hint saying what the field takes."""

    name: str
    type: str
    control: str  # text, textarea, integer, number, checkbox, lines, json
    value: str
    checked: bool
    required: bool
    description: str
    hint: str


def form_fields(graph: Graph) -> list[FormField]:
    """The form's fields: the required parameters first (what an operator must fill in), then
    the others, each group in the order the graph holds them (a stored graph: by name)."""
    return [_field(p) for p in sorted(graph.params, key=lambda p: not p.required)]


def _field(param: Param) -> FormField:
    value = _shown(param)
    control = CONTROLS[param.type]
    if control == "text" and "\n" in value:
        control = "textarea"  # a single-line input would drop the default's line breaks
    return FormField(param.name, param.type.value, control, value, param.default is True, param.required,
                     param.description, _hint(param))  # fmt: skip


def _hint(param: Param) -> str:
    hint = HINTS[param.type]
    if param.type is ParamType.BOOLEAN:
        return hint
    if param.required:
        return hint + "; required"
    return hint + ("; left empty: the graph's default" if param.default is not None else "; left empty: null")


def _shown(param: Param) -> str:
    """The default as the field shows it, such that submitting it unchanged gives the default."""
    default = param.default
    if default is None or param.type is ParamType.BOOLEAN:
        return ""
    if param.type is ParamType.STRING:
        return str(default)
    if param.type is ParamType.LIST:
        lines = _as_lines(default)
        return lines if lines is not None else json.dumps(default, ensure_ascii=False)
    if param.type is ParamType.OBJECT:
        return json.dumps(default, ensure_ascii=False, indent=2)
    return json.dumps(default)


def _as_lines(items: list[Any]) -> str | None:
    """A list as one item per line, when reading it back gives the same list; else None."""
    if not all(isinstance(i, str) and i and i == i.strip() and "\n" not in i for i in items):
        return None
    if items and items[0].startswith("["):
        return None
    return "\n".join(items)


class _Budget:
    """JSON values the form's fields may hold together."""

    def __init__(self, total: int) -> None:
        self.total, self.left = total, total

    def spend(self, text: str) -> None:
        try:
            self.left -= json_values(text.encode("utf-8", "surrogatepass"), self.left)
        except TooManyValues:
            raise ValueError(f"holds more than {self.total:,} JSON values, the cap of one submission") from None


def typed_params(graph: Graph, values: Mapping[str, str | bool], max_json_values: int) -> dict[str, Any]:
    """The parameters the form's ``values`` stand for, each of its declared type; empty fields
    left out. Raises ParamsInvalid naming every field that could not be read. A value that is
    not text (a checkbox), or of no declared parameter, is passed on as it is, for the API's
    validation to judge."""
    budget = _Budget(max_json_values)
    out: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in values.items():
        param = graph.param(name)
        if param is None or not isinstance(value, str):
            out[name] = value
            continue
        if value == "" or (param.type is not ParamType.STRING and not value.strip()):
            continue
        try:
            out[name] = _typed(param.type, value, budget)
        except ValueError as exc:
            problems.append(f"parameter '{name}': {exc}")
    if problems:
        raise ParamsInvalid(problems)
    return out


def _typed(ptype: ParamType, text: str, budget: _Budget) -> Any:
    if ptype is ParamType.INTEGER:
        if not INTEGER_TEXT.fullmatch(text.strip()):
            raise ValueError(f"must be an integer, got {short(text)}")
        return _integer(text.strip())
    if ptype is ParamType.NUMBER:
        return _number(text)
    if ptype is ParamType.LIST:
        if text.lstrip().startswith("["):
            return _json(text, budget)
        return [line.strip() for line in text.split("\n") if line.strip()]
    if ptype is ParamType.OBJECT:
        return _json(text, budget)
    return text  # a string, or a boolean sent as text: the API's check names the latter


def _integer(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # longer than Python reads (sys.get_int_max_str_digits)
        raise ValueError(f"must be an integer, got one of {len(digits):,} digits, too long to read") from None


def _number(text: str) -> int | float:
    stripped = text.strip()
    if INTEGER_TEXT.fullmatch(stripped):
        return _integer(stripped)
    if not NUMBER_TEXT.fullmatch(stripped):
        raise ValueError(f"must be a number, got {short(text)}")
    value = float(stripped)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {short(text)}")
    return value


def _json(text: str, budget: _Budget) -> Any:
    budget.spend(text)
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except DuplicateKey as exc:
        raise ValueError(f"the key {short(exc.key)} appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer of over 4,300 digits
        raise ValueError(f"JSON that cannot be read: {str(exc)[:200]}") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of the field's JSON, refused when a key is given twice (as the API's bodies are)."""
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found
