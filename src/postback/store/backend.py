"""The seam between the Store and a database: what differs between SQLite and PostgreSQL.

The Store (store.py and the modules it is made of) is written once, in SQLAlchemy, for both
databases. What cannot be written once sits behind ``Backend``: the hot paths (writing a
batch of messages, claiming deliveries, recording a batch of successes), each written in
one database's own SQL for speed, and the few places where the two databases' SQL or
locking differ. ``backend_for`` picks the implementation once, when the Store is built;
nothing else asks which database it is talking to.

- ``store/sqlite/``: one writer at a time; each hot path is one transaction run whole in
  the connection's thread.
- ``store/pg/``: many processes at once; each hot path is one or two round trips on the
  driver's connection, concurrency settled by row locks and ``SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from postback.delivery.scheduler import SchedulerPolicy

Row = dict[str, Any]


class Written(NamedTuple):
    """What a batch write did: per message, ``None`` (written), ``SEEN`` (its eventId was
    used before: that message stands) or the exception that message alone raised; and
    whether any delivery was queued (the Store then wakes this process's worker)."""

    outcomes: list[Any]
    queued: bool


class Claimed(NamedTuple):
    """A leased delivery with what sending it needs, as both backends' claims return it."""

    id: str
    msg_id: str
    app_id: str
    endpoint_id: str
    attempt_count: int
    trigger_type: int
    url: str
    secret: str
    previous_secrets: list[dict[str, str]] | None
    headers: dict[str, str] | None
    throttle_rate: int | None
    rate_slot: bool
    payload: bytes | None
    app_throttle_rate: int | None
    tls: str | None = None  # sealed credentials toward the receiver (store/credentials.py)
    oauth: str | None = None
    trace_context: str | None = None  # the message's traceparent (postback.tracing)


class Success(NamedTuple):
    """One plain success to record (``record_successes``): the attempt row's values and the
    delivery's new attempt count. Serialised as a JSON array on PostgreSQL, in this order."""

    attempt_id: str
    delivery_id: str
    lease: str
    msg_id: str
    endpoint_id: str
    app_id: str
    url: str
    status_code: int
    response: str
    duration_ms: int
    trigger: int
    at: datetime
    attempt_count: int


class Backend(Protocol):
    """One database's implementation of what the Store cannot write once."""

    name: str
    """``sqlite`` or ``postgresql``: for logs and reports, never to branch on."""

    message_insert: sa.Insert
    """The general path's INSERT of one message row: how it gets its feed position
    (``seq``, and ``tx`` on PostgreSQL) differs."""

    batch_budget: float
    """Seconds one transaction of a long chore (the retention pass's deletes) should last:
    short where a writer locks the whole database, longer where it locks only the rows it
    deletes, which no one else writes."""

    async def write_messages(self, items: list[tuple[Row, bool]]) -> Written:
        """Write a batch of new messages, each with one delivery per live endpoint that
        wants it (store/routing.py), for group commit (group_commit.py). ``items``: per
        message, its row and whether its ``app_id`` may be a uid to look up.

        Commits before it returns: an outcome of ``None`` means durable. Each message is
        atomic with its deliveries, and one message's failure (an unknown application)
        is its own outcome without failing the others; an outage raises for the whole
        batch and nothing of it is written. Other processes' workers are woken at commit,
        never for a batch that was rolled back."""
        ...

    async def claim(
        self,
        now: datetime,
        limit: int,
        until: datetime,
        lease: str,
        worker: str,
        policy: SchedulerPolicy,
    ) -> tuple[list[Claimed], datetime | None, frozenset[str]]:
        """Lease up to ``limit`` due deliveries as planned by
        ``postback.delivery.scheduler.plan_claim`` from the queue's heads, in one
        transaction: each becomes status sending, due again at ``until`` (the lease's end),
        marked with ``lease`` and ``worker``. The plan's caps hold across every worker
        process: the endpoint's room is counted under a lock no other claimer of that
        endpoint holds at the same time. Half-open circuits' probes are marked out until
        ``until``. Returns the claims in delivery id order, when the next endpoint not
        claimable now becomes claimable (None: nothing waits), and the plan's ``watch``
        (the endpoints whose recorded attempts may make more work claimable at once)."""
        ...

    async def record_successes(self, done: Sequence[Success], now: datetime) -> list[str]:
        """Record a batch of plain successes in one transaction: attempts only for
        deliveries that still exist, each delivery done only under the lease that claimed
        it (a lapsed claim another worker took over stays theirs), its endpoint's failure
        clock and breaker count reset. Returns the endpoints among the batch whose circuit
        is not closed (the caller closes them). Retried on a deadlock."""
        ...

    async def announce_work(self, conn: AsyncConnection) -> None:
        """Inside a transaction that queued work: wake other processes' workers when it
        commits (and not if it rolls back)."""
        ...

    async def listen_for_work(self, woken: asyncio.Event) -> None:
        """Until cancelled, set ``woken`` whenever another process queues work. Returns at
        once where there are no other processes."""
        ...

    def json_list_has(self, column: sa.ColumnElement[Any], value: str) -> sa.ColumnElement[bool]:
        """A JSON array column contains the string ``value``."""
        ...

    def epoch_seconds(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A timestamp column as seconds since 1970 (a float)."""
        ...

    def among(self, column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
        """``column`` is one of ``values``, which may be thousands (retention's batches)."""
        ...

    def server_now(self, local_now: datetime) -> sa.ColumnElement[datetime] | datetime:
        """The clock that times written by several machines are compared on: the server's
        where there is one, else ``local_now``."""
        ...

    def lock_rows(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        """Lock the selected rows until commit against other writers of the same rows,
        without waiting for the key-share locks inserts of referencing rows take (FOR NO
        KEY UPDATE). Callers order the rows by id, so every locker locks in one order."""
        ...

    async def register_feed_writer(self, conn: AsyncConnection) -> None:
        """First thing in a transaction that writes messages: count it among the writers
        the events feed waits for (store/events.py)."""
        ...

    def feed_visible(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        """Bound an events-feed read to what no open writer can still insert below."""
        ...

    async def feed_writers(self, conn: AsyncConnection, held_after: float) -> list[Row]:
        """The registered message writers open longer than ``held_after`` seconds, oldest
        first, each with its ``pid``, ``database``, ``state``, ``seconds`` open and
        ``blocked_by`` (the sessions it waits for); none where one writer at a time is all
        there is."""
        ...

    async def give_back_space(self, max_pages: int) -> int:
        """After rows were deleted: return up to ``max_pages`` free pages of the database
        file to the file system, a short write transaction per small step; returns how many
        it returned. Nothing to do where the database reuses freed space itself
        (PostgreSQL's autovacuum) or the file cannot shrink this way."""
        ...

    async def table_sizes(self, tables: Sequence[str]) -> dict[str, Row]:
        """Per table: ``rows`` (exact, or the planner's estimate where counting would read
        the whole table) and ``bytes`` on disk with its indexes (None if unknown); measured
        without holding a connection or lock that writers need."""
        ...

    async def ensure_partitions(self, width: float, ahead: int) -> int:
        """Make the time partitions missing from now to ``ahead`` windows of ``width``
        seconds after it, safely from many processes at once; returns how many were made
        (none where tables are not partitioned)."""
        ...

    async def hold_partition_drops(self, conn: AsyncConnection) -> None:
        """First in a transaction that may make an old delivery pending again (resend,
        recover, replay): no partition is dropped until it commits."""
        ...

    async def drop_expired_partitions(self, now: datetime, default: float) -> Row:
        """Drop the whole partitions past the ``default`` period that nothing keeps (a
        live delivery, an application's longer period): rows removed per table
        (``messages``, ``deliveries``, ``attempts``) and ``partitions``, their names;
        nothing where tables are not partitioned."""
        ...

    def event_id_is(
        self, app: str | sa.ColumnElement[Any], event_id: str
    ) -> sa.ColumnElement[bool]:
        """A condition on ``messages``: the message of ``app`` (an id, or a subquery of
        ids) that took ``event_id``. Where messages are partitioned the eventIds are kept
        beside them (``message_event_ids``), one index probe instead of one a partition."""
        ...

    async def claim_event_id(self, conn: AsyncConnection, row: Row) -> bool:
        """The general path: take the message ``row``'s eventId for it in ``conn``'s
        transaction; False if another message has it (that one's transaction committed)."""
        ...

    async def forget_event_ids(self, conn: AsyncConnection, msg_ids: Sequence[str]) -> None:
        """Retention's batches: the eventIds of these messages, which are being removed,
        go with them."""
        ...


def backend_for(engine: AsyncEngine) -> Backend:
    """The backend of ``engine``'s database: chosen here, once."""
    name = engine.dialect.name
    if name == "postgresql":
        from postback.store.pg import PostgresBackend

        return PostgresBackend(engine)
    if name == "sqlite":
        from postback.store.sqlite import SqliteBackend

        return SqliteBackend(engine)
    raise ValueError(f"postback does not support {name!r} databases")
