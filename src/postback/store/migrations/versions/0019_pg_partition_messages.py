"""PostgreSQL time partitions: ``messages`` and ``deliveries`` become range-partitioned
like ``attempts``, on the same windows of message ids

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10

In place, as 0017 did for ``attempts``: ``messages`` is renamed ``messages_0`` and
``deliveries`` ``deliveries_0``, their indexes take the names of partition indexes,
partitioned parents are made with the same columns, defaults (``seq``'s ``nextval`` and
``tx``'s transaction id are copied by LIKE ... INCLUDING DEFAULTS) and indexes, and the old
tables are attached as the partitions of every message id up to the end of the current
window (POSTBACK_PARTITION_WIDTH). The next windows of the three tables get empty
partitions on identical bounds (partitions.ensure follows attempts' frontier, which already
sits on multiples of the width).

What a partitioned table cannot keep goes:
- ``UNIQUE (app_id, event_id)`` on messages (a partitioned unique index must hold the
  partition key): eventId dedupe moves to the unpartitioned ``message_event_ids``, filled
  here from the existing messages.
- the foreign keys from ``deliveries`` and ``attempts`` to ``messages``: a partition of a
  referenced table cannot be dropped, and detaching one takes locks ingest waits for.
  Whatever those cascades did is done explicitly (retention's batches; an application's
  deletion still cascades through ``endpoints`` and ``applications``).
- deliveries' primary key becomes ``(id, msg_id)``: the one index built over the existing
  rows. ``UNIQUE (msg_id, endpoint_id)`` stays (it holds the key).

Not online: the index build holds SHARE on ``deliveries`` and the attaches ACCESS
EXCLUSIVE on both tables until the commit. Measured in docs/deploy.md. SQLite: nothing.

Downgrade copies the rows back into plain tables.
"""

import os
import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from postback.store.pg import partitions as p

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AHEAD = 3
_MSG_COLUMNS = (
    "id, app_id, event_type, event_id, payload, channels, tags, created_at, deliver_at,"
    " expunge_at, seq, tx, trace_context, product, ordering_key"
)
_DLV_COLUMNS = (
    "id, msg_id, endpoint_id, app_id, status, attempt_count, trigger_type, next_attempt_at,"
    " lease, created_at, updated_at, rate_slot, payload, note, worker, wake_at, ordering_key,"
    " seq, head"
)
# The parents' indexes, by the names schema.py gives them; each table's old index of the
# same definition is renamed to its partition-index name and attached, not rebuilt.
_MSG_INDEXES = {
    "ix_messages_app_id_id": "(app_id, id)",
    "ix_messages_app_id_tx_seq": "(app_id, tx, seq)",
    "ix_messages_expunge_at": "(expunge_at) WHERE expunge_at IS NOT NULL",
}
_DLV_INDEXES = {
    "ix_deliveries_endpoint_id_id": "(endpoint_id, id)",
    "ix_deliveries_endpoint_id_status_next_attempt_at": "(endpoint_id, status, next_attempt_at)"
    " WHERE next_attempt_at IS NOT NULL",
    "ix_deliveries_wake_at": "(wake_at) WHERE wake_at IS NOT NULL",
    "ix_deliveries_ordering": "(endpoint_id, ordering_key, seq, id)"
    " WHERE ordering_key IS NOT NULL AND status IN (1, 3)",
    "ix_deliveries_heads": "(endpoint_id, next_attempt_at)"
    " WHERE head AND status IN (1, 3) AND next_attempt_at IS NOT NULL",
    "ix_deliveries_worker": "(worker) WHERE status = 3",
    # The claim's floor (store/pg/queue.py): the smallest msg_id with a queued row.
    "ix_deliveries_queued_msg_id": "(msg_id) WHERE next_attempt_at IS NOT NULL",
}
_MSG_FKS = (
    "ALTER TABLE messages ADD CONSTRAINT fk_messages_app_id_applications FOREIGN KEY (app_id)"
    " REFERENCES applications (id) ON DELETE CASCADE",
)
_DLV_FKS = (
    "ALTER TABLE deliveries ADD CONSTRAINT fk_deliveries_endpoint_id_endpoints FOREIGN KEY"
    " (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE",
)
_TO_MESSAGES = (
    "ALTER TABLE {t} ADD CONSTRAINT fk_{t}_msg_id_messages FOREIGN KEY (msg_id)"
    " REFERENCES messages (id) ON DELETE CASCADE"
)
EVENT_IDS = (
    "CREATE TABLE message_event_ids ("
    " app_id VARCHAR(40) NOT NULL"
    " CONSTRAINT fk_message_event_ids_app_id_applications REFERENCES applications (id)"
    " ON DELETE CASCADE,"
    " event_id VARCHAR(256) NOT NULL,"
    " msg_id VARCHAR(40) NOT NULL,"
    " CONSTRAINT pk_message_event_ids PRIMARY KEY (app_id, event_id))"
)


def _width() -> float:
    from postback.config import parse_duration

    raw = os.environ.get("POSTBACK_PARTITION_WIDTH")
    return parse_duration(raw) if raw else 86400.0


def _index_name(name: str, table: str) -> str:
    """The name PostgreSQL would give the partition's index (``<partition>_<cols>_idx``)."""
    return name.replace(f"ix_{table}_", f"{table}_0_", 1) + "_idx"


