"""idempotency answers are sealed from now on: forget the ones stored in plaintext

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Answers kept before this revision hold secrets (rotated whsec_ keys, app-portal tokens) and
payloads in plaintext. They are dropped rather than sealed in place: a migration has no
key, and a lost replay only means a client's retry within the day runs again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")


def downgrade() -> None:
    pass
