"""Baton: an event comes in, a configured graph is split into per-partition task graphs, task
servers pull what fits their capacity, and the controller advances the graph until the
event is done. See README.md for the architecture and docs/ for the guides.

``baton.Client`` (:mod:`baton.client.api`) talks to a Baton server; it is imported on first use, so
``import baton`` stays as light as before for the processes that never need HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from baton.client.api import Client

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from baton.client.api import Client

        return Client
    raise AttributeError(f"module 'baton' has no attribute {name!r}")
