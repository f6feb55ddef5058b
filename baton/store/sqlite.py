"""The embedded backend: one SQLite file in WAL mode, safe for several processes on one host.

Write transactions start with ``BEGIN IMMEDIATE`` so they take the single write lock up front
instead of failing half-way with ``SQLITE_BUSY``. Before that, a writer queues on an ``flock`` of
a file beside the database: SQLite's own busy handler waits by sleeping 1, 2, 5, 10… ms and
retrying, so under load one process could win the lock again and again while the others
slept; the kernel wakes an ``flock`` waiter the moment the lock is free.

Waiting for change sleeps until the write-ahead log is written (inotify, see
:mod:`baton.store.filewatch`), then reads ``PRAGMA data_version``, which moves when another
connection commits; without inotify it polls that counter. Each thread has its own connection,
writer-lock handle and watch.

That wakes on *every* commit (heartbeats, a controller renewing its role). The HTTP server's long
polls want what PostgreSQL's ``NOTIFY`` gives, a wake-up only when work may have become
claimable or an event finished: a commit that would notify on PostgreSQL also counts itself in
a file beside the database (``-wakes``, under the writers' lock), and :meth:`wake_feed`
watches that count.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from baton.errors import BackendError
from baton.settings import Settings, default_settings
from baton.store import filewatch, migrate
from baton.store.sql import SqlStore
from baton.store.tx import Tx

log = logging.getLogger("baton.sqlite")


class _Eager:
    """The two calls Tx makes, on a sqlite3 connection. Answers are read at once: there is no
    round trip to save, and a statement whose rows were left unread would stay busy."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        cursor = self.conn.execute(sql, params)
        return _Rows(cursor.fetchall(), cursor.rowcount)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> _Rows:
        return _Rows([], self.conn.executemany(sql, params).rowcount)


class _Rows:
    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchall(self) -> list[Any]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]


