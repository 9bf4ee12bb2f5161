"""messages keep a trace context: the traceparent their attempts are traced under

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

A nullable column without a default: adding it rewrites nothing on PostgreSQL (a catalog
change only) or SQLite, so it is safe while old processes run; they leave it NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("trace_context", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("trace_context")
