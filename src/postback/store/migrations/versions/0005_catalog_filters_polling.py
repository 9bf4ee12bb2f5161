"""event catalog: payload filters and projections per endpoint, validation per event type,
and the polling order of messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload_filter", _JSON, nullable=True))
        batch_op.add_column(sa.Column("projection", _JSON, nullable=True))
    with op.batch_alter_table("event_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("validate_payloads", sa.Boolean(), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("tx", sa.BigInteger(), nullable=False, server_default="0"))
    # Messages written before this revision are all committed: they poll in id order.
    op.execute(
        "UPDATE messages SET seq = (SELECT n FROM (SELECT id, row_number() OVER "
        "(ORDER BY id) AS n FROM messages) AS numbered WHERE numbered.id = messages.id)"
    )
    if pg:
        op.execute("CREATE SEQUENCE messages_seq")
        op.execute(
            "SELECT setval('messages_seq', (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages), false)"
        )
        op.execute("ALTER TABLE messages ALTER COLUMN seq SET DEFAULT nextval('messages_seq')")
        # The writing transaction's id: pollers read only below the oldest running one.
        op.execute(
            "ALTER TABLE messages ALTER COLUMN tx SET DEFAULT pg_current_xact_id()::text::bigint"
        )
    else:
        # The store numbers SQLite messages as MAX(seq) + 1 under the write lock.
        op.create_index("ix_messages_seq", "messages", ["seq"], unique=True)
    op.create_index("ix_messages_app_id_tx_seq", "messages", ["app_id", "tx", "seq"])


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_messages_app_id_tx_seq", table_name="messages")
    if not pg:
        op.drop_index("ix_messages_seq", table_name="messages")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("tx")
        batch_op.drop_column("seq")
    if pg:
        op.execute("DROP SEQUENCE messages_seq")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("note")
        batch_op.drop_column("payload")
    with op.batch_alter_table("event_types", schema=None) as batch_op:
        batch_op.drop_column("validate_payloads")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_column("projection")
        batch_op.drop_column("payload_filter")
