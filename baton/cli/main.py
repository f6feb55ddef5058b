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
import logging
from collections.abc import Sequence

import click

from baton.cli import backfills, bench, db, dev, events, graphs, processes, schedules, server, webhooks


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging on stderr.")
@click.version_option(package_name="baton")
def cli(verbose: int) -> None:
    """Baton: events become per-partition task graphs, run by task servers that pull work."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module in (graphs, events, processes, db, bench, server, dev, webhooks, schedules, backfills):
    _module.register(cli)


def main(argv: Sequence[str] | None = None) -> None:
    # Everything imported so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise rescan it all while a plan or a batch allocates.
    gc.freeze()
    cli.main(args=argv, prog_name="baton")
