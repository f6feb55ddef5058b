"""Event parameters: CLI strings coerced by declared type, typed values checked and defaulted."""

from __future__ import annotations

from typing import Any

import pytest

from baton.errors import ParamsInvalid
from baton.graphs.model import Graph
from baton.graphs.params import parse_cli_params, partition_keys, validate_params
from baton.graphs.spec import graph_from_dict


def make_graph(params: dict[str, Any], partitions: dict[str, Any] | None = None) -> Graph:
    data: dict[str, Any] = {"graph": "g", "params": params, "nodes": {"a": {"run": "m:f"}}}
    if partitions is not None:
        data["partitions"] = partitions
    return graph_from_dict(data)


TYPED = make_graph(
    {
        "name": {"type": "string", "default": "x"},
        "year": {"type": "integer", "default": 2025},
        "ratio": {"type": "number", "default": 0.5},
        "dry_run": {"type": "boolean", "default": False},
        "tags": {"type": "list", "default": []},
        "options": {"type": "object", "default": {}},
    }
)

REQUIRED = make_graph({"year": {"type": "integer"}, "label": {"type": "string", "default": "l"}})

PARTITIONED = make_graph({"departments": {"type": "list", "default": ["sales"]}}, partitions={"param": "departments"})


def refused(call: Any, *args: Any) -> str:
    """The message of the ParamsInvalid that ``call(*args)`` raises."""
    with pytest.raises(ParamsInvalid) as info:
        call(*args)
    return str(info.value)


# --- CLI coercion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        ("name=hello world", {"name": "hello world"}),
        ("name=a=b", {"name": "a=b"}),
        ("name=", {"name": ""}),
        ("year=2024", {"year": 2024}),
        ("year=-3", {"year": -3}),
        ("ratio=2.5", {"ratio": 2.5}),
        ("ratio=3", {"ratio": 3.0}),
        ("tags=a, b,,c", {"tags": ["a", "b", "c"]}),
        ("tags=solo", {"tags": ["solo"]}),
        ('tags=["a", 1, {"k": null}]', {"tags": ["a", 1, {"k": None}]}),
        ('options={"depth": 2, "names": ["x"]}', {"options": {"depth": 2, "names": ["x"]}}),
    ],
)
def test_cli_values_are_coerced_by_type(pair: str, expected: dict[str, Any]) -> None:
    result = parse_cli_params(TYPED, [pair])
    assert result == expected
    assert type(next(iter(result.values()))) is type(next(iter(expected.values())))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("yes", True),
        ("1", True),
        ("on", True),
        ("false", False),
        ("FALSE", False),
        ("no", False),
        ("0", False),
        ("off", False),
    ],
)
def test_cli_booleans(text: str, expected: bool) -> None:
    assert parse_cli_params(TYPED, [f"dry_run={text}"]) == {"dry_run": expected}


@pytest.mark.parametrize(
    ("pair", "fragment"),
    [
        ("year=abc", "parameter 'year': expected integer, got 'abc'"),
        ("year=1.5", "parameter 'year'"),
        ("ratio=many", "parameter 'ratio': expected number"),
        ("ratio=nan", "parameter 'ratio': expected a finite number"),
        ("ratio=inf", "parameter 'ratio': expected a finite number"),
        ("dry_run=maybe", "parameter 'dry_run': expected true or false"),
        ("options=depth=2", "parameter 'options': expected object as JSON"),
        ("options=[1, 2]", "parameter 'options': expected object, got list"),
        ("tags=[1, 2", "parameter 'tags': expected list as JSON"),
        ("nope=1", "parameter 'nope': unknown (declared: name, year, ratio"),
        ("year", "'year' is not of the form name=value"),
        ("=1", "'=1' is not of the form name=value"),
    ],
)
def test_cli_refusals_name_the_parameter(pair: str, fragment: str) -> None:
    assert fragment in refused(parse_cli_params, TYPED, [pair])


def test_cli_reports_every_bad_pair_together() -> None:
    with pytest.raises(ParamsInvalid) as info:
        parse_cli_params(TYPED, ["year=x", "ratio=y", "name=ok", "zz=1"])
    assert len(info.value.problems) == 3


# --- validation ---------------------------------------------------------------------------


def test_defaults_are_filled() -> None:
    assert validate_params(TYPED, {"year": 1999}) == {
        "name": "x",
        "year": 1999,
        "ratio": 0.5,
        "dry_run": False,
        "tags": [],
        "options": {},
    }


