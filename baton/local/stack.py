"""``baton dev`` and ``baton run --ui``: the whole system on one machine, with its web UI.

One process serves the API and the UI (uvicorn in the main thread, so Ctrl-C stops it the usual
way), runs a controller in a thread, and starts local worker processes; all share one store,
SQLite by default. A fresh admin token is made at each start and printed inside a login link:
the token rides in the link's fragment (after ``#``), which the browser never sends to the
server, and the login page posts it once to open a session.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

from baton.access import Role, new_token, token_digest
from baton.controller.loop import Controller, ControllerConfig
from baton.errors import BackendError
from baton.local.workers import LocalWorkers, local_log_dir
from baton.server.serve import serve
from baton.settings import Settings
from baton.store.protocol import Store


def login_link(host: str, port: int, token: str, page: str = "/ui/") -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/ui/login?next={page}#token={token}"


def dev_token(store: Store) -> str:
    """An admin token for this session of ``baton dev`` (revoke old ones with ``baton token``)."""
    secret = new_token(Role.ADMIN)
    store.create_token(token_digest(secret), Role.ADMIN, "baton dev")
    return secret


def run_stack(
    store: Store,
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    slots: int,
    labels: Sequence[str],
    announce: Callable[[str], None],
    page: str = "/ui/",
) -> None:
    """Serve until Ctrl-C (or SIGTERM) with a controller and ``workers`` local workers."""
    token = dev_token(store)
    stop = threading.Event()
    controller = Controller(store, ControllerConfig.from_settings(settings))
    thread = threading.Thread(target=controller.run, args=(stop,), name="baton-controller", daemon=True)
    local = LocalWorkers(settings, workers, {"slots": slots}, local_log_dir(settings), labels)
    thread.start()
    local.start()

    def ready() -> None:  # said once the server listens, so the link works when it is shown
        announce(f"Baton on http://{host}:{port}/ui/ (database {settings.db})")
        announce(f"{workers} local worker(s), {slots} slots each")
        announce(f"log in: {login_link(host, port, token, page)}")
        announce(f"or paste this admin token at http://{host}:{port}/ui/login : {token}")
        announce("Ctrl-C stops everything")

    try:
        serve(store, settings, host, port, on_ready=ready, return_on_signal=True)  # then stop the rest
    finally:
        stop.set()
        local.stop()
        thread.join(timeout=settings.poll_s + 10)
        with contextlib.suppress(BackendError):
            store.close()
