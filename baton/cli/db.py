"""``baton db``: the schema's revision, and bringing it to this release's."""

from __future__ import annotations

import time

import click

from baton.cli.options import backend_for, db_option, handle_errors, settings_from
from baton.store.migrate import HEAD
from baton.store.protocol import Store
from baton.store.records import PruneRequest


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


@db_group.command("prune")
@click.option(
    "--days",
    type=click.FloatRange(0.001, 36_600),
    default=None,
    help="Remove every graph's finished events older than this many days (default: each graph's retention).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be removed; remove nothing.")
@click.option("--batch", type=click.IntRange(1, 100_000), default=None,
              help="Rows removed per transaction (default: the prune_batch setting).")  # fmt: skip
@db_option
@handle_errors
def db_prune(days: float | None, dry_run: bool, batch: int | None, db: str | None, config_file: str | None) -> None:
    """Remove finished events past their graph's retention (with their tasks, attempts, logs and
    audit), a batch per transaction, as the controller does every prune_s. Running events are
    never touched."""
    settings = settings_from(config_file, db=db)
    store = backend_for(settings)
    asked = PruneRequest(time.time(), batch or settings.prune_batch, days=days, default_days=settings.retention_days,
                         notice_before=time.time() - settings.notice_retention_s, dry_run=dry_run)  # fmt: skip
    try:
        done = store.prune(asked)
        while done.more and not dry_run:
            done = done + store.prune(asked)
    finally:
        store.close()
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {done.events:,} event(s) and {done.tasks:,} task(s)"
               + ("" if dry_run else f", {done.audit:,} audit row(s), {done.notices:,} outbox notice(s)"))  # fmt: skip
