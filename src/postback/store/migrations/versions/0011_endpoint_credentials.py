"""endpoint credentials: mTLS client certificate and CA bundle, OAuth2 client credentials

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

``tls`` and ``oauth`` are sealed JSON (store/secretbox.py, as endpoint secrets): the client
certificate's private key and the OAuth2 client secret are never stored in the clear.
``tls_info`` and ``oauth_info`` are what may be shown (fingerprint, subject, expiry; token
URL, client id, scopes). ``client_cert_expires_at`` and ``client_cert_warned_at`` drive the
operational webhook sent before the certificate expires.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = sa.DateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COLUMNS = (
    "tls",
    "tls_info",
    "oauth",
    "oauth_info",
    "client_cert_expires_at",
    "client_cert_warned_at",
)


def upgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch:
        batch.add_column(sa.Column("tls", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tls_info", _JSON, nullable=True))
        batch.add_column(sa.Column("oauth", sa.Text(), nullable=True))
        batch.add_column(sa.Column("oauth_info", _JSON, nullable=True))
        batch.add_column(sa.Column("client_cert_expires_at", _WHEN, nullable=True))
        batch.add_column(sa.Column("client_cert_warned_at", _WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints", schema=None) as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
