"""``baton bench``: Baton's own overhead, measured (the work is in :mod:`baton.bench`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from baton.cli.options import DEFAULT_SLOTS, DEFAULT_WORKERS, db_option, handle_errors, json_option, settings_from
from baton.cli.types import HOLD


@click.command()
@click.option("--partitions", "-P", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option(
    "--variant",
    type=click.Choice(["noop", "sleep"]),
    default="noop",
    show_default=True,
    help="Task bodies: nothing, or 20 ms of sleep.",
)
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 256))
@click.option("--slots", default=DEFAULT_SLOTS, show_default=True, type=click.IntRange(1, 4096))
@click.option("--repeat", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option("--remote", is_flag=True, help="Workers reach the store through a baton server on loopback.")
@click.option("--rtt-ms", type=click.FloatRange(0, 1000), default=0.0, show_default=True,
              help="R: a delay proxy on loopback between the remote workers and the server adds R ms in each "
                   "direction, so a round trip grows by 2R (0: no proxy). Needs --remote.")  # fmt: skip
@click.option(
    "--hold",
    type=HOLD,
    default="auto",
    show_default=True,
    help="The workers' --hold: tasks held beyond their free slots (0: none; auto: sized by the pace).",
)
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None,
              help="Every node declares a concurrency key of its own with this limit (docs/limits.md).")  # fmt: skip
@json_option
@db_option
@handle_errors
def bench(partitions: int, variant: str, workers: int, slots: int, repeat: int, remote: bool, rtt_ms: float,
          hold: int | None, limit: int | None, as_json: bool, db: str | None,
          config_file: str | None) -> None:  # fmt: skip
    """Measure Baton's overhead: the year-end shape (6P + 2 tasks) with no-op or sleeping tasks.

    Without --db each run gets a fresh SQLite file; with a postgresql:// URL the runs share that
    database. With --remote, a baton server on loopback holds the database and the workers hold
    only its URL and a token; add --rtt-ms R to put R ms of distance each way between them. With
    --json, one JSON object per run."""
    from baton.bench.run import BenchConfig, describe, fresh_sqlite_url, run_once

    if rtt_ms and not remote:
        raise click.UsageError("--rtt-ms delays the link between remote workers and the server: give --remote too")
    config = BenchConfig(partitions=partitions, variant=variant, workers=workers, slots=slots, remote=remote,
                         limit=limit, rtt_ms=rtt_ms, hold="auto" if hold is None else str(hold))  # fmt: skip
    runs = []
    for _ in range(repeat):
        url, folder = (db, None) if db else fresh_sqlite_url()
        settings = settings_from(config_file, db=url)
        figures = run_once(settings, config, (folder or Path(".baton")) / "bench-logs")
        if folder is not None:  # kept (with the workers' logs) only when the run failed
            shutil.rmtree(folder, ignore_errors=True)
        runs.append(figures)
        click.echo(json.dumps(figures) if as_json else describe(figures))
    if not as_json and repeat > 1:
        rates = sorted(r["tasks_per_s"] for r in runs if r["tasks_per_s"])
        click.echo(f"median of {repeat}: {rates[len(rates) // 2]:,.0f} tasks/s")


def register(cli: click.Group) -> None:
    cli.add_command(bench)
