"""Graph specifications: YAML and dicts in, validated graphs or every problem at once out."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from baton.errors import GraphInvalid, Problem
from baton.graphs.model import CommandAction, Dependency, DepMode, Graph, Partitions, PythonAction
from baton.graphs.spec import (
    graph_digest,
    graph_from_dict,
    graph_to_dict,
    load_graph_file,
    load_graph_text,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "year_end_report" / "graph.yaml"


def graph(nodes: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A minimal graph dict around ``nodes``."""
    return {"graph": "g", **top, "nodes": nodes}


def problems(data: Any) -> list[Problem]:
    """The problems graph_from_dict reports for ``data`` (it must refuse it)."""
    with pytest.raises(GraphInvalid) as info:
        graph_from_dict(data)
    return info.value.problems


def only_problem(data: Any) -> str:
    """The single problem reported for ``data``, as text."""
    found = problems(data)
    assert len(found) == 1, found
    return str(found[0])


def text_problems(text: str, source: str = "g.yaml") -> list[Problem]:
    with pytest.raises(GraphInvalid) as info:
        load_graph_text(text, source=source)
    return info.value.problems


PARTS = {"partitions": {"values": ["A", "B"]}}


# --- the example --------------------------------------------------------------------------


def test_example_graph_loads() -> None:
    g = load_graph_file(EXAMPLE)
    names = [n.name for n in g.nodes]
    assert len(names) == 8
    for i, node in enumerate(g.nodes):
        assert all(names.index(d.upstream) < i for d in node.after), f"{node.name} before its upstream"
    assert g.node("hq_summary").after == (Dependency("summarize", DepMode.ALL),)
    assert g.node("hq_report").after == (Dependency("hq_summary", DepMode.BROADCAST),)
    assert {d.mode for d in g.node("process").after} == {DepMode.SAME}
    assert g.partitions == Partitions(param="departments")
    assert not g.node("hq_summary").partitioned and g.node("process").partitioned
    assert isinstance(g.node("hq_report").action, CommandAction)


def test_example_python_path_is_absolute_examples_dir() -> None:
    (entry,) = load_graph_file(EXAMPLE).python_path
    assert Path(entry).is_absolute()
    assert entry.endswith("examples")
    assert Path(entry) == EXAMPLE.parent.parent.resolve()


def test_example_defaults_block_applies() -> None:
    node = load_graph_file(EXAMPLE).node("extract_finance")
    assert node.retry.retries == 2
    assert node.retry.delay_s == 1.0
    assert node.timeout_s == 300.0


# --- cycles and references ----------------------------------------------------------------


def test_cycle_is_reported_with_its_path() -> None:
    # a feeds b, b feeds c, c feeds a
    data = graph(
        {
            "a": {"run": "m:f", "after": ["c"]},
            "b": {"run": "m:f", "after": ["a"]},
            "c": {"run": "m:f", "after": ["b"]},
        }
    )
    message = only_problem(data)
    assert "dependency cycle" in message
    rotations = ("a → b → c → a", "b → c → a → b", "c → a → b → c")
    assert any(r in message for r in rotations), message


def test_self_loop_is_a_cycle() -> None:
    message = only_problem(graph({"a": {"run": "m:f", "after": ["a"]}}))
    assert "dependency cycle: a → a" in message
    assert "nodes.a.after" in message


def test_unknown_node_reference_names_it_and_lists_known_nodes() -> None:
    message = only_problem(graph({"a": {"run": "m:f"}, "b": {"run": "m:f", "after": ["a", "nope"]}}))
    assert "nodes.b.after[1]" in message
    assert "'nope'" in message
    assert "nodes in this graph: a, b" in message


def test_same_upstream_twice_is_rejected() -> None:
    message = only_problem(graph({"a": {"run": "m:f"}, "b": {"run": "m:f", "after": ["a", "a"]}}))
    assert "same upstream node twice" in message


# --- dependency modes ---------------------------------------------------------------------


def test_unknown_mode_is_rejected() -> None:
    after = [{"node": "a", "mode": "sideways"}]
    message = only_problem(graph({"a": {"run": "m:f"}, "b": {"run": "m:f", "after": after}}, **PARTS))
    assert "'sideways'" in message
    assert "same, all, broadcast" in message


