"""Shared fixtures. Every store a test opens is checked for broken invariants afterwards.

``store_url`` (and ``backend`` on top of it) is parametrized over SQLite and PostgreSQL, so the
contract tests run on both. PostgreSQL comes from a throwaway server started from the installed
binaries (or ``BATON_TEST_POSTGRES_DSN`` when there are none); with ``CI=true`` a missing
PostgreSQL fails the run instead of skipping.

The suite runs in parallel (pytest-xdist, ``scripts/test``), so nothing a test touches may be
shared with a test running beside it in another process:

- each test process has its own PostgreSQL server (``pg_server``), its own template database
  (named after the process, so processes sharing one ``BATON_TEST_POSTGRES_DSN`` do not drop
  each other's), its own ports (:mod:`ports`) and its own temporary folder (``TMPDIR``, for the
  test process and everything it starts: executors' capture folders, a killed process's
  leftovers), removed at the end of the run;
- each test runs in its own ``tmp_path`` as its working directory, so what a command writes
  relative to it (``.baton/logs``, ``.baton/bench-logs``) stays the test's own and out of the
  repository;
- ``BATON_*`` settings from the caller's environment are dropped: a test states the settings it
  means (the tests' own knobs, ``BATON_TEST_*``, ``BATON_SCREENSHOTS``, ``BATON_*FUZZ_*``, stay);
- a test marked ``alone`` measures wall time against a figure (a p99, a page's load time): it
  runs while no other test of the run does (:class:`RunLock`), since a neighbour's load is not
  what it measures. They are put last, where the other processes have mostly finished.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgserver import PgServer, find_bindir
from ports import worker_id
from serving import Served
from zygote import zygote

from baton.store import open_store
from baton.store.protocol import Store
from baton.testing import check_invariants

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = Path(__file__).resolve().parent / "graphs"
EXAMPLE = ROOT / "examples" / "year_end_report" / "graph.yaml"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WORKER = worker_id()
TEMPLATE = f"baton_template_{WORKER}_{os.getpid()}"
TEST_KNOBS = ("BATON_TEST_", "BATON_SCREENSHOTS", "BATON_FUZZ_", "BATON_LIVE_FUZZ_")
RUN_FOLDER = pytest.StashKey[Path]()
RUN_LOCK = pytest.StashKey["RunLock"]()

for _name in [n for n in os.environ if n.upper().startswith("BATON_") and not n.upper().startswith(TEST_KNOBS)]:
    del os.environ[_name]


# --- one run, several processes ------------------------------------------------------------------


class RunLock:
    """A readers-writer lock shared by the test processes of one run (``flock`` on two files in
    the run's folder). Every test holds it shared from its setup to its teardown; an ``alone``
    test holds it exclusively while its body runs (its fixtures' setup, e.g. a server starting,
    is no measurement). Who wants it exclusively takes the turnstile first, which every test
    passes through on its way in: tests starting meanwhile wait behind it instead of starving it."""

    def __init__(self, folder: Path) -> None:
        self._turnstile = open(folder / "turnstile.lock", "a+b")  # noqa: SIM115 (held for the run)
        self._lock = open(folder / "alone.lock", "a+b")  # noqa: SIM115

    @contextmanager
    def shared(self) -> Iterator[None]:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Within :meth:`shared`: exclusive for a while, then shared again."""
        fcntl.flock(self._lock, fcntl.LOCK_UN)  # (no upgrade in place: two such would deadlock)
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock, fcntl.LOCK_SH)  # a downgrade: no one else can have it now
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    def close(self) -> None:
        self._turnstile.close()
        self._lock.close()


def _own_folder(folder: Path) -> Path:
    # traversable (not listable) by others: PostgreSQL runs as its own user under it (CI is root)
    folder.mkdir(exist_ok=True)
    folder.chmod(0o711)
    return folder


