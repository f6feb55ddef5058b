"""Everything that speaks HTTP to a ``baton server``; it needs a URL and a token, never a database.

- ``api``: :class:`Client`, for applications and operators (``baton.Client``);
- ``store``: the operator's store and its reads over a ``Client``, returning the store's records:
  what the ``baton`` event commands work on when given ``--server``;
- ``worker_link``: a remote task server's link (the worker's store protocol over ``/worker/v1``);
- ``session``: the HTTP calls both share; ``timing``: their time limits; ``objects``: what the
  client returns.

``Client`` is imported on first use, so a remote worker's link does not load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from baton.client.api import Client

__all__ = ["Client"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from baton.client import api

        return getattr(api, name)
    raise AttributeError(f"module 'baton.client' has no attribute {name!r}")
