"""PostgreSQL time partitions: ``attempts`` becomes range-partitioned by its message's id

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

In place, without copying a row: the table as it is becomes the first partition,
``attempts_0``, covering every message id up to the end of the current window
(POSTBACK_PARTITION_WIDTH, default one day); a new partitioned ``attempts`` is made with
the same columns, foreign keys and indexes, and the old table is attached to it. The
partitioned primary key must hold the partition key, so it becomes ``(id, msg_id)``: its
unique index is the one thing built over the existing rows (the attach then only scans the
table once to check the bound). The next 3 windows get empty partitions. SQLite: nothing.

Not online: the index build holds a SHARE lock on ``attempts`` (workers cannot record
attempts meanwhile; reads go on) and the attach an ACCESS EXCLUSIVE one, both until the
migration commits. Measured (docs/deploy.md): 3.9 s for a million attempts.

Downgrade copies the rows back into a plain table (partitions cannot be merged in place).
"""

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postback.store.pg import partitions as p

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD = 3
_COLUMNS = (
    "id, msg_id, endpoint_id, app_id, url, status, response_status_code, response, error,"
    " response_duration_ms, trigger_type, created_at"
)
_FKS = (
    "ALTER TABLE {t} ADD CONSTRAINT fk_attempts_msg_id_messages FOREIGN KEY (msg_id)"
    " REFERENCES messages (id) ON DELETE CASCADE",
    "ALTER TABLE {t} ADD CONSTRAINT fk_attempts_endpoint_id_endpoints FOREIGN KEY"
    " (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE",
)


def _width() -> float:
    from postback.config import parse_duration

    raw = os.environ.get("POSTBACK_PARTITION_WIDTH")
    return parse_duration(raw) if raw else 86400.0


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or p.is_partitioned(conn, "attempts"):
        return
    import time

    width_ms = int(_width() * 1000)
    now_ms = int(time.time() * 1000)
    hi = p.window_start(now_ms, width_ms) + width_ms
    for sql in (
        "ALTER TABLE attempts RENAME TO attempts_0",
        "ALTER INDEX ix_attempts_msg_id_id RENAME TO attempts_0_msg_id_id_idx",
        "ALTER INDEX ix_attempts_endpoint_id_id RENAME TO attempts_0_endpoint_id_id_idx",
        # The one build over the existing rows: the partitioned key's unique index.
        "CREATE UNIQUE INDEX attempts_0_pkey ON attempts_0 (id, msg_id)",
        "ALTER TABLE attempts_0 DROP CONSTRAINT pk_attempts",
        "ALTER TABLE attempts_0 ADD PRIMARY KEY USING INDEX attempts_0_pkey",
        "CREATE TABLE attempts (LIKE attempts_0 INCLUDING DEFAULTS) PARTITION BY RANGE (msg_id)",
        "ALTER TABLE attempts ADD CONSTRAINT pk_attempts PRIMARY KEY (id, msg_id)",
        *(fk.format(t="attempts") for fk in _FKS),
        "CREATE INDEX ix_attempts_msg_id_id ON attempts (msg_id, id)",
        "CREATE INDEX ix_attempts_endpoint_id_id ON attempts (endpoint_id, id)",
        # The existing indexes and foreign keys match the parent's: attached, not rebuilt.
        "ALTER TABLE attempts ATTACH PARTITION attempts_0"
        f" FOR VALUES FROM (MINVALUE) TO ('{p.ids.floor_id(p.ids.MESSAGE, hi)}')",
        "ANALYZE attempts",
    ):
        conn.execute(sa.text(sql))
    p.ensure(conn, width_ms / 1000, AHEAD, now_ms)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or not p.is_partitioned(conn, "attempts"):
        return
    for sql in (
        "CREATE TABLE attempts_flat (LIKE attempts INCLUDING DEFAULTS)",
        f"INSERT INTO attempts_flat ({_COLUMNS}) SELECT {_COLUMNS} FROM attempts",
        "DROP TABLE attempts",
        "ALTER TABLE attempts_flat RENAME TO attempts",
        "ALTER TABLE attempts ADD CONSTRAINT pk_attempts PRIMARY KEY (id)",
        *(fk.format(t="attempts") for fk in _FKS),
        "CREATE INDEX ix_attempts_msg_id_id ON attempts (msg_id, id)",
        "CREATE INDEX ix_attempts_endpoint_id_id ON attempts (endpoint_id, id)",
    ):
        conn.execute(sa.text(sql))
