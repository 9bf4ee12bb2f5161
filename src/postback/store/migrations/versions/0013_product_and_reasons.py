"""product restriction and reasons as codes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

``event_types.product_path``: where the product id is in the payloads of that event type
(a dotted path such as ``data.product.id``). ``messages.product``: the product read there at
ingest. ``endpoints.product``: the one product an endpoint is for. All nullable without a
default: adding them rewrites nothing, and old processes leave them NULL.

``endpoints.disabled_reason`` now holds a reason as JSON (``{"code": ..., ...}``,
postback/reasons.py); the sentences written before are converted here (and back on
downgrade).
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUTO = re.compile(r"^every delivery failed since (\S+) \(auto-disabled\)$")
_endpoints = sa.table(
    "endpoints", sa.column("id", sa.String), sa.column("disabled_reason", sa.Text)
)


def _coded(text: str) -> str:
    if text.startswith("{"):
        return text
    if text == "disabled by request":
        reason: dict = {"code": "by_request"}
    elif found := _AUTO.match(text):
        reason = {"code": "failing_since", "since": found.group(1), "attempts": None}
    else:
        reason = {"code": "text", "text": text}
    return json.dumps(reason, separators=(",", ":"))


def _sentence(text: str) -> str:
    try:
        reason = json.loads(text)
    except ValueError:
        return text
    if reason.get("code") == "by_request":
        return "disabled by request"
    if reason.get("code") == "failing_since":
        return f"every delivery failed since {reason.get('since')} (auto-disabled)"
    return str(reason.get("text") or reason.get("code"))


def _convert(change) -> None:  # type: ignore[no-untyped-def]
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_endpoints.c.id, _endpoints.c.disabled_reason).where(
            _endpoints.c.disabled_reason.is_not(None)
        )
    ).all()
    for ep_id, text in rows:
        new = change(text)
        if new != text:
            conn.execute(
                _endpoints.update().where(_endpoints.c.id == ep_id).values(disabled_reason=new)
            )


def upgrade() -> None:
    with op.batch_alter_table("event_types") as batch:
        batch.add_column(sa.Column("product_path", sa.String(256), nullable=True))
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("product", sa.String(128), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("product", sa.String(128), nullable=True))
    _convert(_coded)


def downgrade() -> None:
    _convert(_sentence)
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("product")
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("product")
    with op.batch_alter_table("event_types") as batch:
        batch.drop_column("product_path")