@pytest.mark.parametrize(
    ("up_partitioned", "down_partitioned", "mode", "allowed"),
    [
        (False, True, "same", "broadcast"),
        (False, False, "all", "broadcast"),
        (True, True, "broadcast", "all, same"),
        (True, False, "same", "all"),
        (True, False, "broadcast", "all"),
    ],
)
def test_mode_illegal_for_the_shape_is_rejected(
    up_partitioned: bool, down_partitioned: bool, mode: str, allowed: str
) -> None:
    nodes = {
        "up": {"run": "m:f", "partitioned": up_partitioned},
        "down": {
            "run": "m:f",
            "partitioned": down_partitioned,
            "after": [{"node": "up", "mode": mode}],
        },
    }
    message = only_problem(graph(nodes, **PARTS))
    assert f"mode '{mode}' is not valid" in message
    assert f"(allowed: {allowed})" in message


@pytest.mark.parametrize(
    ("up_partitioned", "down_partitioned", "expected"),
    [
        (True, True, DepMode.SAME),
        (True, False, DepMode.ALL),
        (False, True, DepMode.BROADCAST),
        (False, False, DepMode.BROADCAST),
    ],
)
def test_default_mode_follows_the_shape(up_partitioned: bool, down_partitioned: bool, expected: DepMode) -> None:
    nodes = {
        "up": {"run": "m:f", "partitioned": up_partitioned},
        "down": {"run": "m:f", "partitioned": down_partitioned, "after": ["up"]},
    }
    assert graph_from_dict(graph(nodes, **PARTS)).node("down").after == (Dependency("up", expected),)


def test_all_is_allowed_between_partitioned_nodes() -> None:
    nodes = {"up": {"run": "m:f"}, "down": {"run": "m:f", "after": [{"node": "up", "mode": "all"}]}}
    assert graph_from_dict(graph(nodes, **PARTS)).node("down").after == (Dependency("up", DepMode.ALL),)


def test_barrier_turns_same_edges_into_all() -> None:
    nodes = {
        "up": {"run": "m:f"},
        "one": {"run": "m:f", "partitioned": False},
        "down": {"run": "m:f", "barrier": True, "after": ["up", "one"]},
    }
    node = graph_from_dict(graph(nodes, **PARTS)).node("down")
    assert node.after == (Dependency("up", DepMode.SAME), Dependency("one", DepMode.BROADCAST))
    assert node.edges() == (Dependency("up", DepMode.ALL), Dependency("one", DepMode.BROADCAST))


# --- unknown keys -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where", "key"),
    [
        (graph({"a": {"run": "m:f"}}, colour="red"), "colour", "colour"),
        (graph({"a": {"run": "m:f", "retrys": 2}}), "nodes.a.retrys", "retrys"),
        (graph({"a": {"run": "m:f"}}, params={"p": {"type": "string", "defualt": "x"}}), "params.p.defualt", "defualt"),
        (graph({"a": {"run": "m:f"}}, defaults={"partitioned": True}), "defaults.partitioned", "partitioned"),
        (
            graph({"a": {"run": "m:f"}, "b": {"run": "m:f", "after": [{"node": "a", "kind": "x"}]}}),
            "nodes.b.after[0].kind",
            "kind",
        ),
    ],
)
def test_unknown_keys_are_rejected_by_name(data: dict[str, Any], where: str, key: str) -> None:
    message = only_problem(data)
    assert f"<graph>: {where}:" in message
    assert f"unknown key '{key}'" in message


# --- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["tasks.extract", "a:b:c", "1mod:f", "mod:", ":f", "mod:f()", 42])
def test_run_must_be_module_colon_function(target: Any) -> None:
    message = only_problem(graph({"a": {"run": target}}))
    assert "nodes.a.run" in message
    assert "package.module:function" in message


def test_run_accepts_dotted_module() -> None:
    node = graph_from_dict(graph({"a": {"run": "pkg.sub_mod.tasks:do_it"}})).node("a")
    assert node.action == PythonAction("pkg.sub_mod.tasks:do_it")


