"""The "Raise event" form's rules, without a server: a field per parameter with its default shown
so that submitting it unchanged gives the default, and text turned into each declared type with
messages that name the parameter (the API's own checks follow in the route)."""

from __future__ import annotations

from typing import Any

import pytest

from baton.errors import ParamsInvalid
from baton.graphs.builder import GraphBuilder
from baton.graphs.model import Graph
from baton.graphs.params import validate_params
from baton.server.ui.params_form import form_fields, typed_params

VALUES = 1000


def every_type() -> Graph:
    g = GraphBuilder("form_types")
    g.param("note", "string", default="", description="free text")
    g.param("year", "integer", required=True, description="the fiscal year")
    g.param("rate", "number", default=0.25).param("dry_run", "boolean", default=True)
    g.param("depts", "list", default=["sales", "ops"]).param("options", "object", default={"currency": "EUR"})
    return g.python("only", "m:f").build()


def _typed(values: dict[str, str | bool], graph: Graph | None = None) -> dict[str, Any]:
    return typed_params(graph or every_type(), values, VALUES)


def _problems(values: dict[str, str | bool]) -> list[str]:
    with pytest.raises(ParamsInvalid) as caught:
        _typed(values)
    return caught.value.problems


def test_a_field_per_parameter_required_first_with_its_control_default_and_help() -> None:
    fields = {f.name: f for f in form_fields(every_type())}
    assert next(iter(fields)) == "year"  # what must be filled in comes first
    assert {n: f.control for n, f in fields.items()} == {
        "year": "integer", "note": "text", "rate": "number", "dry_run": "checkbox", "depts": "lines",
        "options": "json",
    }  # fmt: skip
    assert fields["year"].value == "" and fields["year"].required and "required" in fields["year"].hint
    assert fields["year"].description == "the fiscal year"
    assert fields["rate"].value == "0.25" and fields["dry_run"].checked
    assert fields["depts"].value == "sales\nops" and "one item per line" in fields["depts"].hint
    assert fields["options"].value == '{\n  "currency": "EUR"\n}'
    assert "the graph's default" in fields["rate"].hint


@pytest.mark.parametrize(
    "default",
    [["a", "b"], [1, 2], ["has space inside", "x"], [" padded"], ["[bracket", "x"], ["two\nlines"], [], ["", "x"]],
)
def test_a_list_default_submitted_unchanged_is_the_default(default: list[Any]) -> None:
    graph = GraphBuilder("lists").param("items", "list", default=default).python("only", "m:f").build()
    (field,) = form_fields(graph)
    typed = typed_params(graph, {"items": field.value}, VALUES)
    assert validate_params(graph, typed)["items"] == default


def test_a_string_default_with_line_breaks_gets_a_text_area() -> None:
    graph = GraphBuilder("texts").param("letter", "string", default="Dear all,\nthanks").python("o", "m:f").build()
    (field,) = form_fields(graph)
    assert field.control == "textarea" and _typed({"letter": field.value}, graph) == {"letter": "Dear all,\nthanks"}


def test_text_becomes_each_declared_type() -> None:
    assert _typed({
        "note": "  kept as typed ", "year": " 2025 ", "rate": "1e3", "dry_run": False,
        "depts": "north\n\n  south  \n", "options": '{"currency": "USD", "round": [2]}',
    }) == {
        "note": "  kept as typed ", "year": 2025, "rate": 1000.0, "dry_run": False, "depts": ["north", "south"],
        "options": {"currency": "USD", "round": [2]},
    }  # fmt: skip
    assert _typed({"rate": "3", "depts": '[1, "b"]'}) == {"rate": 3, "depts": [1, "b"]}
    assert _typed({"year": "123456789012345678901234567890"}) == {"year": 123456789012345678901234567890}


def test_an_empty_field_is_left_out_so_the_default_applies() -> None:
    assert _typed({"note": "", "year": "", "rate": "  ", "depts": "\n", "options": ""}) == {}


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"year": "20.5"}, "parameter 'year': must be an integer, got '20.5'"),
        ({"year": "\uff12\uff10\uff12\uff15"}, "parameter 'year': must be an integer, got '\uff12\uff10\uff12\uff15'"),
        ({"year": "1_000"}, "parameter 'year': must be an integer, got '1_000'"),
        ({"rate": "abc"}, "parameter 'rate': must be a number, got 'abc'"),
        ({"rate": "nan"}, "parameter 'rate': must be a number, got 'nan'"),
        ({"rate": "1e999"}, "parameter 'rate': must be a finite number, got '1e999'"),
        ({"options": "{"}, "parameter 'options': not valid JSON: Expecting property name enclosed in double "
                           "quotes (line 1, column 2)"),
        ({"options": '{"a": 1, "a": 2}'}, "parameter 'options': the key 'a' appears twice in one object"),
        ({"depts": "[1,"}, "parameter 'depts': not valid JSON: Expecting value (line 1, column 4)"),
        ({"options": "[" * 100_000 + "]" * 100_000}, "parameter 'options': holds more than 1,000 JSON values, "
                                                     "the cap of one submission"),
    ],
)  # fmt: skip
def test_text_that_is_not_of_its_type_is_refused_naming_the_parameter(
    values: dict[str, str | bool], problem: str
) -> None:
    assert _problems(values) == [problem]


def test_every_unreadable_field_is_named_at_once() -> None:
    assert _problems({"year": "x", "rate": "y", "note": "fine"}) == [
        "parameter 'year': must be an integer, got 'x'",
        "parameter 'rate': must be a number, got 'y'",
    ]


def test_the_json_budget_is_shared_by_the_fields_of_one_form() -> None:
    half = "[" + ",".join(["1"] * 400) + "]"
    assert len(_typed({"depts": half, "options": '{"a": ' + half + "}"})["depts"]) == 400
    problems = _problems({"depts": half, "options": '{"a": ' + half + ', "b": ' + half + "}"})
    assert problems == ["parameter 'options': holds more than 1,000 JSON values, the cap of one submission"]


def test_what_is_not_text_or_not_declared_is_left_for_the_apis_check() -> None:
    """A script posting a boolean for a number, or text for a boolean, or an undeclared name,
    gets the API's own message from validate_params (the route calls it next)."""
    typed = _typed({"rate": True, "dry_run": "yes", "nope": "1"})
    assert typed == {"rate": True, "dry_run": "yes", "nope": "1"}
    with pytest.raises(ParamsInvalid) as caught:
        validate_params(every_type(), {**typed, "year": 1})
    assert caught.value.problems == [
        "parameter 'nope': unknown (declared: note, year, rate, dry_run, depts, options)",
        "parameter 'rate': expected number, got a boolean",
        "parameter 'dry_run': expected boolean, got str 'yes'",
    ]
