"""ordered delivery: endpoints that opt in, messages' ordering keys, each key's head

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

``endpoints.ordered`` (default false), ``messages.ordering_key`` and, on deliveries, the
key and place (``ordering_key``, ``seq``) an ordered endpoint's claim reads through a
partial index of unfinished deliveries. Nullable columns and a false default: old
processes keep working (they write unordered deliveries).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED_KEYED = "ordering_key IS NOT NULL AND status IN (1, 3)"


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(
            sa.Column("ordered", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(256), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(256), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_deliveries_ordering",
        "deliveries",
        ["endpoint_id", "ordering_key", "seq", "id"],
        postgresql_where=sa.text(_UNFINISHED_KEYED),
        sqlite_where=sa.text(_UNFINISHED_KEYED),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_ordering", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("seq")
        batch.drop_column("ordering_key")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ordering_key")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("ordered")
