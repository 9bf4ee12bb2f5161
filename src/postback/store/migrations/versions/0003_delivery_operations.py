"""delivery operations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Fixed here (not imported) so this migration never changes under a later edit.
OPERATIONAL_APP_ID = "app_" + "0" * 22 + "oper"

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "background_tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=True),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_background_tasks")),
    )
    with op.batch_alter_table("background_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_background_tasks_app_id"), ["app_id"], unique=False)

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("content_type", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_created_at", ["created_at"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rate_slot", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "previous_secrets",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("disabled_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("fail_streak", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("rate_next_at", sa.DateTime(timezone=True), nullable=True))

    # The hidden application that carries operational webhooks (postback's own events).
    applications = sa.table(
        "applications",
        sa.column("id", sa.String),
        sa.column("uid", sa.String),
        sa.column("name", sa.String),
        sa.column("metadata", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        applications,
        [
            {
                "id": OPERATIONAL_APP_ID,
                "uid": None,
                "name": "postback operational webhooks",
                "metadata": {},
                "created_at": now,
                "updated_at": now,
            }
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM applications WHERE id = :id").bindparams(id=OPERATIONAL_APP_ID))
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_column("rate_next_at")
        batch_op.drop_column("fail_streak")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("previous_secrets")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("rate_slot")

    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_created_at")

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("background_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_background_tasks_app_id"))

    op.drop_table("background_tasks")
