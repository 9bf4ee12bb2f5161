"""retention of records: a per-application period, and the shared housekeeping row

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

``applications.retention_period`` (days, NULL: POSTBACK_RETENTION_PERIOD) says how long an
application's messages, deliveries and attempts are kept. ``housekeeping`` holds one row per
chore the workers share (``retention``): the claim that lets one process run it at a time,
and what its last run removed (shown on the dashboard). Both are additions only: old
processes keep working while new ones start.

SQLite's ``auto_vacuum`` cannot be changed here: on a file that already has tables it only
takes effect after a full VACUUM, which rewrites the whole database under an exclusive lock.
New files get INCREMENTAL from store/engine.py; docs/configuration.md says how to convert an
existing one while postback is stopped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("retention_period", sa.Integer, nullable=True))
    housekeeping = op.create_table(
        "housekeeping",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_housekeeping")),
    )
    op.bulk_insert(housekeeping, [{"name": "retention"}])


def downgrade() -> None:
    op.drop_table("housekeeping")
    # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+), not batch mode's copy of the table:
    # dropping the old ``applications`` would cascade to every endpoint and message.
    op.drop_column("applications", "retention_period")