def _parent(table: str, key: str, indexes: dict[str, str]) -> list[str]:
    old = f"{table}_0"
    out = [f"ALTER TABLE {table} RENAME TO {old}"]
    out += [
        f"ALTER INDEX IF EXISTS {name} RENAME TO {_index_name(name, table)}" for name in indexes
    ]
    out.append(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY RANGE ({key})")
    return out


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or p.is_partitioned(conn, "messages"):
        return
    width_ms = int(_width() * 1000)
    now_ms = int(time.time() * 1000)
    hi = p.ids.floor_id(p.ids.MESSAGE, p.window_start(now_ms, width_ms) + width_ms)
    steps = [
        # Nothing may reference messages once it is partitioned (see the module doc).
        "ALTER TABLE deliveries DROP CONSTRAINT fk_deliveries_msg_id_messages",
        "ALTER TABLE attempts DROP CONSTRAINT fk_attempts_msg_id_messages",
        # eventId dedupe: the side table, from the messages there are.
        EVENT_IDS,
        "INSERT INTO message_event_ids (app_id, event_id, msg_id)"
        " SELECT app_id, event_id, id FROM messages WHERE event_id IS NOT NULL",
        "CREATE INDEX ix_message_event_ids_msg_id ON message_event_ids (msg_id)",
        "ALTER TABLE messages DROP CONSTRAINT uq_messages_app_id_event_id",
        # The one index built over existing rows: deliveries' partitioned key. The new
        # claim-floor index is built too (small: queued rows only).
        "CREATE UNIQUE INDEX deliveries_0_pkey ON deliveries (id, msg_id)",
        "ALTER TABLE deliveries DROP CONSTRAINT pk_deliveries",
        "ALTER TABLE deliveries ADD PRIMARY KEY USING INDEX deliveries_0_pkey",
        "CREATE INDEX ix_deliveries_queued_msg_id ON deliveries (msg_id)"
        " WHERE next_attempt_at IS NOT NULL",
        "ALTER INDEX pk_messages RENAME TO messages_0_pkey",
        "ALTER INDEX uq_deliveries_msg_id_endpoint_id"
        " RENAME TO deliveries_0_msg_id_endpoint_id_key",
        *_parent("messages", "id", _MSG_INDEXES),
        "ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY (id)",
        *_MSG_FKS,
        *(f"CREATE INDEX {n} ON messages {d}" for n, d in _MSG_INDEXES.items()),
        f"ALTER TABLE messages ATTACH PARTITION messages_0 FOR VALUES FROM (MINVALUE) TO ('{hi}')",
        *_parent("deliveries", "msg_id", _DLV_INDEXES),
        "ALTER TABLE deliveries ADD CONSTRAINT pk_deliveries PRIMARY KEY (id, msg_id)",
        "ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_msg_id_endpoint_id"
        " UNIQUE (msg_id, endpoint_id)",
        *_DLV_FKS,
        *(f"CREATE INDEX {n} ON deliveries {d}" for n, d in _DLV_INDEXES.items()),
        "ALTER TABLE deliveries ATTACH PARTITION deliveries_0"
        f" FOR VALUES FROM (MINVALUE) TO ('{hi}')",
        "ANALYZE messages",
        "ANALYZE deliveries",
    ]
    for sql in steps:
        conn.execute(sa.text(sql))
    p.ensure(conn, width_ms / 1000, AHEAD, now_ms)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or not p.is_partitioned(conn, "messages"):
        return
    steps = [
        "CREATE TABLE messages_flat (LIKE messages INCLUDING DEFAULTS)",
        f"INSERT INTO messages_flat ({_MSG_COLUMNS}) SELECT {_MSG_COLUMNS} FROM messages",
        "CREATE TABLE deliveries_flat (LIKE deliveries INCLUDING DEFAULTS)",
        f"INSERT INTO deliveries_flat ({_DLV_COLUMNS}) SELECT {_DLV_COLUMNS} FROM deliveries",
        "DROP TABLE deliveries",
        "DROP TABLE messages",
        "DROP TABLE message_event_ids",
        "ALTER TABLE messages_flat RENAME TO messages",
        "ALTER TABLE deliveries_flat RENAME TO deliveries",
        "ALTER TABLE messages ADD CONSTRAINT pk_messages PRIMARY KEY (id)",
        "ALTER TABLE messages ADD CONSTRAINT uq_messages_app_id_event_id UNIQUE (app_id, event_id)",
        *_MSG_FKS,
        *(f"CREATE INDEX {n} ON messages {d}" for n, d in _MSG_INDEXES.items()),
        "ALTER TABLE deliveries ADD CONSTRAINT pk_deliveries PRIMARY KEY (id)",
        "ALTER TABLE deliveries ADD CONSTRAINT uq_deliveries_msg_id_endpoint_id"
        " UNIQUE (msg_id, endpoint_id)",
        *_DLV_FKS,
        *(
            f"CREATE INDEX {n} ON deliveries {d}"
            for n, d in _DLV_INDEXES.items()
            if n != "ix_deliveries_queued_msg_id"
        ),
        # Rows of messages removed meanwhile may have been left by a partition drop's
        # order (attempts, deliveries, then messages): the foreign keys need none.
        *(
            f"DELETE FROM {table} x WHERE NOT EXISTS"
            " (SELECT 1 FROM messages m WHERE m.id = x.msg_id)"
            for table in ("deliveries", "attempts")
        ),
        _TO_MESSAGES.format(t="deliveries"),
        _TO_MESSAGES.format(t="attempts"),
    ]
    for sql in steps:
        conn.execute(sa.text(sql))