def test_node_needs_exactly_one_action() -> None:
    assert "exactly one of 'run'" in only_problem(graph({"a": {"description": "x"}}))
    assert "exactly one of 'run'" in only_problem(graph({"a": {"run": "m:f", "command": ["true"]}}))


@pytest.mark.parametrize("command", ["echo hi", [], ["echo", 1], {"argv": ["echo"]}])
def test_command_must_be_a_non_empty_list_of_strings(command: Any) -> None:
    message = only_problem(graph({"a": {"command": command}}))
    assert "nodes.a.command" in message
    assert "non-empty list of strings" in message


def test_env_and_cwd_only_for_commands() -> None:
    found = problems(graph({"a": {"run": "m:f", "env": {"X": "1"}, "cwd": "/tmp"}}))
    assert [p.where for p in found] == ["<graph>: nodes.a.env", "<graph>: nodes.a.cwd"]


@pytest.mark.parametrize("env", [{"X": 1}, {1: "x"}, ["X=1"]])
def test_env_must_map_strings_to_strings(env: Any) -> None:
    assert "nodes.a.env" in only_problem(graph({"a": {"command": ["true"], "env": env}}))


def test_placeholder_embedded_in_an_item_is_rejected_with_a_hint() -> None:
    data = graph({"a": {"command": ["prog", "--year={params.year}"]}}, params={"year": {"type": "integer"}})
    message = only_problem(data)
    assert "nodes.a.command[1]" in message
    assert "whole item" in message
    assert "['--year', '{params.year}']" in message


def test_partition_placeholder_needs_a_partitioned_node() -> None:
    message = only_problem(graph({"a": {"command": ["prog", "{partition}"]}}))
    assert "nodes.a.command[1]" in message
    assert "not partitioned" in message
    ok = graph_from_dict(graph({"a": {"command": ["prog", "{partition}"]}}, **PARTS))
    assert ok.node("a").action == CommandAction(("prog", "{partition}"), {}, None)


def test_unknown_params_placeholder_is_rejected() -> None:
    data = graph({"a": {"command": ["prog", "{params.nope}"]}}, params={"year": {"type": "integer"}})
    message = only_problem(data)
    assert "unknown parameter 'nope'" in message
    assert "declared: year" in message


def test_placeholder_rules_apply_to_env_values() -> None:
    message = only_problem(graph({"a": {"command": ["prog"], "env": {"DAY": "day-{node}"}}}))
    assert "nodes.a.env.DAY" in message
    assert "whole item" in message


def test_every_placeholder_is_accepted_as_a_whole_item() -> None:
    argv = [
        "{python}",
        "{event_id}",
        "{event_type}",
        "{node}",
        "{partition}",
        "{attempt}",
        "{params.year}",
    ]
    data = graph({"a": {"command": argv}}, params={"year": {"type": "integer"}}, **PARTS)
    action = graph_from_dict(data).node("a").action
    assert isinstance(action, CommandAction)
    assert action.argv == tuple(argv)


def test_literal_braces_that_are_not_placeholders_are_kept_verbatim() -> None:
    argv = ["prog", '{"a": 1}', "{unknown}", "{}", "{ node }", "--fmt={name}"]
    env = {"JSON": '{"b": [2]}'}
    action = graph_from_dict(graph({"a": {"command": argv, "env": env, "cwd": "work"}})).node("a").action
    assert action == CommandAction(tuple(argv), env, "work")


# --- several problems, lines and sources --------------------------------------------------

BAD_YAML = """\
graph: g
params:
  year: {type: integer, default: "2025"}
nodes:
  a:
    run: "m:f"
  b:
    run: "nope"
    after: [a, zz]
    colour: red
"""


def test_every_problem_is_reported_together() -> None:
    with pytest.raises(GraphInvalid) as info:
        load_graph_text(BAD_YAML, source="bad.yaml")
    assert len(info.value.problems) == 4
    assert "(4 problems)" in str(info.value)


def test_line_numbers_point_at_the_yaml_line() -> None:
    lines = {p.where: p.line for p in text_problems(BAD_YAML)}
    assert lines == {
        "g.yaml: params.year.default": 3,
        "g.yaml: nodes.b.run": 8,
        "g.yaml: nodes.b.after[1]": 9,
        "g.yaml: nodes.b.colour": 10,
    }


