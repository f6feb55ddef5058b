"""``baton limits``: the concurrency keys, each with its limit and its running, queued and parked
tasks, or with ``--rates`` the rate limits' keys, each with its limit and period, its starts in the
window that ends now, its queued and parked tasks and its next allowed start; against the database
(``--db``) or a server (``--server``), printing the same either way (docs/limits.md)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import click

from baton.cli.options import Opened, handle_errors, json_option, opens_store
from baton.cli.types import Text
from baton.store.records import RateKeyRecord

KEY = Text(200)


@click.command("limits")
@click.option("--rates", is_flag=True, help="List the rate limits' keys instead of the concurrency keys.")
@click.option("--after", type=KEY, default=None, help="Start after this key (the last one of the previous page).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most this many keys.")
@json_option
@handle_errors
@opens_store(server=True)
def limits_command(opened: Opened, rates: bool, after: str | None, limit: int, as_json: bool) -> None:
    """Concurrency keys: how many of each key's tasks may run at once, and how many run, wait in
    the queue and are parked until a slot frees. With --rates, rate limits' keys: how many of each
    key's tasks may start in any period, how many started in the one that ends now, how many
    wait in the queue and are parked, and when the next may start."""
    if rates:
        _rates(opened.store.rate_keys(after=after, limit=limit), as_json)
        return
    keys = opened.store.limit_keys(after=after, limit=limit)
    if as_json:
        click.echo(json.dumps([asdict(k) for k in keys]))
        return
    if not keys:
        click.echo("no concurrency keys (a node declares one with 'concurrency: {key: ..., limit: N}')")
        return
    width = max(len(k.key) for k in keys)
    click.echo(f"{'KEY':<{width}}  {'LIMIT':>7}  {'RUNNING':>7}  {'QUEUED':>7}  {'PARKED':>7}")
    for k in keys:
        full = "  full" if k.running >= k.max_running else ""
        click.echo(f"{k.key:<{width}}  {k.max_running:>7}  {k.running:>7}  {k.ready:>7}  {k.parked:>7}{full}")


def _rates(keys: list[RateKeyRecord], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([asdict(k) for k in keys]))
        return
    if not keys:
        click.echo("no rate limits (a node declares one with 'rate_limit: {key: ..., limit: N, period_s: S}')")
        return
    width = max(len(k.key) for k in keys)
    click.echo(
        f"{'KEY':<{width}}  {'LIMIT':>7}  {'PERIOD_S':>9}  {'STARTED':>7}  {'QUEUED':>7}  {'PARKED':>7}  NEXT START"
    )
    for k in keys:
        at = k.next_start_at
        when = "now" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        click.echo(f"{k.key:<{width}}  {k.max_starts:>7}  {k.period_s:>9g}  {k.started:>7}  {k.queued:>7}  "
                   f"{k.parked:>7}  {when}")  # fmt: skip


def register(cli: click.Group) -> None:
    cli.add_command(limits_command)
