"""``baton db``: the schema's revision, and bringing it to this release's."""

from __future__ import annotations

import click

from baton.cli.options import backend_for, db_option, handle_errors, settings_from
from baton.store.migrate import HEAD
from baton.store.protocol import Store


@click.group("db")
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@db_option
@handle_errors
def db_upgrade(db: str | None, config_file: str | None) -> None:
    """Bring the schema to this release's revision (every process also does this on start)."""
    done = _unmigrated(config_file, db).migrate()
    if done.before.current == done.after:
        click.echo(f"schema at revision {done.after}: up to date")
    else:
        click.echo(f"schema upgraded from {done.before.describe()} to revision {done.after}")


@db_group.command("current")
@db_option
@handle_errors
def db_current(db: str | None, config_file: str | None) -> None:
    """Show the schema's revision, and whether this release would upgrade it."""
    revision = _unmigrated(config_file, db).schema_revision()
    if revision.at_head:
        click.echo(f"revision {revision.describe()} (head): up to date")
    else:
        click.echo(f"revision {revision.describe()}; this release is at {HEAD}: run `baton db upgrade`")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)


def _unmigrated(config_file: str | None, db: str | None) -> Store:
    """The store as it stands: these commands look at the schema before anything migrates it."""
    return backend_for(settings_from(config_file, db=db), migrate=False)