def test_line_number_of_a_value_from_defaults_is_the_node_line() -> None:
    text = "graph: g\ndefaults: {retries: -1}\nnodes:\n  a:\n    run: 'm:f'\n"
    (problem,) = text_problems(text)
    assert problem.where == "g.yaml: nodes.a.retries"
    assert problem.line == 4


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "unit_bad.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    with pytest.raises(GraphInvalid) as info:
        load_graph_file(path)
    assert str(info.value).startswith(f"invalid graph {path} (4 problems)")
    assert info.value.source == str(path)
    assert all(p.where.startswith(f"{path}: ") for p in info.value.problems)
    assert f"{path}: nodes.b.run (line 8):" in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "", "42\n"])
def test_non_mapping_is_graph_invalid(text: str) -> None:
    (problem,) = text_problems(text)
    assert "must be a mapping" in problem.message


def test_invalid_yaml_is_graph_invalid_with_a_line() -> None:
    (problem,) = text_problems("graph: g\nnodes: [a, b\n")
    assert problem.message.startswith("not valid YAML")
    assert problem.line is not None and problem.line >= 2


def test_missing_file_is_graph_invalid(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(GraphInvalid) as info:
        load_graph_file(path)
    assert str(path) in str(info.value)
    assert "cannot read file" in str(info.value)


def test_file_that_is_not_utf8_is_graph_invalid(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00graph")
    with pytest.raises(GraphInvalid) as info:
        load_graph_file(path)
    assert "not UTF-8" in str(info.value)


def test_self_referencing_yaml_alias_is_graph_invalid_not_a_crash() -> None:
    (problem,) = text_problems("graph: g\nnodes:\n  a: {run: 'm:f', labels: &l [*l]}\n")
    assert problem.where == "g.yaml: nodes.a.labels"
    assert problem.line == 3


def test_nodes_are_required() -> None:
    assert "nodes: is required" in only_problem({"graph": "g"})
    assert "graph: is required" in only_problem({"nodes": {"a": {"run": "m:f"}}})


@pytest.mark.parametrize("name", ["1bad", "has space", "", "x" * 101])
def test_names_are_checked(name: str) -> None:
    assert "is not a valid name" in only_problem(graph({name: {"run": "m:f"}}))


# --- round trip and digest ----------------------------------------------------------------

FULL = {
    "graph": "full",
    "event": "full_event",
    "description": "every option set",
    "python_path": ["/opt/code"],
    "params": {
        "year": {"type": "integer", "default": 2025, "description": "the year"},
        "depts": {"type": "list", "default": ["a", "b"]},
        "ratio": {"type": "number", "required": True},
        "flag": {"type": "boolean", "default": False},
        "extra": {"type": "object", "default": {"k": [1, 2]}},
        "label": {"type": "string", "required": False},
    },
    "partitions": {"param": "depts"},
    "defaults": {"retries": 1, "priority": 3},
    "nodes": {
        "extract": {
            "run": "pkg.tasks:extract",
            "retries": 4,
            "retry_delay_s": 0.5,
            "retry_backoff": 3,
            "retry_max_delay_s": 60,
            "retry_jitter": 0.25,
            "timeout_s": 12.5,
            "priority": -2,
            "labels": ["gpu", "big-mem"],
            "cost": {"slots": 2, "mem_mb": 512},
            "description": "pull data",
        },
        "load": {
            "command": ["{python}", "-m", "pkg.load", "{partition}", "{params.year}"],
            "env": {"MODE": "fast", "PART": "{partition}"},
            "cwd": "work",
            "after": [{"node": "extract", "mode": "all"}],
            "barrier": True,
        },
        "total": {"run": "pkg.tasks:total", "partitioned": False, "after": ["load"]},
        "publish": {"command": ["publish"], "partitioned": False, "after": ["total"]},
        "notify": {"run": "pkg.tasks:notify", "after": ["publish", "extract"]},
    },
}


def test_round_trip_of_the_example() -> None:
    g = load_graph_file(EXAMPLE)
    assert graph_from_dict(graph_to_dict(g)) == g


def test_round_trip_with_every_option_set() -> None:
    g = graph_from_dict(FULL)
    again = graph_from_dict(graph_to_dict(g))
    assert again == g
    assert graph_to_dict(again) == graph_to_dict(g)
    extract = g.node("extract")
    assert extract.retry.retries == 4 and extract.retry.backoff == 3.0
    assert extract.labels == frozenset({"gpu", "big-mem"})
    assert extract.cost == {"slots": 2, "mem_mb": 512}
    assert g.node("load").barrier and g.node("load").retry.retries == 1
    assert g.node("total").priority == 3


def test_round_trip_through_json_as_stored() -> None:
    g = graph_from_dict(FULL)
    assert graph_from_dict(json.loads(json.dumps(graph_to_dict(g)))) == g


def test_optional_param_without_default_round_trips() -> None:
    g = graph_from_dict(graph({"a": {"run": "m:f"}}, params={"tag": {"type": "string", "required": False}}))
    param = g.param("tag")
    assert param is not None and not param.required and param.default is None
    assert graph_from_dict(graph_to_dict(g)) == g


def test_digest_is_stable() -> None:
    first = graph_digest(load_graph_file(EXAMPLE))
    assert first == graph_digest(load_graph_file(EXAMPLE))
    assert first == graph_digest(graph_from_dict(graph_to_dict(load_graph_file(EXAMPLE))))
    assert len(first) == 64


@pytest.mark.parametrize(
    ("node", "key", "value"),
    [
        ("extract", "retries", 5),
        ("extract", "priority", 7),
        ("extract", "labels", ["gpu"]),
        ("extract", "cost", {"slots": 3}),
        ("load", "command", ["{python}", "-m", "pkg.load2"]),
        ("total", "timeout_s", 9),
    ],
)
def test_digest_changes_when_a_node_option_changes(node: str, key: str, value: Any) -> None:
    changed = json.loads(json.dumps(FULL))
    changed["nodes"][node][key] = value
    assert graph_digest(graph_from_dict(changed)) != graph_digest(graph_from_dict(FULL))


# --- options ------------------------------------------------------------------------------


def test_defaults_apply_and_node_values_override() -> None:
    data = graph(
        {"a": {"run": "m:f"}, "b": {"run": "m:f", "retries": 0, "labels": ["cpu"]}},
        defaults={"retries": 3, "labels": ["gpu"], "timeout_s": 60, "barrier": False},
    )
    g = graph_from_dict(data)
    a, b = g.node("a"), g.node("b")
    assert (a.retry.retries, a.labels, a.timeout_s) == (3, frozenset({"gpu"}), 60.0)
    assert (b.retry.retries, b.labels, b.timeout_s) == (0, frozenset({"cpu"}), 60.0)


def test_node_defaults_without_options() -> None:
    node = graph_from_dict(graph({"a": {"run": "m:f"}})).node("a")
    assert node.cost == {"slots": 1}
    assert node.labels == frozenset()
    assert node.timeout_s is None
    assert (node.retry.retries, node.retry.delay_s, node.retry.backoff) == (0, 1.0, 2.0)


@pytest.mark.parametrize(
    ("cost", "fragment"),
    [
        ({"slots": 0}, "nodes.a.cost.slots"),
        ({"slots": 1.5}, "must be an integer"),
        ({"mem_mb": -1}, "nodes.a.cost.mem_mb"),
        ({"bad name": 1}, "not a valid resource name"),
        ([1], "must be a mapping"),
    ],
)
def test_cost_is_checked(cost: Any, fragment: str) -> None:
    assert fragment in only_problem(graph({"a": {"run": "m:f", "cost": cost}}))


def test_cost_other_resources_may_be_zero() -> None:
    node = graph_from_dict(graph({"a": {"run": "m:f", "cost": {"mem_mb": 0}}})).node("a")
    assert node.cost == {"slots": 1, "mem_mb": 0}


@pytest.mark.parametrize("labels", [["has space"], "gpu", [1], [""]])
def test_labels_are_checked(labels: Any) -> None:
    assert "nodes.a.labels" in only_problem(graph({"a": {"run": "m:f", "labels": labels}}))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retries", -1),
        ("retries", 1.5),
        ("retries", True),
        ("retry_backoff", 0.5),
        ("retry_delay_s", -1),
        ("retry_jitter", "a"),
        ("timeout_s", 0),
        ("priority", True),
        ("priority", "high"),
        ("barrier", "yes"),
        ("partitioned", "yes"),
    ],
)
def test_bad_option_values_are_rejected(key: str, value: Any) -> None:
    assert f"nodes.a.{key}" in only_problem(graph({"a": {"run": "m:f", key: value}}, **PARTS))


