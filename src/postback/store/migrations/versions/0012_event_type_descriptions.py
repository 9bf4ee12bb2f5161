"""event types keep their descriptions in other languages: {"es": "...", "pt-BR": "..."}

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``description`` stays the one every reader falls back to; ``descriptions`` holds the
translations the operator wrote, by language tag. A nullable column without a default:
adding it rewrites nothing, so it is safe while old processes run (they leave it NULL).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("event_types") as batch:
        batch.add_column(sa.Column("descriptions", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_types") as batch:
        batch.drop_column("descriptions")
