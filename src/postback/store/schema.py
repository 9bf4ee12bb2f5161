"""SQLAlchemy Core tables: one schema for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL so containment (channel, tag filters) can use it; JSON text on SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the dialect stores."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        # SQLite keeps text: store it naive so every value compares as the same format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


operator_tokens = sa.Table(
    "operator_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(256), nullable=False),
    _created(),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

app_tokens = sa.Table(
    "app_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "app_id",
        sa.String(40),
        sa.ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    _created(),
)

applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("uid", sa.String(256), nullable=True, unique=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("throttle_rate", sa.Integer, nullable=True),
    sa.Column("metadata", Json, nullable=False),
    # The application's rate limit (throttle_rate/s over all its endpoints): next free slot.
    sa.Column("rate_next_at", UTCDateTime(), nullable=True),
    # Days its messages (with their deliveries and attempts) are kept; NULL: the setting.
    sa.Column("retention_period", sa.Integer, nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

event_types = sa.Table(
    "event_types",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    # The description in other languages, by language tag (the portal shows the reader's).
    sa.Column("descriptions", Json, nullable=True),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
    sa.Column("deprecated", sa.Boolean, nullable=False, default=False),
    sa.Column("schemas", Json, nullable=True),
    sa.Column("group_name", sa.String(256), nullable=True),
    sa.Column("feature_flags", Json, nullable=True),
    # Check message payloads against the latest schema (None: POSTBACK_VALIDATE_PAYLOADS).
    sa.Column("validate_payloads", sa.Boolean, nullable=True),
    # Where the product id is in this event type's payloads (a dotted path such as
    # data.product.id): an endpoint for one product gets the messages naming it there.
    sa.Column("product_path", sa.String(256), nullable=True),
    # Where its payloads name their ordering key, for messages sent without orderingKey.
    sa.Column("ordering_key_path", sa.String(256), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "app_id",
        sa.String(40),
        sa.ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("uid", sa.String(256), nullable=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("throttle_rate", sa.Integer, nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("event_types", Json, nullable=True),
    sa.Column("channels", Json, nullable=True),
    # The one product it is for (matched with the product its messages name), or NULL.
    sa.Column("product", sa.String(128), nullable=True),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("headers", Json, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    # Secrets replaced by a rotation that still sign until their expiry: [{secret, until}].
    sa.Column("previous_secrets", Json, nullable=True),
    # Why it is disabled: a reason as JSON text, {"code": ..., ...} (postback/reasons.py).
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("disabled_at", UTCDateTime(), nullable=True),
    # Start of the current run of failures (NULL after a success): auto-disable's clock.
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("fail_streak", sa.Integer, nullable=False, server_default="0"),
    # Rate limit (throttle_rate/s) state shared by every worker: the next free send slot.
    sa.Column("rate_next_at", UTCDateTime(), nullable=True),
    # Which messages it gets beyond type and channel, and which of their fields it sees
    # (postback.filters).
    sa.Column("payload_filter", Json, nullable=True),
    sa.Column("projection", Json, nullable=True),
    # The scheduler (postback.delivery.scheduler): deliveries in flight at once (NULL: the
    # default), the circuit breaker (state 0 closed, 1 open, 2 half-open; since when; when
    # the next probe may go, or while half-open when the probe's claim ends; failures in a
    # row; openings in a row, which lengthen the cool-down) and a receiver's Retry-After.
    sa.Column("max_in_flight", sa.Integer, nullable=True),
    sa.Column("circuit_state", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("circuit_since", UTCDateTime(), nullable=True),
    sa.Column("circuit_probe_at", UTCDateTime(), nullable=True),
    sa.Column("circuit_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("circuit_opens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("paused_until", UTCDateTime(), nullable=True),
    # Credentials presented to the receiver, sealed like the secret (JSON inside): the
    # client certificate with its key and a CA bundle; OAuth2 client credentials. The
    # *_info columns are what may be shown; the expiry columns drive the warning webhook.
    sa.Column("tls", sa.Text, nullable=True),
    sa.Column("tls_info", Json, nullable=True),
    sa.Column("oauth", sa.Text, nullable=True),
    sa.Column("oauth_info", Json, nullable=True),
    sa.Column("client_cert_expires_at", UTCDateTime(), nullable=True),
    sa.Column("client_cert_warned_at", UTCDateTime(), nullable=True),
    # Ordered delivery: one delivery in flight per ordering key, in message order
    # (docs/architecture.md, "Ordered delivery").
    sa.Column("ordered", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("app_id", "uid"),
)

# On PostgreSQL partitioned by RANGE (id), deliveries and attempts by RANGE (msg_id), on
# the same windows of message ids (store/pg/partitions.py, migrations 0017 and 0019). There
# nothing references messages (a referenced partition cannot be dropped) and the eventId
# is unique through message_event_ids (a partitioned unique index must hold the partition
# key); what is written here is what SQLite has.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "app_id",
        sa.String(40),
        sa.ForeignKey("applications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_type", sa.String(256), nullable=False),
    sa.Column("event_id", sa.String(256), nullable=True),
    # The exact bytes that are signed and sent: stored once, never re-serialized.
    sa.Column("payload", sa.LargeBinary, nullable=True),
    sa.Column("channels", Json, nullable=True),
    sa.Column("tags", Json, nullable=True),
    _created(),
    sa.Column("deliver_at", UTCDateTime(), nullable=True),
    # When the payload is dropped (payloadRetentionPeriod); the message record stays.
    sa.Column("expunge_at", UTCDateTime(), nullable=True),
    # Polling order (events API): (tx, seq). seq numbers messages as they are written; on
    # PostgreSQL tx is the writing transaction's id and pollers only read below the oldest
    # transaction still writing messages (store/events.py), so a late commit can never land
    # behind a cursor. seq is filled in by the database (a default on PostgreSQL, MAX(seq) + 1
    # on SQLite); tx by its default or by pg/ingest.py.
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("tx", sa.BigInteger, nullable=False, server_default="0"),
    # The W3C traceparent its attempts are traced under (postback.tracing), or NULL.
    sa.Column("trace_context", sa.String(64), nullable=True),
    # The product id read from the payload at ingest (its event type's product_path).
    sa.Column("product", sa.String(128), nullable=True),
    # The key its deliveries to ordered endpoints are ordered within (NULL: the shared one).
    sa.Column("ordering_key", sa.String(256), nullable=True),
    sa.UniqueConstraint("app_id", "event_id"),
    sa.Index("ix_messages_app_id_id", "app_id", "id"),
    sa.Index("ix_messages_app_id_tx_seq", "app_id", "tx", "seq"),
    sa.Index(
        "ix_messages_expunge_at",
        "expunge_at",
        postgresql_where=sa.text("expunge_at IS NOT NULL"),
        sqlite_where=sa.text("expunge_at IS NOT NULL"),
    ),
)

# PostgreSQL only (migration 0019): each application's eventIds and the message that took
# each, claimed in the transaction that inserts the message; its rows go with their messages.
message_event_ids = sa.Table(
    "message_event_ids",
    metadata,
    sa.Column(
        "app_id",
        sa.String(40),
        sa.ForeignKey("applications.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("msg_id", sa.String(40), nullable=False, index=True),
)

# One row per (message, endpoint): the queue. next_attempt_at is when it is due; a claim
# pushes it forward by the lease, so an abandoned claim simply becomes due again.
# NULL once the delivery is final (succeeded, failed, canceled) or paused, and while it is
# parked: a delivery due more than PARK_AHEAD from now (a late retry, a message scheduled
# for tomorrow) waits in wake_at instead, out of the index claims walk, until a worker
# moves it back (Store.wake_parked).
# On PostgreSQL keyed (id, msg_id), partitioned like attempts, with one more index,
# (msg_id) where next_attempt_at is not null: the claim's floor (store/pg/queue.py).
# ix_deliveries_heads' rows; a query must repeat these terms for the index to serve it.
HEADS_WHERE = "head AND status IN (1, 3) AND next_attempt_at IS NOT NULL"
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "msg_id", sa.String(40), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "endpoint_id",
        sa.String(40),
        sa.ForeignKey("endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("app_id", sa.String(40), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False, default=0),
    sa.Column("trigger_type", sa.SmallInteger, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("wake_at", UTCDateTime(), nullable=True),
    sa.Column("lease", sa.String(32), nullable=True),
    # The worker process holding the claim (workers.id), while status is sending.
    sa.Column("worker", sa.String(16), nullable=True),
    # The delivery already holds a rate-limit slot at next_attempt_at: send it then.
    sa.Column("rate_slot", sa.Boolean, nullable=False, server_default=sa.false()),
    # The body for this endpoint when its projection differs from the message's payload.
    sa.Column("payload", sa.LargeBinary, nullable=True),
    # Why a delivery was not made (a payload filter did not match), for the destinations.
    sa.Column("note", sa.Text, nullable=True),
    # Ordered endpoints only: the message's ordering key ('' for none; NULL when the
    # endpoint is not ordered) and the delivery's place in it (the message's seq, or a
    # resend's place at the back of its key).
    sa.Column("ordering_key", sa.String(256), nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=True),
    # Ordered endpoints only: this delivery is its key's head, the one a claim may take
    # (docs/architecture.md, "Ordered delivery"). Set at ingest when the key has nothing
    # unfinished, and on the key's next delivery when its head finishes.
    sa.Column("head", sa.Boolean, nullable=False, server_default=sa.false()),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("msg_id", "endpoint_id"),
    sa.Index("ix_deliveries_endpoint_id_id", "endpoint_id", "id"),
    sa.Index(
        "ix_deliveries_endpoint_id_status_next_attempt_at",
        "endpoint_id",
        "status",
        "next_attempt_at",
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    ),
    sa.Index(
        "ix_deliveries_wake_at",
        "wake_at",
        postgresql_where=sa.text("wake_at IS NOT NULL"),
        sqlite_where=sa.text("wake_at IS NOT NULL"),
    ),
    # Each key's head (its first unfinished delivery), found one index descent per key.
    sa.Index(
        "ix_deliveries_ordering",
        "endpoint_id",
        "ordering_key",
        "seq",
        "id",
        postgresql_where=sa.text("ordering_key IS NOT NULL AND status IN (1, 3)"),
        sqlite_where=sa.text("ordering_key IS NOT NULL AND status IN (1, 3)"),
    ),
    # The heads an ordered endpoint's claim takes, by due time: a key whose head waits
    # (retrying, in flight) sorts after now, a parked or paused one is not in it.
    sa.Index(
        "ix_deliveries_heads",
        "endpoint_id",
        "next_attempt_at",
        postgresql_where=sa.text(HEADS_WHERE),
        sqlite_where=sa.text(HEADS_WHERE),
    ),
    sa.Index(
        "ix_deliveries_worker",
        "worker",
        postgresql_where=sa.text("status = 3"),
        sqlite_where=sa.text("status = 3"),
    ),
)

# Worker processes and their heartbeats: the claims of a worker that stopped beating are
# handed on at once instead of when their leases run out.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
)

# On PostgreSQL partitioned by RANGE (msg_id), a window of message ids per partition, and
# keyed (id, msg_id) there since a partitioned key must hold the partition key
# (store/pg/partitions.py, migration 0017); what is written here is what SQLite has.
attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column(
        "msg_id", sa.String(40), sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "endpoint_id",
        sa.String(40),
        sa.ForeignKey("endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("app_id", sa.String(40), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("response_status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("response_duration_ms", sa.Integer, nullable=False),
    sa.Column("trigger_type", sa.SmallInteger, nullable=False),
    _created(),
    sa.Index("ix_attempts_msg_id_id", "msg_id", "id"),
    sa.Index("ix_attempts_endpoint_id_id", "endpoint_id", "id"),
)

# Responses to POSTs that carried an idempotency-key, replayed for 24 hours.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256(token scope, key)
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),  # NULL while the first is running
    sa.Column("response", sa.LargeBinary, nullable=True),
    sa.Column("content_type", sa.String(128), nullable=True),
    _created(),
    sa.Index("ix_idempotency_keys_created_at", "created_at"),
)

background_tasks = sa.Table(
    "background_tasks",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("app_id", sa.String(40), nullable=True, index=True),
    sa.Column("task", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("data", Json, nullable=False),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Signed-in browsers (portal and dashboard). The cookie holds a random id whose hash is the
# key here; the session lasts while its row and the token it was opened with both do.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column(
        "operator_token_id",
        sa.String(40),
        sa.ForeignKey("operator_tokens.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column(
        "app_token_id",
        sa.String(40),
        sa.ForeignKey("app_tokens.id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("csrf", sa.String(64), nullable=False),
    _created(),
    sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# Background chores shared by every worker process, one row each (``retention``): which
# process runs it (claimed until ``due_at``, then not due again before it) and what its last
# run did.
housekeeping = sa.Table(
    "housekeeping",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("due_at", UTCDateTime(), nullable=True),
    sa.Column("last_run_at", UTCDateTime(), nullable=True),
    sa.Column("result", Json, nullable=True),
)
