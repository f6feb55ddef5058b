"""The bounded YAML loader, and a fuzz of the whole graph loader: whatever the text or data,
the only exception that comes out is Baton's own GraphInvalid."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from baton.errors import GraphInvalid
from baton.graphs.model import Graph
from baton.graphs.spec import graph_from_dict, graph_to_dict, load_graph_text, quote, render_path
from baton.graphs.yamlload import MAX_DEPTH, MAX_NODES, YamlRefused, load_yaml

FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def refused(text: str) -> YamlRefused:
    with pytest.raises(YamlRefused) as caught:
        load_yaml(text)
    return caught.value


def test_aliases_within_the_bound_are_expanded_as_usual() -> None:
    document = load_yaml("base: &b {retries: 2}\nnodes:\n  a: {<<: *b, run: 'm:f'}\n  b: *b\n")
    assert document.data["nodes"] == {"a": {"retries": 2, "run": "m:f"}, "b": {"retries": 2}}
    assert document.lines[("nodes", "b")] == 4


def test_an_alias_bomb_is_measured_not_expanded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]  # 10**6 values
    (problem,) = refused("\n".join(lines)).problems
    assert problem.path == ("a4",) and problem.line == 5  # a4 holds 111,111 values
    assert f"more than {MAX_NODES:,} values" in problem.message


def test_merge_keys_count_what_they_bring() -> None:
    lines = ["a0: &a0 {" + ", ".join(f"k{j}: v" for j in range(10)) + "}"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 5)]
    lines.append("m: {<<: *a4}")
    assert "more than" in refused("\n".join(lines)).problems[0].message


def test_depth_counts_aliases_expanded() -> None:
    lines = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    assert "deeper than" in refused("\n".join(lines)).problems[0].message


def test_a_recursive_alias_is_refused() -> None:
    (problem,) = refused("a: &x [1, *x]\n").problems
    assert problem.path == ("a",) and "recursive alias" in problem.message


def test_duplicate_keys_name_both_lines_and_merges_are_not_duplicates() -> None:
    problems = refused("a: 1\nb: {c: 1, c: 2}\na: 3\n").problems
    assert [(p.path, p.line) for p in problems] == [(("b", "c"), 2), (("a",), 3)]
    assert "first at line 1" in problems[1].message
    assert load_yaml("d: &d {x: 1}\ne: {<<: *d, x: 2}\n").data["e"] == {"x": 2}


def test_paths_quote_odd_names_and_escape_invisible_characters() -> None:
    assert render_path(("nodes", "process", "after", "[1]")) == "nodes.process.after[1]"
    assert render_path(("nodes", "../x")) == 'nodes["../x"]'
    assert render_path(("nodes", "")) == 'nodes[""]'
    assert render_path(("nodes", "a.b")) == 'nodes["a.b"]'
    assert quote("département") == '"département"'
    assert quote('a\u202eb\u200bc\n"') == '"a\\u202eb\\u200bc\\n\\""'
    assert render_path(()) == "(top level)"


# --- fuzz ----------------------------------------------------------------------------------

TOKENS = [
    "graph: g\n", "nodes:\n", "  a: ", "  b: ", "{run: 'm:f'}", "{command: [echo, x]}", "\n", "  ", "- ", "? ",
    ": ", "{", "}", "[", "]", ", ", "&a ", "&b ", "*a", "*b", "<<: ", "!!binary ", "!!python/name:os.system ",
    "!!set ", "!!omap ", "!!timestamp ", "!x ", ".nan", ".inf", "-.inf", "1e400", "99999999999999999999999",
    "0x1F", "0o17", "~", "null", "yes", "2024-01-01", "'", '"', "\\u0000", "\\x00", "\t", "#", "|\n", ">\n", "---\n",
    "...\n", "%YAML 1.1\n", "after: [a]", "partitions: {values: [a, b]}", "params: {p: {type: list}}", "priority: ",
    "retries: ", "cost: {slots: ", "timeout_s: ", "description: ", "\u202e", "\ufeff", "é", "\U0001f600", "\x85",
]  # fmt: skip


def loads_or_refuses(text: str) -> Graph | None:
    try:
        return load_graph_text(text, source="fuzz.yaml")
    except GraphInvalid as exc:
        assert exc.problems and all(str(p).startswith("fuzz.yaml") for p in exc.problems)
        return None


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_fuzz_token_soup_yields_a_graph_or_graph_invalid(tokens: list[str]) -> None:
    graph = loads_or_refuses("".join(tokens))
    if graph is not None:
        assert graph_from_dict(graph_to_dict(graph)) == graph


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text_yields_a_graph_or_graph_invalid(text: str) -> None:
    loads_or_refuses(text)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.binary(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from([
    "run", "command", "env", "cwd", "after", "partitioned", "description", "retries", "retry_delay_s",
    "retry_backoff", "retry_max_delay_s", "retry_jitter", "timeout_s", "priority", "labels", "cost", "barrier", "x",
])  # fmt: skip


@FUZZ
@given(
    node_options=st.dictionaries(KEYS, JSONISH, max_size=4),
    top=st.dictionaries(
        st.sampled_from(["params", "partitions", "defaults", "python_path", "event", "y"]), JSONISH, max_size=3
    ),
    stored=st.booleans(),
)
def test_fuzz_graph_data_yields_a_graph_or_graph_invalid(node_options: dict[str, Any], top: dict[str, Any],
                                                         stored: bool) -> None:  # fmt: skip
    data = {"graph": "g", **top, "nodes": {"a": {"run": "m:f", **node_options}, "b": {"command": ["echo"]}}}
    try:
        graph = graph_from_dict(data, source="fuzz", stored=stored)
    except GraphInvalid:
        return
    spec = graph_to_dict(graph)
    json.dumps(spec, allow_nan=stored)  # what is stored is JSON
    if not stored:
        for node in graph.nodes:
            assert all(math.isfinite(x) for x in (node.retry.delay_s, node.retry.backoff, node.retry.max_delay_s))
            assert abs(node.priority) < 2**31
