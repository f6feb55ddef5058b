"""Rows are read by name, never by position, held by reading every backend module's code.

Each query has a NamedTuple whose fields are its columns (see :mod:`baton.store.tx`), so
``row[7]`` has no reason to exist there: a column added or moved in a ``SELECT`` list would
silently shift every index after it. Two checks over every module of ``baton/store``:

- no subscript by an integer literal (``row[7]``, ``key[-1]``), on rows or anything else: a
  key tuple is unpacked or made a NamedTuple too. Slices (``text[:500]``) are not reads by
  position and pass;
- no raw row read (``tx.rows``, ``tx.one``, ``fetchall``, ``fetchone``) outside the modules
  that adapt a driver's cursors: the rest read through ``read_rows``, ``read_one``,
  ``fetch_all``, ``fetch_one``, ``scalar`` or ``exists``, which never hand out a bare tuple.

An exception must be listed in :data:`ALLOWED` with its reason, and the list is checked too: an
entry that no longer matches anything must be removed.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from baton.store.tx import fetch_one, select_list

BACKENDS = Path(__file__).resolve().parents[2] / "baton" / "store"
RAW_READS = {"rows", "one", "fetchall", "fetchone"}
# tx defines the helpers; the drivers turn their cursors into the ones Tx reads
READERS = {"tx.py", "sqlite.py", "postgres.py"}

BY_POSITION = "reads by position; use a NamedTuple row or unpack"
BARE_ROW = "reads a bare row; use baton.store.tx's read_rows, read_one, fetch_all, fetch_one or scalar"

# (module, the expression as ast.unparse writes it): why it may stay.
ALLOWED: dict[tuple[str, str], str] = {}


def backend_sources() -> dict[str, str]:
    """Every module under baton/store, by its path there (``sql.py``; a subpackage's ``sub/x.py``)."""
    return {
        path.relative_to(BACKENDS).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(BACKENDS.rglob("*.py"))
    }


def _literal_index(index: ast.expr) -> bool:
    if isinstance(index, ast.Tuple):
        return any(_literal_index(e) for e in index.elts)
    if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub | ast.UAdd):
        index = index.operand
    return isinstance(index, ast.Constant) and isinstance(index.value, int)


def findings(module: str, source: str) -> list[tuple[int, str, str]]:
    """(line, expression, problem) for each read by position or bare row read in one module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and _literal_index(node.slice):
            found.append((node.lineno, ast.unparse(node), BY_POSITION))
        elif module not in READERS and isinstance(node, ast.Call) and _raw_read(node.func):
            found.append((node.lineno, ast.unparse(node.func), BARE_ROW))
    return sorted(found)


def _raw_read(func: ast.expr) -> bool:
    return isinstance(func, ast.Attribute) and func.attr in RAW_READS


def violations(sources: Mapping[str, str], allowed: Mapping[tuple[str, str], str] = ALLOWED) -> list[str]:
    problems, used = [], set()
    for module, source in sources.items():
        for line, expression, problem in findings(module, source):
            if (module, expression) in allowed:
                used.add((module, expression))
            else:
                problems.append(f"baton/store/{module}:{line}: {expression} {problem}")
    for module, expression in sorted(allowed.keys() - used):
        problems.append(f"ALLOWED lists {expression} in {module}, which no longer has it: remove the entry")
    return problems


def test_the_backend_reads_rows_by_name() -> None:
    sources = backend_sources()
    assert {"worker.py", "advance.py", "claims.py", "rerun.py", "reads.py", "tx.py"} <= set(sources)
    assert violations(sources) == []


def test_a_row_read_by_position_is_caught() -> None:
    sources = backend_sources()
    sources["worker.py"] += "\n\ndef _late(row: tuple[int, ...]) -> int:\n    return row[7]\n"
    line = sources["worker.py"].count("\n")
    assert violations(sources) == [f"baton/store/worker.py:{line}: row[7] {BY_POSITION}"]


@pytest.mark.parametrize("expression", ["key[-1]", "row[0][1]", "grid[0, 2]", "flags[True]"])
def test_every_literal_index_is_caught(expression: str) -> None:
    assert expression in {found for _, found, _ in findings("sql.py", f"{expression}\n")}


@pytest.mark.parametrize("expression", ["text[:500]", "row[i]", "counts['failed']", "rows[n - 1]", "d[key]"])
def test_slices_and_names_pass(expression: str) -> None:
    assert findings("sql.py", f"{expression}\n") == []


def test_a_bare_row_read_is_caught_outside_the_readers() -> None:
    sample = "def f(tx, cursor):\n    a = tx.one('SELECT 1')\n    return cursor.fetchall()\n"
    assert [(line, found) for line, found, _ in findings("advance.py", sample)] == [
        (2, "tx.one"),
        (3, "cursor.fetchall"),
    ]
    assert findings("postgres.py", sample) == []


def test_a_stale_exception_must_be_removed() -> None:
    assert violations({"migrate.py": "x = 1\n"}, {("migrate.py", "r[0]"): "gone"}) == [
        "ALLOWED lists r[0] in migrate.py, which no longer has it: remove the entry"
    ]


class Pair(NamedTuple):
    id: int
    event_cancelling: int


def test_select_list_names_each_column_as_its_field() -> None:
    assert select_list(Pair, "t.") == "t.id, t.event_cancelling"
    assert (
        select_list(Pair, "t.", id="e.id", event_cancelling="e.cancel_requested")
        == "e.id, e.cancel_requested AS event_cancelling"
    )


class _Cursor:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.rowcount = len(rows)

    def fetchall(self) -> list[Any]:
        rows, self.rows = self.rows, []
        return rows

    def fetchone(self) -> Any:
        return self.rows.pop(0) if self.rows else None


def test_a_row_of_the_wrong_width_is_refused() -> None:
    assert fetch_one(_Cursor([(1, 0)]), Pair) == Pair(id=1, event_cancelling=0)
    assert fetch_one(_Cursor([]), Pair) is None
    with pytest.raises(TypeError):
        fetch_one(_Cursor([(1, 0, "extra")]), Pair)
