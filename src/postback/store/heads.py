"""Each ordered key's head (docs/architecture.md, "Ordered delivery"): the one delivery of
an ordered endpoint's key a claim may take, marked ``deliveries.head``. The general
SQLAlchemy paths' statements live here; the backends' hot paths (pg/, sqlite/) do the
same in their own SQL, row for row.

A key's head is its first unfinished delivery in (seq, id) order. It is marked when a
delivery is written to a key with nothing unfinished, and when the head finishes the
key's next delivery is marked, in the transaction that records the outcome. On
PostgreSQL a writer that finds a key busy holds its first unfinished row ``FOR SHARE``,
and a recorder marks the next head in a statement after the one that finished the head:
whichever commits second sees the other's row, so a key is never left without a head.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from postback.domain import MessageStatus
from postback.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
_d = t.deliveries.c
_UNFINISHED = (MessageStatus.PENDING, MessageStatus.SENDING)


def _first_of_key(ep: Any, key: Any) -> Any:
    """The first unfinished delivery of ``key`` (ix_deliveries_ordering: one descent)."""
    n = t.deliveries.alias("n")
    return (
        sa.select(n.c.id)
        .where(
            n.c.endpoint_id == ep,
            n.c.ordering_key == key,
            n.c.ordering_key.is_not(None),
            n.c.status.in_(_UNFINISHED),
        )
        .order_by(n.c.endpoint_id, n.c.ordering_key, n.c.seq, n.c.id)
        .limit(1)
    )


_f = t.deliveries.alias("f")
# The keys of the deliveries ``b_ids`` get their first unfinished delivery as head (a no-op
# for a key whose head is still unfinished).
PROMOTE = (
    t.deliveries.update()
    .where(
        _d.id.in_(
            sa.select(_first_of_key(_f.c.endpoint_id, _f.c.ordering_key).scalar_subquery())
            .where(
                _f.c.id.in_(sa.bindparam("b_ids", expanding=True)),
                _f.c.ordering_key.is_not(None),
            )
            .scalar_subquery()
        ),
        _d.head.is_(False),
    )
    .values(head=True)
)


async def promote(conn: AsyncConnection, delivery_ids: Sequence[str]) -> None:
    """After deliveries finished (in an earlier statement of this transaction): each of
    their keys' next delivery is its head."""
    if delivery_ids:
        await conn.execute(PROMOTE, {"b_ids": list(delivery_ids)})


async def seat_new(conn: AsyncConnection, rows: Iterable[Row]) -> None:
    """Before inserting ``rows`` (in seq order): each pending keyed one is its key's head
    when the key has nothing unfinished, in the database or before it among ``rows``."""
    busy: set[tuple[str, str]] = set()
    for row in rows:
        key = row.get("ordering_key")
        row["head"] = False
        if key is None or row["status"] != MessageStatus.PENDING:
            continue
        place = (row["endpoint_id"], key)
        if place not in busy:
            found = await conn.scalar(
                _first_of_key(place[0], key).with_for_update(read=True)  # see the module doc
            )
            row["head"] = found is None
            busy.add(place)


async def reseat(conn: AsyncConnection, ep_id: str, keys: Iterable[str] | None = None) -> None:
    """Mark the first unfinished delivery of each key (all of ``ep_id``'s, or ``keys``)
    its head, and no other: after deliveries joined keys at earlier places (recover,
    replay, ordering turned on). The key's unfinished rows are locked first, so a recorder
    finishing one of them commits before this reads them, or after this commits."""
    where = [_d.endpoint_id == ep_id, _d.ordering_key.is_not(None), _d.status.in_(_UNFINISHED)]
    if keys is not None:
        wanted = sorted(set(keys))
        if not wanted:
            return
        where.append(_d.ordering_key.in_(wanted))
    await conn.execute(sa.select(_d.id).where(*where).with_for_update())
    first = _first_of_key(_d.endpoint_id, _d.ordering_key).scalar_subquery()
    await conn.execute(t.deliveries.update().where(*where).values(head=_d.id == first))
