"""delivery scheduler: per-endpoint in-flight caps, circuit breaker, Retry-After pauses,
application rate limits, worker liveness

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("circuit_state", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("circuit_since", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("circuit_probe_at", _WHEN, nullable=True))
        batch_op.add_column(
            sa.Column("circuit_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("circuit_opens", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("paused_until", _WHEN, nullable=True))
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rate_next_at", _WHEN, nullable=True))
    # The scheduler walks the queue endpoint by endpoint: this index finds each endpoint
    # with queued deliveries, its earliest due one and its live claims, without reading the
    # backlog of any of them. It replaces the time-ordered index of the whole queue, which
    # no claim reads any more and which a planner may wrongly walk through a backlog.
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index(
        "ix_deliveries_endpoint_id_status_next_attempt_at",
        "deliveries",
        ["endpoint_id", "status", "next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    # Claims by worker: a live worker extends its own, a dead one's are handed on.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(16), nullable=True))
    op.create_index(
        "ix_deliveries_worker",
        "deliveries",
        ["worker"],
        postgresql_where=sa.text("status = 3"),
        sqlite_where=sa.text("status = 3"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", _WHEN, nullable=False),
        sa.Column("heartbeat_at", _WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("workers")
    op.drop_index("ix_deliveries_worker", table_name="deliveries")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("worker")
    op.drop_index("ix_deliveries_endpoint_id_status_next_attempt_at", table_name="deliveries")
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("rate_next_at")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        for name in (
            "paused_until",
            "circuit_opens",
            "circuit_failures",
            "circuit_probe_at",
            "circuit_since",
            "circuit_state",
            "max_in_flight",
        ):
            batch_op.drop_column(name)
