"""deliveries due far ahead wait in wake_at, out of the index claims walk

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A claim walks the queue index one endpoint at a time; an endpoint whose deliveries are all
due hours from now (retries late in the schedule, scheduled messages) cost every claim a
probe for nothing. Such deliveries now wait in ``wake_at`` (next_attempt_at NULL) until a
worker moves them back shortly before they are due. Rows queued before this revision stay
where they are: they are claimed as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("wake_at", _WHEN, nullable=True))
    op.create_index(
        "ix_deliveries_wake_at",
        "deliveries",
        ["wake_at"],
        postgresql_where=sa.text("wake_at IS NOT NULL"),
        sqlite_where=sa.text("wake_at IS NOT NULL"),
    )


def downgrade() -> None:
    # Parked deliveries become due at their time again in the one queue column.
    op.execute(
        "UPDATE deliveries SET next_attempt_at = wake_at WHERE wake_at IS NOT NULL"
        " AND next_attempt_at IS NULL"
    )
    op.drop_index("ix_deliveries_wake_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("wake_at")
