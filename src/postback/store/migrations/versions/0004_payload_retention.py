"""payload retention

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expunge_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_messages_expunge_at",
            ["expunge_at"],
            unique=False,
            postgresql_where=sa.text("expunge_at IS NOT NULL"),
            sqlite_where=sa.text("expunge_at IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_messages_expunge_at",
            postgresql_where=sa.text("expunge_at IS NOT NULL"),
            sqlite_where=sa.text("expunge_at IS NOT NULL"),
        )
        batch_op.drop_column("expunge_at")
