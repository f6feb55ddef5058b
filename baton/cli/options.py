"""What every ``baton`` command shares: the error-to-exit-code mapping, the common options
(database and settings file, server and token, parameters, output) and, in :func:`opens_store`,
the one place a command's store is opened from them: the database's, or a server's.

Exit codes: 0 success; 1 the event failed (or was cancelled); 2 bad input or usage, which
includes a token the server refuses (401: unknown or revoked; 403: its role or event types do
not allow the command); 3 the store failed (database unreachable, schema mismatch; a server
unreachable or answering 5xx).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from baton.cli.types import Text
from baton.errors import BackendError, BatonError, Unauthenticated, UsageError
from baton.settings import CONFIG_VARIABLE, DEFAULT_MAX_PARAMS_BYTES, Settings, load_settings
from baton.store import open_store
from baton.store.protocol import ChangeFeed, OperatorStore, ReadStore, Store, WebhookStore

if TYPE_CHECKING:
    from baton.client.store import HttpStore

F = TypeVar("F", bound=Callable[..., Any])
EXIT_FAILED, EXIT_USAGE, EXIT_BACKEND = 1, 2, 3

# The shape of local runs and of a worker (per process, so flags, not settings).
DEFAULT_WORKERS, DEFAULT_SLOTS = 2, 4


def handle_errors(fn: F) -> F:
    """Map Baton's errors to messages and exit codes, in one place."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except BackendError as exc:
            click.echo(f"backend error: {exc}", err=True)
            sys.exit(EXIT_BACKEND)
        except BatonError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def db_option(fn: F) -> F:
    fn = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        envvar=CONFIG_VARIABLE,
        help="TOML settings file (keys as in BATON_* variables, lower case).",
    )(fn)
    return click.option(
        "--db", default=None, type=Text(4096), help="Database URL (default: BATON_DB or sqlite:///.baton/baton.db)."
    )(fn)


def server_options(fn: F) -> F:
    """--server, --token and --ca-file: reach the store through a baton server instead."""
    fn = click.option(
        "--ca-file", type=click.Path(dir_okay=False, exists=True), envvar="BATON_CA_FILE", default=None,
        help="CA bundle to check the server's certificate with (default: the system's).",
    )(fn)  # fmt: skip
    fn = click.option(
        "--token", type=Text(256), envvar="BATON_TOKEN", default=None, help="API token for --server (or BATON_TOKEN)."
    )(fn)
    return click.option(
        "--server", type=Text(2048), envvar="BATON_SERVER", default=None,
        help="A baton server's URL (or BATON_SERVER): go through its API, not the database.",
    )(fn)  # fmt: skip


def param_option(fn: F) -> F:
    return click.option(
        "--param",
        "-p",
        "params",
        multiple=True,
        type=Text(DEFAULT_MAX_PARAMS_BYTES),
        metavar="NAME=VALUE",
        help="An event parameter; repeat for several.",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)


def wait_option(fn: F) -> F:
    return click.option("--wait", is_flag=True, help="Wait for the event to finish; exit 1 if it failed.")(fn)


def settings_from(config_file: str | None, **flags: Any) -> Settings:
    return load_settings(config_file, **flags)


def backend_for(settings: Settings, migrate: bool = True) -> Store:
    return open_store(settings.db, settings, migrate=migrate)


class EventStore(OperatorStore, ReadStore, WebhookStore, ChangeFeed, Protocol):
    """What the event and webhook commands work on: the database's store, or a server's
    (:class:`baton.client.store.HttpStore`)."""


class Opened:
    """Where a command's store is, from its options: the database (``--db``, ``--config``) or a
    server (``--server``, ``--token``, ``--ca-file``). It is opened on first use, once, so input
    found bad before then is refused with nothing opened; :func:`opens_store` closes it."""

    def __init__(self, db: str | None, config_file: str | None, server: tuple[str, str | None, str | None] | None):
        self._db, self._config_file, self._server = db, config_file, server
        self._local: tuple[Settings, Store] | None = None
        self._remote: HttpStore | None = None

    @property
    def store(self) -> EventStore:
        if self._server is None:
            return self._database()[1]
        if self._remote is None:
            from baton.client.api import Client  # the HTTP client is loaded only by a command given --server
            from baton.client.store import HttpStore

            url, token, ca_file = self._server
            self._remote = HttpStore(Client(url, token or "", ca_file=ca_file))
        return self._remote

    def database(self, why: str) -> tuple[Settings, Store]:
        """The database's settings and whole store, for what only works from this machine:
        through a server, a UsageError saying ``why``."""
        if self._server is not None:
            raise UsageError(why)
        return self._database()

    def _database(self) -> tuple[Settings, Store]:
        if self._local is None:
            settings = settings_from(self._config_file, db=self._db)
            self._local = settings, backend_for(settings)
        return self._local

    def close(self) -> None:
        if self._local is not None:
            self._local[1].close()
        if self._remote is not None:
            self._remote.close()


def opens_store(*, server: bool) -> Callable[[F], F]:
    """Give a command ``--db`` and ``--config`` (and with ``server``, ``--server``, ``--token``
    and ``--ca-file``): its body gets the store they choose as ``opened`` (:class:`Opened`), the
    same body either way. A token the server refuses is named here, with where to fix it."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def opening(*args: Any, db: str | None, config_file: str | None, **kwargs: Any) -> Any:
            url, token, ca_file = (kwargs.pop(k, None) for k in ("server", "token", "ca_file"))
            if url is not None and db is not None:
                raise UsageError("give --server or --db, not both: with --server the server reaches the database")
            opened = Opened(db, config_file, None if url is None else (url, token, ca_file))
            try:
                return command(*args, opened=opened, **kwargs)
            except Unauthenticated as exc:
                if url is None:
                    raise
                raise Unauthenticated(f"{url} refused the token: {exc} (check --token or BATON_TOKEN)") from exc
            finally:
                opened.close()

        return db_option(server_options(opening) if server else opening)  # type: ignore[return-value]

    return decorate
