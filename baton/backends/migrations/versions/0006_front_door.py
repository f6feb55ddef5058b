"""The front door: API tokens, and the claim a task was taken by.

``tokens`` holds the SHA-256 of each opaque token (never the token), its role and what it is
limited to. ``tasks.claim_id`` names the claim request that took a running task, so a claim
retried after its answer was lost gets the same attempts back instead of new ones.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("tasks", sa.Column("claim_id", sa.Text()))
    op.create_table(
        "tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.Identity(always=False),
                  primary_key=True),  # fmt: skip
        sa.Column("digest", sa.Text(), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("event_types", sa.Text()),
        sa.Column("labels", sa.Text()),
        sa.Column("created_at", sa.Double().with_variant(sa.REAL(), "sqlite"), nullable=False),
        sa.Column("revoked_at", sa.Double().with_variant(sa.REAL(), "sqlite")),
    )