def test_missing_required_is_refused() -> None:
    message = refused(validate_params, REQUIRED, {})
    assert "parameter 'year': required but missing (integer)" in message


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("year", "abc", "expected integer, got str 'abc'"),
        ("year", "2025", "expected integer, got str"),
        ("year", True, "expected integer, got a boolean"),
        ("year", 1.0, "expected integer, got float"),
        ("ratio", False, "got a boolean"),
        ("ratio", float("nan"), "finite"),
        ("ratio", float("inf"), "finite"),
        ("ratio", "0.5", "expected number"),
        ("dry_run", 1, "expected boolean"),
        ("tags", "a,b", "expected list"),
        ("options", [], "expected object"),
        ("name", None, "expected string"),
    ],
)
def test_wrong_types_are_refused_by_name(name: str, value: Any, fragment: str) -> None:
    message = refused(validate_params, TYPED, {name: value})
    assert f"parameter '{name}'" in message
    assert fragment in message


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": [float("-inf")]}, {"x": {1, 2}}])
def test_nested_values_must_be_plain_json(value: dict[str, Any]) -> None:
    assert "not plain JSON" in refused(validate_params, TYPED, {"options": value})


def test_int_is_a_number() -> None:
    assert validate_params(TYPED, {"ratio": 3})["ratio"] == 3


def test_unknown_param_is_refused() -> None:
    message = refused(validate_params, REQUIRED, {"year": 1, "yaer": 2})
    assert "parameter 'yaer': unknown (declared: year, label)" in message


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(ParamsInvalid) as info:
        validate_params(REQUIRED, {"label": 5, "extra": 1})
    assert len(info.value.problems) == 3


def test_params_must_be_a_mapping() -> None:
    assert "must be a JSON object" in refused(validate_params, REQUIRED, [("year", 1)])


# --- partitions ---------------------------------------------------------------------------


def test_partition_keys_keep_order_and_make_ints_strings() -> None:
    params = validate_params(PARTITIONED, {"departments": ["b", 7, "a"]})
    assert partition_keys(PARTITIONED, params) == ("b", "7", "a")


def test_partition_default_is_used() -> None:
    params = validate_params(PARTITIONED, {})
    assert partition_keys(PARTITIONED, params) == ("sales",)


@pytest.mark.parametrize(
    ("departments", "fragment"),
    [
        ([], "must be a non-empty list"),
        (["a", "b", "a", "c", "b"], "duplicate partitions ['a', 'b']"),
        ([1, "1"], "duplicate partitions ['1']"),
        (["a", 1.5], "items must be strings or integers, got 1.5"),
        (["a", None], "items must be strings or integers"),
        ([True], "items must be strings or integers"),
        ([["a"]], "items must be strings or integers"),
        (["a", ""], "'' is not a usable partition key"),
        (["x" * 201], "is not a usable partition key"),
        (["a\x00b"], "contains a NUL character"),
    ],
)
def test_bad_partitions_are_refused(departments: list[Any], fragment: str) -> None:
    message = refused(validate_params, PARTITIONED, {"departments": departments})
    assert "parameter 'departments'" in message
    assert fragment in message


def test_many_duplicate_partitions_are_refused() -> None:
    departments = [f"d{i % 5000}" for i in range(10_000)]
    message = refused(partition_keys, PARTITIONED, {"departments": departments})
    assert "duplicate partitions ['d0', 'd1', 'd10', 'd100', 'd1000']" in message


def test_static_partitions_ignore_params() -> None:
    graph = make_graph({}, partitions={"values": ["north", "south"]})
    assert partition_keys(graph, {}) == ("north", "south")


def test_unpartitioned_graph_has_no_keys() -> None:
    assert partition_keys(TYPED, {"year": 1}) == ()


def test_a_parameter_placed_whole_in_an_argv_item_must_fit_the_os_cap() -> None:
    argv = graph_from_dict({
        "graph": "argv",
        "params": {"blob": {"type": "string", "default": ""}, "other": {"type": "list", "default": []}},
        "nodes": {"a": {"command": ["echo", "{params.blob}"], "env": {"X": "{params.other}"}}},
    })  # fmt: skip
    assert validate_params(argv, {"blob": "x" * 131_071})["blob"] == "x" * 131_071
    message = refused(validate_params, argv, {"blob": "x" * 131_072})
    assert "parameter 'blob': 131,072 bytes is too long for a command argument of node 'a'" in message
    assert "BATON_PARAMS_FILE" in message
    assert "parameter 'other'" in refused(validate_params, argv, {"other": ["y" * 100] * 2000})


@pytest.mark.parametrize(
    ("kind", "value", "fragment"),
    [
        ("string", "a\x00b", "contains a NUL character"),
        ("string", "\udcff", "lone surrogate"),
        ("object", {"k\x00": 1}, "object key"),
        ("list", [[[[[]]]]], None),
        ("list", [1.5, "é", None, True], None),
    ],
)
def test_strings_must_be_text_a_process_can_take(kind: str, value: Any, fragment: str | None) -> None:
    graph = make_graph({"v": {"type": kind, "required": False}})
    if fragment is None:
        assert validate_params(graph, {"v": value})["v"] == value
    else:
        assert fragment in refused(validate_params, graph, {"v": value})
