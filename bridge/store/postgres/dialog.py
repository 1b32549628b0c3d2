"""PostgreSQL queries for the validators of comment sources (``DialogSourceStore``)."""

from __future__ import annotations

from datetime import datetime

from bridge.errors import StoreError
from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.roles_dialog import DialogSource


class DialogSourceRows(PostgresBase):
    """PostgreSQL queries for dialog sources."""

    async def get_dialog_source(self, blog_id: int, entry_id: str) -> DialogSource | None:
        """The record of one post's comment source."""
        row = await self._row(
            "SELECT * FROM dialog_sources WHERE blog_id = $1 AND entry_id = $2",
            blog_id,
            entry_id,
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
        """Insert or replace the validators of one post's comment source (one statement)."""
        row = await self._row(
            "INSERT INTO dialog_sources (blog_id, entry_id, url, etag, last_modified, "
            "checked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (blog_id, entry_id) "
            "DO UPDATE SET url = EXCLUDED.url, etag = EXCLUDED.etag, "
            "last_modified = EXCLUDED.last_modified, checked_at = EXCLUDED.checked_at "
            "RETURNING *",
            blog_id,
            entry_id,
            url,
            etag,
            last_modified,
            ts(now),
        )
        if row is None:
            raise StoreError(f"upsert of the comment source of {entry_id!r} returned nothing")
        return _source(row)


def _source(row: Row) -> DialogSource:
    return DialogSource(
        blog_id=row["blog_id"],
        entry_id=row["entry_id"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        checked_at=row["checked_at"],
    )
