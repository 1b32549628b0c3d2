"""SQLite queries for the validators of comment sources (``DialogSourceStore``)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from bridge.errors import StoreError
from bridge.store.roles_dialog import DialogSource
from bridge.store.sqlite.connection import SQLiteBase, dt_required, ts


class DialogSourceRows(SQLiteBase):
    """SQLite queries for dialog sources."""

    async def get_dialog_source(self, blog_id: int, entry_id: str) -> DialogSource | None:
        """The record of one post's comment source."""
        row = await self._row(
            "SELECT * FROM dialog_sources WHERE blog_id = ? AND entry_id = ?",
            (blog_id, entry_id),
        )
        return _source(row) if row else None

    async def put_dialog_source(
        self,
        blog_id: int,
        entry_id: str,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        now: datetime,
    ) -> DialogSource:
        """Insert or replace the validators of one post's comment source."""
        try:
            async with self.transaction():
                rows = await self._rows(
                    "INSERT INTO dialog_sources (blog_id, entry_id, url, etag, last_modified, "
                    "checked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (blog_id, entry_id) "
                    "DO UPDATE SET url = excluded.url, etag = excluded.etag, "
                    "last_modified = excluded.last_modified, checked_at = excluded.checked_at "
                    "RETURNING *",
                    (blog_id, entry_id, url, etag, last_modified, ts(now)),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot record the comment source of blog {blog_id}: {exc}") from exc
        return _source(rows[0])


def _source(row: sqlite3.Row) -> DialogSource:
    return DialogSource(
        blog_id=row["blog_id"],
        entry_id=row["entry_id"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        checked_at=dt_required(row["checked_at"]),
    )
