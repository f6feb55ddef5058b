"""``baton dev``: the server (API and UI), a controller and local workers on one machine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from baton.cli.options import backend_for, db_option, handle_errors, settings_from
from baton.cli.types import NAME, TEXT
from baton.graphs.spec import load_graph_file
from baton.local.stack import run_stack
from baton.local.workers import labels_needed
from baton.server.serve import DEFAULT_PORT, check_transport

LOOPBACK = "127.0.0.1"


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--graph", "graph_files", multiple=True, type=click.Path(dir_okay=False, exists=True),
                  help="Register this graph file first (repeat for several).")  # fmt: skip
    @click.option("--host", default=LOOPBACK, show_default=True, type=TEXT, help="Address to listen on.")
    @click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535))
    @click.option("--workers", default=2, show_default=True, type=click.IntRange(0, 64), help="Local workers.")
    @click.option("--slots", default=4, show_default=True, type=click.IntRange(1, 4096), help="Slots per worker.")
    @click.option("--label", "labels", multiple=True, type=NAME,
                  help="Labels of the local workers (default: every label the given graphs ask for).")  # fmt: skip
    @db_option
    @handle_errors
    def dev(
        graph_files: Sequence[str],
        host: str,
        port: int,
        workers: int,
        slots: int,
        labels: Sequence[str],
        db: str | None,
        config_file: str | None,
    ) -> None:
        """Run everything here until Ctrl-C: the web UI and API, a controller and local workers
        (on the embedded SQLite database unless --db says otherwise)."""
        check_transport(host, None, None, allow_plain_http=False)
        graphs = [(load_graph_file(f), str(Path(f).resolve())) for f in graph_files]  # bad files stop here
        settings = settings_from(config_file, db=db)
        store = backend_for(settings)
        for graph, source in graphs:
            record = store.register_graph(graph, source=source)
            click.echo(f"graph {record.name} v{record.version} for events of type {record.event_type}", err=True)
        wanted = list(labels) or sorted({label for graph, _ in graphs for label in labels_needed(graph)})
        run_stack(store, settings, host, port, workers, slots, wanted, lambda line: click.echo(line, err=True))