def test_partitions_from_static_values() -> None:
    g = graph_from_dict(
        graph({"a": {"run": "m:f"}, "b": {"run": "m:f", "partitioned": False}}, partitions={"values": ["north", 7]})
    )
    assert g.partitions == Partitions(values=("north", "7"))
    assert g.node("a").partitioned
    assert not g.node("b").partitioned


@pytest.mark.parametrize(
    ("partitions", "fragment"),
    [
        ({"values": []}, "non-empty list"),
        ({"values": ["a", "a"]}, "unique"),
        ({"values": [1, "1"]}, "unique"),
        ({"values": ["a", None]}, "non-empty strings or integers"),
        ({"values": [True]}, "non-empty strings or integers"),
        ({"values": [""]}, "non-empty strings or integers"),
        ({"values": ["a"], "param": "p"}, "must be {param: NAME}"),
        ({"param": "missing"}, "unknown parameter 'missing'"),
        ({"param": "year"}, "must have type list"),
        (["a"], "must be {param: NAME}"),
    ],
)
def test_bad_partitions_are_rejected(partitions: Any, fragment: str) -> None:
    data = graph({"a": {"run": "m:f"}}, params={"year": {"type": "integer"}}, partitions=partitions)
    assert fragment in only_problem(data)


def test_partitioned_node_needs_graph_partitions() -> None:
    message = only_problem(graph({"a": {"run": "m:f", "partitioned": True}}))
    assert "nodes.a.partitioned" in message
    assert "declares no 'partitions'" in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"type": "integer", "default": "2025"}, "params.p.default"),
        ({"type": "integer", "default": True}, "got a boolean"),
        ({"type": "number", "default": float("nan")}, "finite"),
        (
            {"type": "object", "default": {"when": datetime.date(2025, 1, 1)}},
            "not plain JSON",
        ),
        ({"type": "list", "default": [float("inf")]}, "not plain JSON"),
        ({"type": "integer", "default": 1, "required": True}, "cannot be required"),
        ({"type": "integer", "required": "yes"}, "true or false"),
        ({"type": "date"}, "is not a parameter type"),
        ("integer", "must be a mapping"),
    ],
)
def test_bad_params_are_rejected(spec: Any, fragment: str) -> None:
    assert fragment in only_problem(graph({"a": {"run": "m:f"}}, params={"p": spec}))


