"""``baton server`` and ``baton token``: the communication server and its API tokens.

Tokens are made on a machine that reaches the database (the server's); each is printed once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from baton.access import Role, new_token, token_digest
from baton.cli.options import backend_for, db_option, handle_errors, settings_from
from baton.cli.types import EVENT_ID, NAME, TEXT
from baton.server.serve import DEFAULT_HOST, DEFAULT_PORT


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--host", default=DEFAULT_HOST, show_default=True, type=TEXT, help="Address to listen on.")
    @click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
    @click.option("--cert", type=click.Path(dir_okay=False, exists=True), default=None, help="TLS certificate (PEM).")
    @click.option("--key", "key_file", type=click.Path(dir_okay=False, exists=True), default=None,
                  help="TLS private key (PEM).")  # fmt: skip
    @click.option("--allow-plain-http", is_flag=True, help="Plain HTTP on a non-loopback address (behind TLS).")
    @db_option
    @handle_errors
    def server(
        host: str,
        port: int,
        cert: str | None,
        key_file: str | None,
        allow_plain_http: bool,
        db: str | None,
        config_file: str | None,
    ) -> None:
        """Serve the HTTP API (/api/v1) and the task servers' protocol (/worker/v1)."""
        from baton.server.serve import check_transport, serve

        check_transport(host, cert, key_file, allow_plain_http)
        settings = settings_from(config_file, db=db)
        store = backend_for(settings)
        scheme = "https" if cert else "http"
        click.echo(f"baton server on {scheme}://{host}:{port} (database {settings.db})", err=True)
        try:
            serve(store, settings, host, port, cert, key_file, allow_plain_http)
        finally:
            store.close()

    @cli.group()
    def token() -> None:
        """API tokens for applications, people and remote task servers."""

    @token.command("create")
    @click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the token may do.")
    @click.option("--name", default="", type=TEXT, help="Who or what holds it (shown in lists and audit).")
    @click.option("--event-type", "event_types", multiple=True, type=TEXT,
                  help="client/viewer: only events of this type; repeat for several.")  # fmt: skip
    @click.option("--label", "labels", multiple=True, type=NAME,
                  help="worker: only these labels may be declared; repeat for several.")  # fmt: skip
    @db_option
    @handle_errors
    def token_create(
        role: str, name: str, event_types: Sequence[str], labels: Sequence[str], db: str | None, config_file: str | None
    ) -> None:
        """Make a token and print it once (only its SHA-256 is stored)."""
        chosen = Role(role)
        if labels and chosen is not Role.WORKER:
            raise click.UsageError("--label limits worker tokens only")
        if event_types and chosen not in (Role.CLIENT, Role.VIEWER):
            raise click.UsageError("--event-type limits client and viewer tokens only")
        secret = new_token(chosen)
        store = backend_for(settings_from(config_file, db=db))
        record = store.create_token(token_digest(secret), chosen, name or chosen.value,
                                    event_types=event_types or None, labels=labels or None)  # fmt: skip
        click.echo(f"token {record.id} ({record.role}, {record.name}); shown once, keep it:", err=True)
        click.echo(secret)

    @token.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
    @db_option
    @handle_errors
    def token_list(as_json: bool, db: str | None, config_file: str | None) -> None:
        """Every token (never the tokens themselves): id, role, name, limits, revoked or not."""
        rows = backend_for(settings_from(config_file, db=db)).tokens()
        if as_json:
            click.echo(json.dumps([{
                "id": t.id, "role": t.role.value, "name": t.name, "created_at": t.created_at,
                "event_types": None if t.event_types is None else sorted(t.event_types),
                "labels": None if t.labels is None else sorted(t.labels), "revoked_at": t.revoked_at,
            } for t in rows]))  # fmt: skip
            return
        for t in rows:
            limits = []
            if t.event_types is not None:
                limits.append(f"event types {','.join(sorted(t.event_types))}")
            if t.labels is not None:
                limits.append(f"labels {','.join(sorted(t.labels))}")
            state = "revoked" if t.revoked_at is not None else "active"
            click.echo(f"{t.id:>5}  {t.role.value:<7} {state:<8} {t.name}  {'; '.join(limits)}".rstrip())

    @token.command("revoke")
    @click.argument("token_id", type=EVENT_ID)
    @db_option
    @handle_errors
    def token_revoke(token_id: int, db: str | None, config_file: str | None) -> None:
        """Revoke a token: servers refuse it within their token cache time (token_cache_s)."""
        record = backend_for(settings_from(config_file, db=db)).revoke_token(token_id)
        click.echo(f"token {record.id} ({record.role}, {record.name}) revoked")
