"""What every ``baton`` command shares: the error-to-exit-code mapping and the common options
(database and settings file, server and token, parameters, output)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from baton.cli.types import Text
from baton.errors import BackendError, BatonError, UsageError
from baton.graphs.params import DEFAULT_MAX_PARAMS_BYTES
from baton.settings import CONFIG_VARIABLE, Settings, load_settings
from baton.store import open_store
from baton.store.protocol import Store

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
