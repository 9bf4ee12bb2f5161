"""ordering heads: each key's head marked, and the claim's index of due heads

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

``deliveries.head`` marks the one delivery of an ordered endpoint's key a claim may take;
``ix_deliveries_heads`` holds the unfinished heads by endpoint and due time, so a claim
takes due heads without walking the keys that are blocked (a head retrying, parked,
paused or in flight). Existing keyed deliveries are converted in place: each key's first
unfinished delivery in (seq, id) order becomes its head.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HEADS = "head AND status IN (1, 3) AND next_attempt_at IS NOT NULL"
# Each key's first unfinished delivery (through ix_deliveries_ordering, one probe a row).
_SEAT = """
UPDATE deliveries SET head = (id = (
    SELECT n.id FROM deliveries n
    WHERE n.endpoint_id = deliveries.endpoint_id AND n.ordering_key = deliveries.ordering_key
      AND n.ordering_key IS NOT NULL AND n.status IN (1, 3)
    ORDER BY n.endpoint_id, n.ordering_key, n.seq, n.id LIMIT 1))
WHERE ordering_key IS NOT NULL AND status IN (1, 3)
"""


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("head", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(_SEAT)
    op.create_index(
        "ix_deliveries_heads",
        "deliveries",
        ["endpoint_id", "next_attempt_at"],
        postgresql_where=sa.text(_HEADS),
        sqlite_where=sa.text(_HEADS),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_heads", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("head")