def pytest_configure(config: pytest.Config) -> None:
    # pytest's own folders (tmp_path, kept for the last runs) stay where they were, not in ours
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: the run's folder is the controller's
        run = Path(workerinput["baton_run_folder"])
    else:  # the controller, or a run without xdist
        run = _own_folder(Path(tempfile.mkdtemp(prefix="baton-tests-")))
        config.stash[RUN_FOLDER] = run
    # this process's own temporary folder, for itself and every process it starts
    own = _own_folder(run / WORKER)
    os.environ["TMPDIR"] = str(own)
    tempfile.tempdir = str(own)
    config.stash[RUN_LOCK] = RunLock(run)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(xdist, in the controller) Each worker is told the run's folder."""
    node.workerinput["baton_run_folder"] = str(node.config.stash[RUN_FOLDER])


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(RUN_LOCK, None)
    if lock is not None:
        lock.close()
    run = config.stash.get(RUN_FOLDER, None)
    if run is not None:  # the controller, once every worker has finished
        shutil.rmtree(run, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``long`` tests first, ``alone`` tests last. The order is the same in every process, as
    xdist needs: it depends on the items and the number of processes alone.

    ``--dist worksteal`` first hands each of the N processes a contiguous Nth of the tests, and a
    process that runs out takes the second half of the longest queue left. So the ``long`` tests
    are dealt round the Ns, each at the head of one (the longest first, by the seconds the marker
    gives): each process starts on its share of them, and none of them is left to start last,
    where it would make the run's tail; the rest keep their order, so that a module's tests stay
    together in one process."""
    alone = [item for item in items if item.get_closest_marker("alone") is not None]
    long = [item for item in items if item.get_closest_marker("long") is not None and item not in alone]
    long.sort(key=lambda item: -float(item.get_closest_marker("long").kwargs["seconds"]))  # type: ignore[union-attr]
    placed = {id(item) for item in [*alone, *long]}
    rest = [item for item in items if id(item) not in placed]
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    processes = int(workerinput["workercount"]) if workerinput is not None else 1
    ordered: list[pytest.Item] = []
    left = len(items)
    for i in range(processes):  # the Nths as worksteal cuts them (its first len // N, and so on)
        size = left // (processes - i)
        left -= size
        heads = long[i::processes]
        ordered += heads
        take = max(0, size - len(heads)) if i < processes - 1 else len(rest)
        ordered += rest[:take]
        rest = rest[take:]
    items[:] = ordered + alone


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """Each test, from its setup to its teardown, holds the run's lock shared."""
    with item.config.stash[RUN_LOCK].shared():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """An ``alone`` test's body runs with the run's lock held exclusively."""
    if item.get_closest_marker("alone") is None:
        return (yield)
    with item.config.stash[RUN_LOCK].exclusive():
        return (yield)


@pytest.fixture(autouse=True)
def _in_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's ``tmp_path`` is its working directory (and its commands'): nothing lands in
    the repository or in a folder another test uses."""
    monkeypatch.chdir(tmp_path)


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but {why}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {why}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    """Our own server when the binaries are installed (restart tests need one), else None."""
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_admin(pg_server: PgServer | None) -> Iterator[str]:
    """An admin DSN, with a migrated template database to clone for each test."""
    dsn = pg_server.dsn if pg_server is not None else os.environ.get("BATON_TEST_POSTGRES_DSN")
    if not dsn:
        _unavailable("no pg_ctl found and BATON_TEST_POSTGRES_DSN is not set")
    assert dsn is not None
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
    except psycopg.Error as exc:
        _unavailable(f"cannot connect to {dsn}: {exc}")
    template = open_store(_database(dsn, TEMPLATE))
    template.debug.record_moves()  # every database cloned from it journals its task moves
    template.close()
    yield dsn
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")


def _database(dsn: str, name: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"baton_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield _database(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that journals its task moves, copied for each test: migrating a
    new file loads SQLAlchemy and Alembic, about a second per process (tests/integration/
    test_schema.py migrates empty databases itself)."""
    path = tmp_path_factory.mktemp("template") / "baton.db"
    template = open_store(f"sqlite:///{path}")
    template.debug.record_moves()
    template.close()
    return path


def _sqlite_copy(template: Path, folder: Path) -> str:
    path = folder / "baton.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite URL in the test's folder, no file yet (for tests about the embedded backend itself)."""
    return f"sqlite:///{tmp_path / 'baton.db'}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database in the test's folder (a copy of the template), for commands that
    need one but are not about creating it: a new file costs the command's process a migration,
    ten times the CPU of a ``baton status``."""
    return _sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The contract fixture: the same test once on SQLite, once on PostgreSQL, each migrated."""
    if request.param == "sqlite":
        return _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def backend(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    store.debug.record_moves()  # a no-op on PostgreSQL (cloned from the template, which has it)
    yield store
    problems = check_invariants(store)
    store.close()
    assert not problems, "broken invariants:\n" + "\n".join(problems)


def baton(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``baton`` command line in a new process (by default in the test's folder),
    forked from this test process's :mod:`zygote` so that it does not import Baton again."""
    ran = zygote().run(list(args), env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)
    return subprocess.CompletedProcess([sys.executable, "-m", "baton", *args], ran.code, ran.stdout, ran.stderr)


@pytest.fixture
def served(backend: Store, tmp_path: Path) -> Iterator[Served]:
    """A real ``baton server`` over the test's store (both backends), on a loopback port."""
    server = Served(backend.url, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
