"""Sessions of the web UI: a person pastes a token once and the browser holds a cookie.

A row keeps the SHA-256 of the cookie's random value (never the value), the token it stands for
and when it ends. A session is only as good as its token: revoking the token ends its sessions
at the next lookup.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME: sa.types.TypeEngine[float] = sa.Double().with_variant(sa.REAL(), "sqlite")

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("token_id", ID, sa.ForeignKey("tokens.id"), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
    )
    op.create_index("sessions_expiry", "sessions", ["expires_at"])
