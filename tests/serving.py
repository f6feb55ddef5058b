"""A real ``baton server`` for tests: its own process on a free loopback port, over a given store.

``Served.start`` waits for ``/healthz``; ``mint`` makes tokens straight in the store (as
``baton token create`` does); ``kill``/``restart`` are for fault tests. TLS: pass ``tls`` (see
:func:`make_tls`), and clients verify with ``ca_file``. Ports come from :mod:`ports` (this test
process's own block); a server whose port was taken meanwhile starts again on another.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
from ports import free_port
from zygote import Forked, zygote

from baton.access import Role, new_token, token_digest
from baton.store.protocol import TokenStore

START_TIMEOUT_S = 30.0
PORT_TRIES = 5

__all__ = ["START_TIMEOUT_S", "Served", "Tls", "free_port", "make_tls", "mint"]


class PortTaken(RuntimeError):
    """The server could not bind its port: something else took it after it was chosen."""


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    ca_file: Path


def make_tls(folder: Path) -> Tls:
    """A throwaway certificate authority and a server certificate for 127.0.0.1 and localhost."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = Tls(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(str(paths.cert))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(paths.cert), append=True)
    cert.private_key_pem.write_to_path(str(paths.key))
    ca.cert_pem.write_to_path(str(paths.ca_file))
    return paths


def mint(store: TokenStore, role: Role, name: str = "", event_types: Iterable[str] | None = None,
         labels: Iterable[str] | None = None) -> str:  # fmt: skip
    """A new token of ``role`` (returned; the store keeps its digest)."""
    token = new_token(role)
    store.create_token(token_digest(token), role, name or role.value, event_types=event_types, labels=labels)
    return token


class Served:
    """``baton server`` in a new process (forked from the test process's :mod:`zygote`), logging to
    ``log``."""

    def __init__(
        self,
        db_url: str,
        folder: Path,
        *,
        tls: Tls | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.db_url = db_url
        self.folder = folder
        self.tls = tls
        self.env = env or {}
        self.port_given = port is not None
        self.port = port or free_port()
        self.proc: Forked | None = None
        self.log = folder / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx checks the server with (a context: httpx deprecates ``verify=<path>``)."""
        return ssl.create_default_context(cafile=str(self.tls.ca_file)) if self.tls else True

    def start(self) -> Served:
        """Start the server and wait until it answers. A port chosen here and taken meanwhile by
        another process is chosen again (a port given to the constructor, or a restart on the
        same port, is not: the clients hold it)."""
        for attempt in range(PORT_TRIES):
            try:
                return self._start()
            except PortTaken:
                if self.port_given or attempt == PORT_TRIES - 1:
                    raise
                self.port = free_port()
                self.log = self.folder / f"server-{self.port}.log"
        raise AssertionError("unreachable")

    def _start(self) -> Served:
        args = ["server", "--port", str(self.port), "--db", self.db_url]
        if self.tls:
            args += ["--cert", str(self.tls.cert), "--key", str(self.tls.key)]
        self.proc = zygote().start(args, env={**os.environ, **self.env}, cwd=os.getcwd(), stdout=self.log,
                                   stderr=self.log, append=True)  # fmt: skip
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                log = self.log.read_text()
                kind = PortTaken if "address already in use" in log else RuntimeError
                raise kind(f"baton server exited with {self.proc.returncode}:\n{log}")
            try:
                if httpx.get(f"{self.url}/healthz", verify=self.verify, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"baton server did not answer /healthz within {START_TIMEOUT_S} s:\n{self.log.read_text()}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, verify=self.verify, timeout=30.0)

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> Served:
        """SIGKILL, then start again on the same port."""
        self.kill()
        self.port_given = True
        return self.start()
