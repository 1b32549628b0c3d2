"""PostgreSQL queries for what sinks returned (``SinkItemStore``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bridge.errors import StoreError
from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.roles_sinks import SinkItem, SinkItemKind, SinkItemState, SinkItemUpdate


class SinkItemRows(PostgresBase):
    """PostgreSQL queries for sink items."""

    async def get_sink_item(
        self, blog_id: int, kind: SinkItemKind, item_id: str, sink: str
    ) -> SinkItem | None:
        """The record of one item in one sink."""
        row = await self._row(
            "SELECT * FROM sink_items "
            "WHERE blog_id = $1 AND kind = $2 AND item_id = $3 AND sink = $4",
            blog_id,
            kind,
            item_id,
            sink,
        )
        return _item(row) if row else None

    async def put_sink_item(self, update: SinkItemUpdate, now: datetime) -> SinkItem:
        """Insert or update the record of a push's outcome (one statement: atomic)."""
        u = update
        row = await self._row(
            "INSERT INTO sink_items (blog_id, kind, item_id, sink, remote_id, state, live, "
            "last_error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
            "COALESCE($7::boolean, FALSE), $8, $9, $9) "
            "ON CONFLICT (blog_id, kind, item_id, sink) DO UPDATE SET "
            "remote_id = COALESCE(EXCLUDED.remote_id, sink_items.remote_id), "
            "state = EXCLUDED.state, live = COALESCE($7::boolean, sink_items.live), "
            "last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at "
            "RETURNING *",
            u.blog_id,
            u.kind,
            u.item_id,
            u.sink,
            u.remote_id,
            u.state,
            u.live,
            u.error,
            ts(now),
        )
        if row is None:
            raise StoreError(f"upsert of sink item {u.item_id!r} returned nothing")
        return _item(row)

    async def list_sink_items(
        self,
        blog_id: int | None = None,
        *,
        states: Iterable[SinkItemState] = ("failed",),
        limit: int = 100,
    ) -> list[SinkItem]:
        """Records in the given states, most recently updated first."""
        wanted = list(states)
        if not wanted:
            return []
        rows = await self._rows(
            "SELECT * FROM sink_items WHERE state = ANY($1::text[]) "
            "AND ($2::bigint IS NULL OR blog_id = $2) "
            "ORDER BY updated_at DESC, item_id DESC LIMIT $3",
            wanted,
            blog_id,
            limit,
        )
        return [_item(row) for row in rows]

    async def count_sink_items_since(
        self, blog_id: int, kind: SinkItemKind, since: datetime
    ) -> int:
        """Records of a blog's items of ``kind`` written at or after ``since``."""
        value = await self._value(
            "SELECT COUNT(*) FROM sink_items WHERE blog_id = $1 AND kind = $2 AND updated_at >= $3",
            blog_id,
            kind,
            ts(since),
        )
        return int(value)


def _item(row: Row) -> SinkItem:
    return SinkItem(
        blog_id=row["blog_id"],
        kind=row["kind"],
        item_id=row["item_id"],
        sink=row["sink"],
        remote_id=row["remote_id"],
        state=row["state"],
        live=bool(row["live"]),
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
