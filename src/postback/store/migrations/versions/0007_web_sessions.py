"""web sessions: the portal's and the dashboard's browser sessions, kept server-side

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_token_id", sa.String(length=40), nullable=True),
        sa.Column("app_token_id", sa.String(length=40), nullable=True),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_token_id"],
            ["operator_tokens.id"],
            name=op.f("fk_web_sessions_operator_token_id_operator_tokens"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_token_id"],
            ["app_tokens.id"],
            name=op.f("fk_web_sessions_app_token_id_app_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_web_sessions_operator_token_id"), ["operator_token_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_app_token_id"), ["app_token_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_web_sessions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("web_sessions")
