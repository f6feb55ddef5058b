"""The ``baton`` command: the group and ``main``. The commands live one module per group
(``graphs``, ``events``, ``processes``, ``db``, ``bench``, ``server``, ``dev``, ``webhooks``,
``schedules`` for calendars and schedules, ``backfills``), with the options and the opening of
the store (``options``), argument types (``types``) and printing (``show``, ``display``) they
share. Thin: they build settings and objects and call the library.

Exit codes: 0 success; 1 the event failed (or was cancelled); 2 bad input or usage (a token a
server refuses too); 3 the store failed (database or server unreachable, schema mismatch, 5xx).
"""

from __future__ import annotations

import gc
import importlib
import logging
from collections.abc import Sequence

import click

# Each command's module, imported only when the command runs (or ``--help`` lists them all): a
# task server or a one-line query need not load the server, the bench or the event centre.
COMMANDS = {
    "graph": "graphs", "plan": "graphs", "validate": "graphs",
    "audit": "events", "cancel": "events", "logs": "events", "rerun": "events", "run": "events",
    "status": "events", "submit": "events",
    "controller": "processes", "worker": "processes",
    "db": "db", "bench": "bench", "server": "server", "token": "server", "dev": "dev",
    "webhook": "webhooks", "calendar": "schedules", "schedule": "schedules",
    "backfill": "backfills", "backfills": "backfills", "limits": "limits",
    "pause": "limits", "resume": "limits", "pauses": "limits",
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands are registered by their module when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"baton.cli.{COMMANDS[cmd_name]}").register(self)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More logging on stderr.")
@click.version_option(package_name="baton")
def cli(verbose: int) -> None:
    """Baton: events become per-partition task graphs, run by task servers that pull work."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> None:
    # Everything imported so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise rescan it all while a plan or a batch allocates.
    gc.freeze()
    cli.main(args=argv, prog_name="baton")