def test_yaml_date_default_is_rejected_not_a_crash() -> None:
    text = "graph: g\nparams:\n  p: {type: object, default: {when: 2025-01-01}}\nnodes: {a: {run: 'm:f'}}\n"
    (problem,) = text_problems(text)
    assert problem.where == "g.yaml: params.p.default"
    assert problem.line == 3


def test_param_required_by_default_only_without_default() -> None:
    g = graph_from_dict(
        graph(
            {"a": {"run": "m:f"}},
            params={"x": {"type": "string"}, "y": {"type": "integer", "default": 1}},
        )
    )
    x, y = g.param("x"), g.param("y")
    assert x is not None and x.required
    assert y is not None and not y.required and y.default == 1


def test_event_type_defaults_to_graph_name() -> None:
    assert graph_from_dict(graph({"a": {"run": "m:f"}})).event_type == "g"
    assert graph_from_dict(graph({"a": {"run": "m:f"}}, event="other")).event_type == "other"


def test_relative_python_path_resolves_against_base_dir(tmp_path: Path) -> None:
    g: Graph = graph_from_dict(graph({"a": {"run": "m:f"}}, python_path=["lib", "."]), base_dir=tmp_path)
    assert g.python_path == (str((tmp_path / "lib").resolve()), str(tmp_path.resolve()))
    assert "python_path" in only_problem(graph({"a": {"run": "m:f"}}, python_path="lib"))
