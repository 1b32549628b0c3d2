"""SQLite queries for what sinks returned (``SinkItemStore``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime

from bridge.errors import StoreError
from bridge.store.roles_sinks import SinkItem, SinkItemKind, SinkItemState, SinkItemUpdate
from bridge.store.sqlite.connection import SQLiteBase, dt_required, ts


class SinkItemRows(SQLiteBase):
    """SQLite queries for sink items."""

    async def get_sink_item(
        self, blog_id: int, kind: SinkItemKind, item_id: str, sink: str
    ) -> SinkItem | None:
        """The record of one item in one sink."""
        row = await self._row(
            "SELECT * FROM sink_items WHERE blog_id = ? AND kind = ? AND item_id = ? AND sink = ?",
            (blog_id, kind, item_id, sink),
        )
        return _item(row) if row else None

    async def put_sink_item(self, update: SinkItemUpdate, now: datetime) -> SinkItem:
        """Insert or update the record of a push's outcome."""
        u = update
        live = None if u.live is None else int(u.live)
        try:
            rows = await self._locked_upsert(
                "INSERT INTO sink_items (blog_id, kind, item_id, sink, remote_id, state, live, "
                "last_error, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, COALESCE(?, 0), "
                "?, ?, ?) ON CONFLICT (blog_id, kind, item_id, sink) DO UPDATE SET "
                "remote_id = COALESCE(excluded.remote_id, sink_items.remote_id), "
                "state = excluded.state, live = COALESCE(?, sink_items.live), "
                "last_error = excluded.last_error, updated_at = excluded.updated_at "
                "RETURNING *",
                (
                    u.blog_id,
                    u.kind,
                    u.item_id,
                    u.sink,
                    u.remote_id,
                    u.state,
                    live,
                    u.error,
                    ts(now),
                    ts(now),
                    live,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot record sink item of blog {u.blog_id}: {exc}") from exc
        return _item(rows[0])

    async def _locked_upsert(self, sql: str, params: tuple[object, ...]) -> list[sqlite3.Row]:
        async with self.transaction():
            return await self._rows(sql, params)

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
        marks = ", ".join("?" * len(wanted))
        where = f"state IN ({marks})"
        params: list[object] = list(wanted)
        if blog_id is not None:
            where += " AND blog_id = ?"
            params.append(blog_id)
        rows = await self._rows(
            f"SELECT * FROM sink_items WHERE {where} "
            "ORDER BY updated_at DESC, item_id DESC LIMIT ?",
            (*params, limit),
        )
        return [_item(row) for row in rows]

    async def count_sink_items_since(
        self, blog_id: int, kind: SinkItemKind, since: datetime
    ) -> int:
        """Records of a blog's items of ``kind`` written at or after ``since``."""
        row = await self._row(
            "SELECT COUNT(*) AS n FROM sink_items "
            "WHERE blog_id = ? AND kind = ? AND updated_at >= ?",
            (blog_id, kind, ts(since)),
        )
        return int(row["n"]) if row else 0


def _item(row: sqlite3.Row) -> SinkItem:
    return SinkItem(
        blog_id=row["blog_id"],
        kind=row["kind"],
        item_id=row["item_id"],
        sink=row["sink"],
        remote_id=row["remote_id"],
        state=row["state"],
        live=bool(row["live"]),
        last_error=row["last_error"],
        created_at=dt_required(row["created_at"]),
        updated_at=dt_required(row["updated_at"]),
    )
