"""The multi-machine backend: PostgreSQL through psycopg 3 and a connection pool.

Everything but the dialect lives in :mod:`baton.store.sql`. Here:

- the clock is the database's (``clock_timestamp()``), so leases never depend on a worker's clock;
- claims lock with ``FOR UPDATE OF t SKIP LOCKED``: workers never wait on each other's rows;
- driver errors are translated once: lost connections, deadlocks and serialization failures become
  :class:`TransientError` (the verb is retried with backoff), everything else :class:`BackendError`;
- transactions that make work claimable (or finish an event) ``NOTIFY baton`` on commit; one
  listener thread per process turns notifications into a change counter for ``wait_for_change``,
  so idle workers and controllers sleep instead of polling;
- migrations run under an advisory lock, so processes starting together migrate once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from baton.clock import Backoff
from baton.errors import BackendError, TransientError
from baton.settings import Settings, default_settings
from baton.store import migrate
from baton.store.sql import SqlStore
from baton.store.tx import Cursor, Tx, read_one, scalar

log = logging.getLogger("baton.postgres")
CHANNEL = "baton"
LISTEN_BACKOFF = Backoff(first_s=0.1, max_s=5.0)  # reconnecting the listener: it never gives up
MIGRATION_LOCK = 0x42A7_0001  # any constant; shared by every Baton process on the database
TRANSIENT = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure, pg_errors.LockNotAvailable,
             pg_errors.AdminShutdown, pg_errors.CannotConnectNow)  # fmt: skip


def _placeholders(sql: str) -> str:
    """Our SQL uses ``?``; psycopg wants ``%s`` (and a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Conn:
    """The two calls Tx makes, on a psycopg connection in pipeline mode: a statement is sent
    without waiting for its answer, and the pipeline is synced only when a result is read, so
    the writes of a report transaction travel together instead of one round trip each."""

    def __init__(self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline) -> None:
        self.conn = conn
        self.pipeline = pipeline

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return _Answer(self.conn.execute(sql, params), self.pipeline)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Cursor:
        cursor = self.conn.cursor()
        cursor.executemany(sql, params)
        return _Answer(cursor, self.pipeline)


def _clock_of(conn: psycopg.Connection[Any]) -> Callable[[], float]:
    """The database's clock, read with the transaction's first statement (pipelined)."""
    cursor = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
    return lambda: _read_clock(cursor)


def _read_clock(cursor: psycopg.Cursor[Any]) -> float:
    row = cursor.fetchone()
    assert row is not None
    (now,) = row
    return float(now)


class _Answer:
    """A pipelined statement's cursor: reading rows waits for them (psycopg syncs by itself);
    reading the row count syncs first, since it is only known once the answer has arrived."""

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self.cursor = cursor
        self.pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self.pipeline.sync()
        return self.cursor.rowcount

    def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


class TableSize(NamedTuple):
    reltuples: float  # the planner's estimate of the rows in a table


class PostgresStore(SqlStore):
    dialect = "postgresql"
    skip_locked = "FOR UPDATE OF t SKIP LOCKED"
    row_lock = "FOR UPDATE OF t"
    share_lock = "FOR KEY SHARE OF t"
    event_lock = "FOR UPDATE"
    floor_sql = "floor({})"  # not CAST(... AS integer), which rounds
    pushes_changes = True

    def __init__(self, dsn: str, settings: Settings | None = None) -> None:
        """The database at ``dsn``, with the caps, ``reconnect_s`` and ``postgres_*`` settings of ``settings``."""
        settings = settings or default_settings()
        super().__init__(settings.max_result_bytes, settings.max_params_bytes, settings.max_log_bytes)
        self.dsn = dsn
        self.reconnect_s = settings.reconnect_s
        self.connect_timeout_s = settings.postgres_connect_timeout_s
        connect = {"connect_timeout": _whole_seconds(self.connect_timeout_s), "application_name": "baton"}
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=settings.postgres_pool_size, open=False, timeout=self.connect_timeout_s,
            name="baton", kwargs=connect,
        )  # fmt: skip
        self._opened = False
        self._listener: _Listener | None = None
        self._seen = threading.local()

    def __repr__(self) -> str:
        return f"PostgresStore({_redact(self.dsn)!r})"

    @property
    def url(self) -> str:
        return self.dsn

    def _open_pool(self) -> None:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    self._pool.open(wait=False)
                    self._opened = True

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        self._open_pool()
        try:
            # BEGIN (psycopg's own, the connection not being in autocommit) and the clock reading
            # travel with the first statement; the last writes, NOTIFY and COMMIT together, in one
            # round trip (psycopg's transaction block would add two more). On an error, leaving the
            # pool's block rolls back.
            with self._pool.connection() as conn, conn.pipeline() as pipeline:
                now = _clock_of(conn) if self.clock is None else self.clock()
                tx = Tx(_Conn(conn, pipeline), now, lambda gid: self._graph_in(tx, gid), _placeholders)
                tx.key_lock = "FOR UPDATE"
                tx.arrays = True
                yield tx
                tx.flush()
                if tx.wakes:
                    conn.execute(f"NOTIFY {CHANNEL}")
                conn.commit()
        except PoolTimeout as exc:
            raise TransientError(f"no database connection within the pool timeout: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise TransientError(f"database unreachable or connection lost: {exc}") from exc
        except TRANSIENT as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from exc
        except psycopg.Error as exc:
            raise BackendError(f"database error: {exc}") from exc

    def _after_plan(self, tx: Tx, tasks: int) -> None:
        """A plan that grows the tasks table by a fifth or more makes its statistics stale, and
        the planner would treat the claims and reports that follow as if the table were nearly
        empty (seen: a fresh database ran its first large event at half speed). Refresh them;
        autovacuum would, but only a minute or more later."""
        row = read_one(tx, TableSize, "SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass")
        if row is not None and tasks >= 0.2 * max(float(row.reltuples), 0.0):
            tx.q("ANALYZE tasks")

    def _upgrade(self) -> migrate.Upgrade:
        """Upgrade the schema to HEAD on a connection of its own, under an advisory lock."""
        return migrate.run(
            lambda: psycopg.connect(
                self.dsn, connect_timeout=_whole_seconds(self.connect_timeout_s), application_name="baton"
            ),
            self.dialect,
            lock=f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})",
        )

    def statements_executed(self) -> float | None:
        """Statements run so far in this database, when pg_stat_statements is loaded; else None."""
        try:
            with self.transaction(write=False) as tx:
                calls = scalar(
                    tx,
                    "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE d.datname = current_database()",
                )
        except BackendError:
            return None
        return float(calls) if calls is not None else None

    def change_fd(self) -> int | None:
        """This thread's descriptor that the LISTEN thread makes readable on each notification."""
        fd: int | None = getattr(self._seen, "fd", None)
        if fd is None:
            fd = self._seen.fd = self._start_listener().subscribe()
        return fd

    def wait_for_change(self, timeout_s: float) -> bool:
        listener = self._start_listener()
        fd = getattr(self._seen, "fd", None)
        if fd is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 65536)  # consumed before looking: a later notification re-arms it
        seen = getattr(self._seen, "version", None)
        version = listener.wait_past(seen, timeout_s if seen is not None else 0.0)
        self._seen.version = version
        return seen is not None and version != seen

    def _start_listener(self) -> _Listener:
        if self._listener is None:
            with self._lock:
                if self._listener is None:
                    self._listener = _Listener(self.dsn, _whole_seconds(self.connect_timeout_s))
                    self._listener.start()
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._opened:
            self._pool.close()
            self._opened = False