class SqliteStore(SqlStore):
    dialect = "sqlite"
    # truncates toward zero: the floor of the values it is given (a timeline clamps negative bins
    # to its first anyway); floor() exists only where SQLite was built with its math functions
    floor_sql = "CAST({} AS INTEGER)"

    def __init__(self, path: str | Path, settings: Settings | None = None) -> None:
        """The database in ``path``, with the caps and ``sqlite_*`` settings of ``settings``."""
        settings = settings or default_settings()
        super().__init__(settings.max_result_bytes, settings.max_params_bytes, settings.max_log_bytes)
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create the folder for {self.path}: {exc.strerror or exc}") from exc
        self.busy_timeout_s = settings.sqlite_busy_timeout_s
        self.synchronous: str = settings.sqlite_synchronous  # one of a Literal's values: safe to format in
        self.checkpoint_bytes = settings.sqlite_checkpoint_bytes
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock_fds: list[int] = []
        self._watches: list[filewatch.FileWatch] = []
        self._wakes: WakeFeed | None = None  # opened by the first commit that wakes, or by wake_feed
        self._wakes_failed = False
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise BackendError(f"the backend for {self.path} is closed")
            conn = self._open()
            self._local.conn = conn
            self._local.data_version = None
            self._local.lock_fd = self._open_lock_file()
            with self._lock:
                self._all.append(conn)
                self._lock_fds.append(self._local.lock_fd)
        return conn

    def _open_lock_file(self) -> int:
        """This thread's handle on the writers' queue (an flock is held per open file)."""
        try:
            return os.open(f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BackendError(f"cannot open the writer lock beside {self.path}: {exc.strerror}") from exc

    def _open(self) -> sqlite3.Connection:
        """A connection in WAL mode. Switching a new database to WAL takes its lock without
        SQLite's busy handler, so processes opening a new file together may be told "database is
        locked" at once: that is tried again, for as long as a statement would wait."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return self._try_open()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc
                time.sleep(0.01)
            except sqlite3.Error as exc:
                raise BackendError(f"cannot open SQLite database {self.path}: {exc}") from exc

    def _try_open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            (page_bytes,) = conn.execute("PRAGMA page_size").fetchone()
            conn.execute(f"PRAGMA wal_autocheckpoint = {max(1, self.checkpoint_bytes // page_bytes)}")
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        conn = self._conn()
        lock_fd: int | None = self._local.lock_fd if write else None
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise BackendError(f"cannot start a transaction on {self.path}: {exc}") from exc
            now = time.time() if self.clock is None else self.clock()
            tx = Tx(_Eager(conn), now, lambda gid: self._graph_in(tx, gid))
            try:
                yield tx
                tx.flush()
                conn.execute("COMMIT")
                if lock_fd is not None and tx.wakes:
                    self._announce()  # still holding the writers' lock
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise BackendError(f"database error on {self.path}: {exc}") from exc
                raise
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def _upgrade(self) -> migrate.Upgrade:
        """Upgrade the schema to HEAD, queued with the writers (flock, then BEGIN IMMEDIATE)."""
        self._conn()
        lock_fd: int = self._local.lock_fd
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            return migrate.run(self._open, self.dialect, begin="BEGIN IMMEDIATE")
        finally:
            fcntl.flock(lock_fd, fcntl.LOCK_UN)

    @property
    def pushes_changes(self) -> bool:  # type: ignore[override]
        return self.change_fd() is not None

    def change_fd(self) -> int | None:
        """This thread's watch on the write-ahead log (every commit writes it), or None where
        files cannot be watched."""
        self._conn()  # the log exists once a connection is open
        if not hasattr(self._local, "watch"):
            self._local.watch = filewatch.watch(f"{self.path}-wal")
            if self._local.watch is not None:
                with self._lock:
                    self._watches.append(self._local.watch)
        watch: filewatch.FileWatch | None = self._local.watch
        return None if watch is None else watch.fd

    def wait_for_change(self, timeout_s: float) -> bool:
        """True once another connection has committed since this thread last looked. Sleeps in
        ``select`` on the log's watch; polls ``PRAGMA data_version`` where there is none."""
        conn = self._conn()
        fd = self.change_fd()
        watch: filewatch.FileWatch | None = self._local.watch
        deadline = time.monotonic() + timeout_s
        step = 0.001
        while True:
            if watch is not None:
                watch.drain()  # before looking: a commit after the look wakes the select below
            (version,) = conn.execute("PRAGMA data_version").fetchone()
            if self._local.data_version is None:
                self._local.data_version = version
            elif version != self._local.data_version:
                self._local.data_version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(step, left))
                step = min(step * 2, 0.01)  # noticed within 10 ms; a look costs microseconds

    def wake_feed(self) -> WakeFeed:
        """Changes that may have made work claimable or finished an event, not every commit."""
        return self._wakes_file()

    def _announce(self) -> None:
        """Count a waking commit. It has committed: a failure here must not raise into the
        caller, only cost the long polls their prompt wake-up (their timeouts still look)."""
        try:
            self._wakes_file().announce()
        except BackendError as exc:
            if not self._wakes_failed:
                self._wakes_failed = True
                log.warning("cannot count wake-ups beside %s: %s", self.path, exc)

    def _wakes_file(self) -> WakeFeed:
        if self._wakes is None:
            with self._lock:
                if self._wakes is None:
                    self._wakes = WakeFeed(f"{self.path}-wakes")
        return self._wakes

    def close(self) -> None:
        """Close every thread's connection. No other thread may still be using this backend."""
        with self._lock:
            self._closed = True
            if self._wakes is not None:
                self._wakes.close()
                self._wakes = None
            for conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
            for fd in self._lock_fds:
                with suppress(OSError):
                    os.close(fd)
            self._lock_fds.clear()
            for watch in self._watches:
                watch.close()
            self._watches.clear()
        self._local = threading.local()


class WakeFeed:
    """A count of waking commits, kept in a file of eight bytes beside the database. Writers
    bump it under the writers' lock, so bumps never race; a reader that sees it move knows a
    waking commit landed after its last look. One reader thread per feed."""

    def __init__(self, path: str) -> None:
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise BackendError(f"cannot open {path}: {exc.strerror}") from exc
        self.watch = filewatch.watch(path)
        self.seen = self._read()

    def _read(self) -> int:
        raw = os.pread(self.fd, 8, 0)
        return int.from_bytes(raw, "little") if len(raw) == 8 else 0

    def announce(self) -> None:
        """Count one waking commit (the caller holds the writers' lock)."""
        with suppress(OSError):  # a full disk: the readers' safety-net polls still find the work
            os.pwrite(self.fd, (self._read() + 1).to_bytes(8, "little"), 0)

    @property
    def pushes_changes(self) -> bool:
        return self.watch is not None

    def change_fd(self) -> int | None:
        return None if self.watch is None else self.watch.fd

    def wait_for_change(self, timeout_s: float) -> bool:
        """True once the count has moved since the last look; sleeps on the file's watch."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.watch is not None:
                self.watch.drain()  # before looking: a bump after the look wakes the select below
            count = self._read()
            if count != self.seen:
                self.seen = count
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.watch is not None:
                select.select([self.watch.fd], [], [], left)
            else:
                time.sleep(min(0.01, left))

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()
        with suppress(OSError):
            os.close(self.fd)
