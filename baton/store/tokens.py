"""API tokens in the store: made, listed, looked up by digest, revoked. Each verb one transaction.

The token itself never reaches this module: callers pass its SHA-256 (``baton.access``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import NamedTuple, Unpack

from baton.access import Role, TokenRecord, TokenScope
from baton.errors import NotFound
from baton.store.retry import retried
from baton.store.tx import Tx, read_one, read_rows, select_list


class TokenRow(NamedTuple):
    id: int
    name: str
    role: str
    event_types: str | None
    labels: str | None
    created_at: float
    revoked_at: float | None


def _record(row: TokenRow) -> TokenRecord:
    def names(text: str | None) -> frozenset[str] | None:
        return None if text is None else frozenset(json.loads(text))

    return TokenRecord(row.id, row.name, Role(row.role), names(row.event_types), names(row.labels),
                       row.created_at, row.revoked_at)  # fmt: skip


def _listed(names: Iterable[str] | None) -> str | None:
    return None if names is None else json.dumps(sorted(set(names)))


_SELECT = f"SELECT {select_list(TokenRow)} FROM tokens"


class SqlTokens:
    """The token verbs of a SQL backend (mixed into :class:`~baton.store.sql.SqlStore`)."""

    transaction: Callable[..., AbstractContextManager[Tx]]

    @retried
    def create_token(self, digest: str, role: Role, name: str, **scope: Unpack[TokenScope]) -> TokenRecord:
        with self.transaction() as tx:
            row = read_one(
                tx,
                TokenRow,
                "INSERT INTO tokens (digest, name, role, event_types, labels, created_at) "
                f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {select_list(TokenRow)}",
                (digest, name, role.value, _listed(scope.get("event_types")), _listed(scope.get("labels")), tx.now),
            )
            assert row is not None
            tx.audit("admin", "token.created", f"role {role.value}", token_id=row.id, name=name)
            return _record(row)

    @retried
    def tokens(self) -> list[TokenRecord]:
        with self.transaction(write=False) as tx:
            return [_record(r) for r in read_rows(tx, TokenRow, f"{_SELECT} ORDER BY id")]

    @retried
    def token_by_digest(self, digest: str) -> TokenRecord | None:
        """The token with this digest, revoked or not (None: no such token)."""
        with self.transaction(write=False) as tx:
            row = read_one(tx, TokenRow, f"{_SELECT} WHERE digest = ?", (digest,))
            return None if row is None else _record(row)

    @retried
    def revoke_token(self, token_id: int) -> TokenRecord:
        with self.transaction() as tx:
            tx.q("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (tx.now, token_id))
            row = read_one(tx, TokenRow, f"{_SELECT} WHERE id = ?", (token_id,))
            if row is None:
                raise NotFound(f"no token {token_id}")
            tx.audit("admin", "token.revoked", "operator", token_id=token_id)
            return _record(row)

    @retried
    def open_session(self, digest: str, token_id: int, lifetime_s: float) -> float:
        with self.transaction() as tx:
            tx.q("DELETE FROM sessions WHERE expires_at <= ?", (tx.now,))
            expires_at = tx.now + lifetime_s
            tx.q("INSERT INTO sessions (digest, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                 (digest, token_id, tx.now, expires_at))  # fmt: skip
            tx.audit("ui", "session.opened", "login", token_id=token_id)
            return expires_at

    @retried
    def session_token(self, digest: str) -> TokenRecord | None:
        sql = (
            f"SELECT {select_list(TokenRow, 't.')} FROM sessions s JOIN tokens t ON t.id = s.token_id "
            "WHERE s.digest = ? AND s.expires_at > ?"
        )
        with self.transaction(write=False) as tx:
            row = read_one(tx, TokenRow, sql, (digest, tx.now))
            return None if row is None else _record(row)

    @retried
    def close_session(self, digest: str) -> None:
        with self.transaction() as tx:
            tx.q("DELETE FROM sessions WHERE digest = ?", (digest,))
