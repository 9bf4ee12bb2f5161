"""an event type's ordering key path

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-09

``event_types.ordering_key_path``: where the event type's payloads name their ordering key
(a dotted path such as ``data.subscription.id``); a message sent without ``orderingKey``
takes its key from there. A nullable column: an addition only, old processes keep working
(they ignore the path, so messages sent through them carry no key from it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event_types") as batch:
        batch.add_column(sa.Column("ordering_key_path", sa.String(256), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+), as 0015 does.
    op.drop_column("event_types", "ordering_key_path")
