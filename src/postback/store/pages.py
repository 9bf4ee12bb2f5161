"""Keyset pagination in Svix's envelope: ``data``, ``iterator``, ``prevIterator``, ``done``.

An iterator is the key of the last row shown; a previous-page iterator is the key of the
first row shown with a leading ``-``. Keys are ids (time-sortable) or names, so a page
never skips or repeats a row when rows are added between two calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

MAX_LIMIT = 250


@dataclass(frozen=True)
class Page:
    limit: int = 50
    iterator: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class PageOut:
    rows: list[dict[str, Any]]
    iterator: str | None
    prev_iterator: str | None
    done: bool


def paged(stmt: sa.Select[Any], key: sa.ColumnElement[Any], page: Page) -> sa.Select[Any]:
    """Add the cursor condition, order and limit (one extra row tells whether more exist)."""
    cursor = page.iterator or None
    backwards = bool(cursor and cursor.startswith("-"))
    if cursor and backwards:
        cursor = cursor[1:]
    descending = page.descending != backwards
    if cursor:
        stmt = stmt.where(key < cursor if descending else key > cursor)
    return stmt.order_by(key.desc() if descending else key.asc()).limit(page.limit + 1)


def page_out(rows: Sequence[Any], key_name: str, page: Page) -> PageOut:
    backwards = bool(page.iterator and page.iterator.startswith("-"))
    items = [dict(r._mapping) if hasattr(r, "_mapping") else dict(r) for r in rows]
    more = len(items) > page.limit
    items = items[: page.limit]
    if backwards:
        items.reverse()
        # Coming back from a later page: there is always something after this one.
        return PageOut(
            rows=items,
            iterator=str(items[-1][key_name]) if items else page.iterator[1:],  # type: ignore[index]
            prev_iterator=f"-{items[0][key_name]}" if items and more else None,
            done=False,
        )
    return PageOut(
        rows=items,
        iterator=str(items[-1][key_name]) if items else page.iterator,
        prev_iterator=f"-{items[0][key_name]}" if items else None,
        done=not more,
    )