class _Listener(threading.Thread):
    """LISTENs on its own connection and counts notifications; reconnects after failures (and
    counts a reconnect as a change, since notifications may have been missed meanwhile)."""

    def __init__(self, dsn: str, connect_timeout_s: int) -> None:
        super().__init__(name="baton-listen", daemon=True)
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s
        self.version = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._pipes: list[int] = []  # write ends, one per subscribed thread
        self._ends: list[int] = []  # every end, closed when the listener stops

    def bump(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()
            for fd in self._pipes:
                with contextlib.suppress(BlockingIOError, OSError):  # full: a wake-up is pending
                    os.write(fd, b"!")

    def subscribe(self) -> int:
        """A descriptor made readable by every notification from now on."""
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        with self._cond:
            self._pipes.append(w)
            self._ends += [r, w]
        return r

    def wait_past(self, seen: int | None, timeout_s: float) -> int:
        """Wait until the counter moves past ``seen`` or the timeout passes; return it."""
        with self._cond:
            if seen is not None and timeout_s > 0:
                self._cond.wait_for(lambda: self.version != seen, timeout=timeout_s)
            return self.version

    def run(self) -> None:
        pauses = LISTEN_BACKOFF.delays()
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s) as conn:
                    self._conn = conn
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.bump()
                    pauses = LISTEN_BACKOFF.delays()  # connected: a later loss starts from the first pause
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.bump()
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    return
                pause = next(pauses)
                log.warning("listener lost its connection (%s); reconnecting in %.1fs", exc, pause)
                self._stopping.wait(pause)
            finally:
                self._conn = None

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)
        with self._cond:
            for fd in self._ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._pipes, self._ends = [], []


def _whole_seconds(timeout_s: float) -> int:
    """libpq's connect_timeout: whole seconds, at least one (0 would mean wait forever)."""
    return max(1, int(timeout_s))


def _redact(dsn: str) -> str:
    """A DSN without its password, for messages."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user, _, _ = credentials.partition(":")
        return f"{scheme}://{user}:***@{host}"
    return dsn
