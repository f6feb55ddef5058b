"""Who may do what: roles, tokens and the rules the HTTP server enforces.

Tokens are opaque random strings (``baton_<role>_<43 url-safe characters>``, 256 bits), shown
once when made; the store keeps only their SHA-256, and the server looks a token up by that
digest. There is nothing to expire or sign, so no clock skew or shared secret is involved;
revoking takes effect as soon as the server's short cache of lookups lapses.

Roles, deny by default:

- ``admin``: everything, including tokens;
- ``client``: submit, read, cancel and rerun events, optionally only of listed event types;
- ``viewer``: read only;
- ``worker``: only the task servers' routes (``/worker/v1``), optionally only with labels out of
  a listed set, so a machine cannot claim to be a ``gpu`` box it is not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

TOKEN_BYTES = 32


class Role(StrEnum):
    ADMIN = "admin"
    CLIENT = "client"
    VIEWER = "viewer"
    WORKER = "worker"


class Action(StrEnum):
    READ = "read"  # events, tasks, logs, graphs, workers
    SUBMIT = "submit"
    STEER = "steer"  # cancel, rerun
    REGISTER_GRAPH = "register_graph"
    WORK = "work"  # the task servers' routes
    ADMIN = "admin"  # tokens


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action) - {Action.WORK},
    Role.CLIENT: frozenset({Action.READ, Action.SUBMIT, Action.STEER}),
    Role.VIEWER: frozenset({Action.READ}),
    Role.WORKER: frozenset({Action.WORK}),
}


class TokenScope(TypedDict, total=False):
    """What a new token is limited to: ``event_types`` (client and viewer tokens: only events of
    these types), ``labels`` (worker tokens: only these labels may be declared); None: no limit."""

    event_types: Iterable[str] | None
    labels: Iterable[str] | None


@dataclass(frozen=True)
class TokenRecord:
    """A token as the store knows it (never the token itself)."""

    id: int
    name: str
    role: Role
    event_types: frozenset[str] | None  # client/viewer: only these event types (None: all)
    labels: frozenset[str] | None  # worker: only labels out of these (None: any)
    created_at: float
    revoked_at: float | None = None

    def may(self, action: Action) -> bool:
        return self.revoked_at is None and action in ALLOWED[self.role]

    def sees_type(self, event_type: str) -> bool:
        """Whether events of ``event_type`` are visible to (and, with the action, steerable by) it."""
        return self.event_types is None or event_type in self.event_types

    def labels_problem(self, labels: frozenset[str]) -> str | None:
        """Why a worker holding this token may not declare ``labels`` (None: it may)."""
        if self.labels is None:
            return None
        extra = sorted(labels - self.labels)
        if not extra:
            return None
        return f"this worker token allows the labels {sorted(self.labels)} only, not {extra}"


def new_token(role: Role) -> str:
    """A fresh token for ``role``: shown once, then only its digest is kept."""
    return f"baton_{role.value}_{secrets.token_urlsafe(TOKEN_BYTES)}"


def token_digest(token: str) -> str:
    """What the store keeps and looks a token up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
