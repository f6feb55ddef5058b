"""``baton webhook add | list | remove | deliveries``: webhooks and their delivery log, against the
database (``--db``) or a server (``--server``, an admin token), printing the same either way.

A secret is read from a file or an environment variable, never from the command line (which
other users of the machine can see), and never printed: lists show a few digits of its SHA-256.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from baton.cli.options import Opened, handle_errors, json_option, opens_store
from baton.cli.types import EVENT_ID, TEXT, Text
from baton.engine.webhooks import MAX_SECRET_CHARS
from baton.errors import UsageError
from baton.store.records import DELIVERY_STATES, NOTICE_KINDS, DeliveryRecord, WebhookRecord

WEBHOOK_NAME = Text(100)


@click.group("webhook")
def webhook_group() -> None:
    """Webhooks: signed HTTP notifications of event ends, deadlines and misfires
    (docs/deadlines-and-notifications.md)."""


@webhook_group.command("add")
@click.argument("name", type=WEBHOOK_NAME)
@click.option("--url", required=True, type=Text(2048), help="Where to POST (http or https).")
@click.option("--kinds", required=True, type=TEXT, metavar="KIND,...",
              help=f"What it receives, comma-separated: {', '.join(NOTICE_KINDS)}.")  # fmt: skip
@click.option("--event-type", "event_types", multiple=True, type=TEXT,
              help="Only notices about this event type; repeat for several (default: every type).")  # fmt: skip
@click.option("--secret-file", type=click.Path(dir_okay=False), default=None,
              help="A file holding the signing secret (16 to 256 printable characters).")  # fmt: skip
@click.option("--secret-env", type=TEXT, default=None, metavar="VAR", help="An environment variable holding it.")
@click.option("--replace", is_flag=True, help="Change a webhook that exists (its URL, kinds or secret).")
@json_option
@handle_errors
@opens_store(server=True)
def webhook_add(
    opened: Opened,
    name: str,
    url: str,
    kinds: str,
    event_types: Sequence[str],
    secret_file: str | None,
    secret_env: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Add webhook NAME (or, with --replace, change it); a removed one of that name is enabled again."""
    secret = _secret(secret_file, secret_env)
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    record = opened.store.add_webhook(name, url, secret, wanted, list(event_types) or None, replace=replace)
    if as_json:
        click.echo(json.dumps(_webhook_json(record)))
    else:
        click.echo(f"webhook {record.name} {'stored' if replace else 'added'}: {_webhook_line(record)}")


def _secret(secret_file: str | None, secret_env: str | None) -> str:
    """The secret from exactly one of its sources, trimmed of surrounding whitespace (a file's
    last newline). Errors name the source, never what it holds."""
    if (secret_file is None) == (secret_env is None):
        raise UsageError("give the signing secret with --secret-file FILE or --secret-env VAR (one of them)")
    if secret_env is not None:
        if secret_env not in os.environ:
            raise UsageError(f"--secret-env: the environment variable {secret_env} is not set")
        return os.environ[secret_env].strip()
    assert secret_file is not None
    try:
        with Path(secret_file).open("rb") as f:
            raw = f.read(MAX_SECRET_CHARS * 4 + 1)
    except OSError as exc:
        raise UsageError(f"--secret-file: cannot read {secret_file}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"--secret-file: {secret_file} is not text") from None


@webhook_group.command("list")
@json_option
@handle_errors
@opens_store(server=True)
def webhook_list(opened: Opened, as_json: bool) -> None:
    """Every webhook, removed ones too; secrets show as a fingerprint only."""
    hooks = opened.store.webhooks()
    if as_json:
        click.echo(json.dumps([_webhook_json(w) for w in hooks]))
        return
    for w in hooks:
        click.echo(f"{w.name:<24} {'enabled' if w.disabled_at is None else 'removed':<8} {_webhook_line(w)}")


@webhook_group.command("remove")
@click.argument("name", type=WEBHOOK_NAME)
@handle_errors
@opens_store(server=True)
def webhook_remove(opened: Opened, name: str) -> None:
    """Remove webhook NAME: it receives nothing more and its pending deliveries are cancelled; its
    delivery log stays."""
    record = opened.store.remove_webhook(name)
    click.echo(f"webhook {record.name} removed")


@webhook_group.command("deliveries")
@click.argument("name", type=WEBHOOK_NAME, required=False)
@click.option("--state", type=click.Choice(DELIVERY_STATES), default=None, help="Only deliveries in this state.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="At most this many.")
@click.option("--before", type=EVENT_ID, default=None, help="Older than this delivery id (the next page).")
@json_option
@handle_errors
@opens_store(server=True)
def webhook_deliveries(
    opened: Opened, name: str | None, state: str | None, limit: int, before: int | None, as_json: bool
) -> None:
    """The delivery log, newest first (of webhook NAME only, when given)."""
    rows = opened.store.deliveries(webhook=name, state=state, before=before, limit=limit)
    if as_json:
        click.echo(json.dumps([_delivery_json(d) for d in rows]))
        return
    for d in rows:
        click.echo(_delivery_line(d))


def _webhook_line(w: WebhookRecord) -> str:
    types = "" if w.event_types is None else f" of {','.join(w.event_types)}"
    return f"{','.join(w.kinds)}{types} -> {w.url} (secret {w.fingerprint}…)"


def _webhook_json(w: WebhookRecord) -> dict[str, Any]:
    return {"name": w.name, "url": w.url, "kinds": list(w.kinds), "secret_fingerprint": w.fingerprint,
            "event_types": None if w.event_types is None else list(w.event_types), "enabled": w.disabled_at is None,
            "created_at": w.created_at, "disabled_at": w.disabled_at}  # fmt: skip


def _delivery_line(d: DeliveryRecord) -> str:
    about = f"event {d.event_id}" if d.event_id is not None else f"notice {d.notice_id}"
    last = "" if d.last_at is None else f"; last: {d.last_error or d.last_status} at {_when(d.last_at)}"
    return (f"{d.id:>6}  {d.state:<9} {d.webhook:<20} {d.kind:<17} {about:<14} "
            f"{d.attempts} attempt(s){last}  {d.uid}")  # fmt: skip


def _delivery_json(d: DeliveryRecord) -> dict[str, Any]:
    return {"id": d.id, "uid": d.uid, "webhook": d.webhook, "notice_id": d.notice_id, "kind": d.kind,
            "event_id": d.event_id, "state": d.state, "attempts": d.attempts, "next_at": d.next_at,
            "last_status": d.last_status, "last_error": d.last_error, "last_at": d.last_at,
            "created_at": d.created_at, "delivered_at": d.delivered_at}  # fmt: skip


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def register(cli: click.Group) -> None:
    cli.add_command(webhook_group)
