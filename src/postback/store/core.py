"""What every part of the Store shares: the engine, the database's backend, the clock, the
secret box, waking workers, and the lookups every resource starts from.

The Store is one class made of parts (store.py lists them), each a class of its own module
deriving from ``StoreCore``. A method is defined in exactly one of them (a test holds them
to it), so the order of the parts cannot change what a call does; a part that calls
another part's method declares it for the type checker only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postback import ids
from postback.domain import utcnow
from postback.store import schema as t
from postback.store.backend import Backend, backend_for
from postback.store.errors import Conflict, NotFound
from postback.store.group_commit import GroupCommit
from postback.store.secretbox import SecretBox, SecretKeyError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from postback.store.tokens import Principal

Row = dict[str, Any]
# The hidden application operational webhooks are messages of (operational.py).
OPERATIONAL_APP_ID = "app_" + "0" * 22 + "oper"
# Built once: every API call under /app/{app_id}/ looks its app up.
_APP_BY_ID = sa.select(t.applications).where(t.applications.c.id == sa.bindparam("ref"))
_APP_BY_UID = sa.select(t.applications).where(t.applications.c.uid == sa.bindparam("ref"))


class StoreCore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        secret_box: SecretBox | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.backend: Backend = backend_for(engine)
        self._box = secret_box
        self.clock = clock
        # Set when new work is queued; a worker in this process waits on it.
        self.work_queued = asyncio.Event()
        self._token_cache: dict[str, tuple[float, Principal]] = {}
        # Accepted messages, written in batches by the backend (group_commit.py).
        self._ingest: GroupCommit[tuple[Row, bool]] = GroupCommit(self._write_batch)
        # (endpoint, sealed) -> signing key or credentials (store/queue.py)
        self._signing_key_cache: dict[tuple[str, str], Any] = {}

    async def _write_batch(self, items: list[tuple[Row, bool]]) -> list[Any]:
        written = await self.backend.write_messages(items)
        if written.queued:
            self._notify_work()
        return written.outcomes

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # ---- secrets ---------------------------------------------------------------------

    def _seal(self, secret: str, endpoint_id: str) -> str:
        if self._box is None:
            raise SecretKeyError("no secret key configured: endpoint secrets cannot be written")
        return self._box.seal(secret, endpoint_id)

    def _unseal(self, stored: str, endpoint_id: str) -> str:
        if self._box is None:
            raise SecretKeyError("no secret key configured: endpoint secrets cannot be read")
        return self._box.open(stored, endpoint_id)

    # ---- waking workers --------------------------------------------------------------

    def _notify_work(self) -> None:
        """Wake this process's worker (after a commit that queued work)."""
        self.work_queued.set()

    async def _announce_work(self, conn: AsyncConnection) -> None:
        """Wake other processes' workers when ``conn``'s transaction commits."""
        await self.backend.announce_work(conn)

    async def listen_for_work(self) -> None:
        """Until cancelled, set ``work_queued`` whenever another process queues work."""
        await self.backend.listen_for_work(self.work_queued)

    # ---- lookups ---------------------------------------------------------------------

    async def _get_app(self, conn: AsyncConnection, id_or_uid: str) -> Row:
        if id_or_uid == OPERATIONAL_APP_ID:
            raise NotFound(f"application {id_or_uid!r} not found")  # internal, not an app
        by = _APP_BY_ID if ids.has_prefix(id_or_uid, ids.APPLICATION) else _APP_BY_UID
        row = (await conn.execute(by, {"ref": id_or_uid})).first()
        if row is None:
            raise NotFound(f"application {id_or_uid!r} not found")
        return dict(row._mapping)

    async def _get_endpoint(self, conn: AsyncConnection, app_id: str, id_or_uid: str) -> Row:
        c = t.endpoints.c
        key = c.id if ids.has_prefix(id_or_uid, ids.ENDPOINT) else c.uid
        stmt = sa.select(t.endpoints).where(c.app_id == app_id, key == id_or_uid)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"endpoint {id_or_uid!r} not found")
        return dict(row._mapping) | {"secret": self._unseal(row.secret, row.id)}

    async def _get_message(
        self, conn: AsyncConnection, app_id: str, msg_id: str, *, lock: bool = False
    ) -> Row:
        """The message (by id or eventId). ``lock``: FOR KEY SHARE until commit, as a
        foreign key's check would, for a transaction about to give it a new delivery:
        retention's batch locks the messages it removes FOR UPDATE, so the two wait for
        each other and the new delivery is never left without its message (nothing
        references ``messages`` on PostgreSQL, whose partitions are dropped whole)."""
        c = t.messages.c
        if ids.has_prefix(msg_id, ids.MESSAGE):
            where = sa.and_(c.app_id == app_id, c.id == msg_id)
        else:  # Svix lets a message be addressed by its eventId too.
            where = self.backend.event_id_is(app_id, msg_id)
        stmt = sa.select(t.messages).where(where)
        if lock:
            stmt = stmt.with_for_update(read=True, key_share=True, of=t.messages)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound(f"message {msg_id!r} not found")
        return dict(row._mapping)

    async def _message_by_event_id(
        self, conn: AsyncConnection, app_id: str, event_id: str
    ) -> Row | None:
        stmt = sa.select(t.messages).where(self.backend.event_id_is(app_id, event_id))
        row = (await conn.execute(stmt)).first()
        return dict(row._mapping) if row else None

    # ---- writes with a unique column -------------------------------------------------

    async def _insert(self, conn: AsyncConnection, table: sa.Table, row: Row, unique: str) -> None:
        try:
            async with conn.begin_nested():
                await conn.execute(table.insert().values(**row))
        except IntegrityError:
            raise Conflict(f"{unique} {row.get(unique)!r} is already in use") from None

    async def _update(
        self, conn: AsyncConnection, stmt: sa.Update, values: Row, unique: str
    ) -> None:
        try:
            async with conn.begin_nested():
                await conn.execute(stmt.values(**values))
        except IntegrityError:
            raise Conflict(f"{unique} {values.get(unique)!r} is already in use") from None
