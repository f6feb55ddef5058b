"""One open transaction: a connection, the clock reading it runs at, and its audit rows.

SQL is written once with ``?`` placeholders; a dialect that uses another style converts it
in :meth:`Tx.sql`. Audit rows are buffered and written at commit, inside the same transaction
as the changes they explain.

Batches: where the database binds arrays (PostgreSQL, :attr:`Tx.arrays`) a batch of rows goes
as one statement whose text never changes (the rows as one JSON parameter, read by
``json_to_recordset``: see :class:`Batch`; ``= ANY(?)`` for a list of ids), so the client sends,
and the server parses and executes, one statement per batch instead of one per row, and each text
is prepared once per connection. JSON, not arrays: psycopg quotes an array's every element in
Python, where ``json`` encodes the whole batch in C. Elsewhere (SQLite, whose statements cost no
round trip) the same batch is one statement per row, or ``IN (?, ...)``.

Rows are read by name, never by position: each query has a NamedTuple whose fields are its
columns (or their aliases), in order, and :func:`select_list` builds the ``SELECT`` list from
that type where the SQL allows, so the two cannot drift. :func:`read_rows` and :func:`read_one`
read a query's answer as such rows; :func:`fetch_all` and :func:`fetch_one` read a statement
sent earlier (a pipelined database reads answers after sending more). ``_make`` only checks
the width of a tuple, so this costs next to nothing on the hot paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from baton.graphs.model import Graph


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Cursor: ...


R = TypeVar("R", bound=tuple[Any, ...])
# The task states counted per event and node as tasks move. Succeeded ones are known from
# event_nodes (total - remaining), running ones from the running tasks (few: at most the slots of
# every worker), and ready ones are the rest: none of the hot moves (ready -> running -> succeeded)
# needs writing down twice.
COUNTED = frozenset({"pending", "failed", "upstream_failed", "cancelled"})
MOVES_PER_STATEMENT = 200  # rows of one state-count upsert (SQLite allows 32,766 parameters)
compact = json.JSONEncoder(separators=(",", ":"), default=str).encode  # built once: audit rows are hot


class Tx:
    def __init__(
        self,
        conn: Connection,
        now: float | Callable[[], float],
        graph_of: Callable[[int], Graph],
        convert: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.conn = conn
        # the clock reading may arrive later: a pipelined database sends it with the first statement
        self._now = now if isinstance(now, float) else None
        self._clock = now if callable(now) else None
        self.graph_of = graph_of
        self._convert = convert
        self._audit: list[tuple[Any, ...]] = []
        self.notify = False  # set when waiting processes should look again after the commit
        self._ready = 0  # tasks made ready in this transaction
        self._taken = 0  # tasks claimed in this transaction
        self._moves: dict[tuple[int, str, str], int] = {}  # (event, node, state) -> change in its task count
        self.key_lock = ""  # locks a row read for update ("FOR UPDATE"), where the database locks rows
        self.arrays = False  # the database binds arrays (PostgreSQL): a batch of rows is one statement

    @property
    def now(self) -> float:
        """The time this transaction runs at (seconds since the epoch, by the database's clock)."""
        if self._now is None:
            assert self._clock is not None
            self._now = self._clock()
        return self._now

    def q(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(self._convert(sql), params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.q(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.q(sql, params).fetchone()

    def many(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(self._convert(sql), seq)

    def is_in(self, column: str, ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
        """``column`` is one of ``ids``: the condition and its parameters (``= ANY(?)`` with one
        array where the database binds arrays, so the text is the same for any count)."""
        if self.arrays:
            return f"{column} = ANY(?::bigint[])", (id_array(ids),)
        return f"{column} IN ({in_list(ids)})", tuple(ids)

    def batches(self, rows: int) -> bool:
        """Whether ``rows`` rows go as one statement (see the module's docstring): where the
        database binds arrays, and only for two or more, since a lone row costs the server less
        in the plain statement than unpacked from JSON."""
        return self.arrays and rows > 1

    def insert(self, table: str, batch: Batch, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` into ``table``'s ``batch`` columns: one statement for the batch where
        the database binds arrays, one per row elsewhere."""
        if not rows:
            return
        names = ", ".join(batch.names)
        if self.batches(len(rows)):
            self.q(f"INSERT INTO {table} ({names}) SELECT {names} FROM {batch.source}", (batch.param(rows),))
        else:
            self.many(f"INSERT INTO {table} ({names}) VALUES ({in_list(batch.names)})", rows)

    def changed(self) -> None:
        """Claimable work appeared or an event finished: wake waiting processes on commit."""
        self.notify = True

    def made_ready(self, count: int = 1) -> None:
        """Tasks became ready here. Waiting processes are woken only for those this same
        transaction does not claim itself (see :meth:`took`): under load, when each report's
        transaction claims what it releases, nobody needs waking and no one is."""
        self._ready += count

    def took(self, count: int) -> None:
        self._taken += count

    @property
    def wakes(self) -> bool:
        """Whether waiting processes should look again after the commit."""
        return self.notify or self._ready > self._taken

    def audit(
        self,
        actor: str,
        action: str,
        cause: str,
        event_id: int | None = None,
        task_id: int | None = None,
        **detail: Any,
    ) -> None:
        payload = compact(detail) if detail else "{}"
        self._audit.append((self.now, event_id, task_id, actor, action, cause, payload))

    def moved(self, event_id: int, node: str, old: str | None, new: str, count: int = 1) -> None:
        """``count`` tasks of the node went from state ``old`` (None: new tasks) to ``new``.
        Only the :data:`COUNTED` states are kept (in ``event_node_states``, written at the
        commit: see :meth:`flush`); the others are known without counting them, so the claim and
        success paths write nothing here (see ``SqlReads.node_counts``)."""
        if old in COUNTED:
            key = (event_id, node, old)
            self._moves[key] = self._moves.get(key, 0) - count
        if new in COUNTED:
            key = (event_id, node, new)
            self._moves[key] = self._moves.get(key, 0) + count

    def flush(self) -> None:
        """Write what is buffered for the commit: the audit rows, then the per-node state counts.
        The counts go last and in one order (event, node, state), so concurrent transactions lock
        those shared rows only for their commit, and alike."""
        self.flush_audit()
        moves = sorted((k, n) for k, n in self._moves.items() if n)
        self._moves.clear()
        if self.batches(len(moves)):
            self.q(
                f"INSERT INTO event_node_states (event_id, node, state, n) SELECT event_id, node, state, n "
                f"FROM {STATE_COUNTS.source} "
                "ON CONFLICT (event_id, node, state) DO UPDATE SET n = event_node_states.n + excluded.n",
                (STATE_COUNTS.param([(*key, n) for key, n in moves]),),
            )
            return
        for start in range(0, len(moves), MOVES_PER_STATEMENT):  # one statement, not one per row
            chunk = moves[start : start + MOVES_PER_STATEMENT]
            self.q(
                "INSERT INTO event_node_states (event_id, node, state, n) VALUES "
                + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (event_id, node, state) DO UPDATE SET n = event_node_states.n + excluded.n",
                [value for (event_id, node, state), n in chunk for value in (event_id, node, state, n)],
            )

    def flush_audit(self) -> None:
        if self._audit:
            self.insert("audit", AUDIT_BATCH, self._audit)
            self._audit.clear()


def id_array(ids: Iterable[int]) -> str:
    """Ids as a PostgreSQL array literal (``{1,2,3}``, for ``?::bigint[]``): psycopg would dump a
    list element by element in Python."""
    return "{" + ",".join(map(str, map(int, ids))) + "}"


class Batch:
    """Rows of these columns (each a name and its PostgreSQL type) sent as one parameter: a JSON
    array of objects, which :attr:`source` (``json_to_recordset(?::json) AS u(...)``) turns back
    into rows named ``u``."""

    def __init__(self, *columns: tuple[str, str]) -> None:
        self.names = tuple(name for name, _ in columns)
        self.source = f"json_to_recordset(?::json) AS u({', '.join(f'{n} {kind}' for n, kind in columns)})"

    def param(self, rows: Iterable[Sequence[Any]]) -> str:
        names = self.names
        return compact([dict(zip(names, row, strict=True)) for row in rows])


AUDIT_BATCH = Batch(("at", "float8"), ("event_id", "bigint"), ("task_id", "bigint"), ("actor", "text"),
                    ("action", "text"), ("cause", "text"), ("detail", "text"))  # fmt: skip
STATE_COUNTS = Batch(("event_id", "bigint"), ("node", "text"), ("state", "text"), ("n", "int"))


def in_list(values: Sequence[Any]) -> str:
    """Placeholders for ``IN (...)``: ``?, ?, ?``."""
    return ", ".join("?" * len(values))


def select_list(row: type[tuple[Any, ...]], prefix: str = "", **exprs: str) -> str:
    """The column list for ``row`` (a NamedTuple): each field by name (``prefix.field``), or the
    expression given for it, named as the field (``e.cancel_requested AS event_cancelling``)."""
    fields: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
    return ", ".join(_named(exprs[f], f) if f in exprs else f"{prefix}{f}" for f in fields)


def _named(expr: str, field: str) -> str:
    return expr if expr == field or expr.endswith(f".{field}") else f"{expr} AS {field}"


def fetch_all(cursor: Cursor, row: type[R]) -> list[R]:
    """Every row of a statement already sent, as ``row`` (a NamedTuple of its columns)."""
    return list(map(row._make, cursor.fetchall()))  # type: ignore[attr-defined]


def fetch_one(cursor: Cursor, row: type[R]) -> R | None:
    """The next row of a statement already sent, as ``row``; None when there is none."""
    found = cursor.fetchone()
    return None if found is None else row._make(found)  # type: ignore[attr-defined]


def read_rows(tx: Tx, row: type[R], sql: str, params: Sequence[Any] = ()) -> list[R]:
    """Run a query and read its rows as ``row`` (a NamedTuple whose fields are its columns)."""
    return fetch_all(tx.q(sql, params), row)


def read_one(tx: Tx, row: type[R], sql: str, params: Sequence[Any] = ()) -> R | None:
    """Run a query and read its first row as ``row``; None when it has none."""
    return fetch_one(tx.q(sql, params), row)


def exists(tx: Tx, sql: str, params: Sequence[Any] = ()) -> bool:
    """Whether a query answers any row (``SELECT 1 ... LIMIT 1``); its columns are not read."""
    return tx.one(sql, params) is not None


def scalar(tx: Tx, sql: str, params: Sequence[Any] = ()) -> Any:
    """The one value of a query that always answers one row of one column (``SELECT MAX(id)``,
    ``COUNT(*)``)."""
    found = tx.one(sql, params)
    if found is None:
        raise LookupError(f"no row from a query that always has one: {sql}")
    (value,) = found
    return value
