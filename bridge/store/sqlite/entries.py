"""SQLite queries for entries and the outbox activities recorded from them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import cast

from bridge.entries import FeedEntry
from bridge.errors import StoreError
from bridge.store.records import Blog, EntryRef, NewActivity, OutboxActivity, StoredEntry
from bridge.store.sqlite.blogs import blog_from_row
from bridge.store.sqlite.connection import SQLiteBase, dt, dt_required, ts


class EntryRows(SQLiteBase):
    """SQLite queries for entries and the outbox activities recorded from them."""

    # -- entries ------------------------------------------------------------------------

    async def get_entries(self, blog_id: int, entry_ids: Collection[str]) -> dict[str, StoredEntry]:
        """Stored entries among ``entry_ids``, keyed by entry id."""
        found: dict[str, StoredEntry] = {}
        ids = list(entry_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._rows(
                f"SELECT * FROM entries WHERE blog_id = ? AND entry_id IN ({marks})",
                (blog_id, *chunk),
            )
            for row in rows:
                found[row["entry_id"]] = _entry(row)
        return found

    async def entries_in_feed(self, blog_id: int) -> list[StoredEntry]:
        """Live entries present in the feed at the last successful poll."""
        rows = await self._rows(
            "SELECT * FROM entries WHERE blog_id = ? AND in_feed = 1 AND deleted_at IS NULL",
            (blog_id,),
        )
        return [_entry(row) for row in rows]

    async def save_entry(
        self, blog_id: int, entry: FeedEntry, slug: str, now: datetime
    ) -> StoredEntry:
        """Insert an entry or replace its content, marking it live and in the feed.

        ``slug`` replaces the stored one: callers pass the stored slug for an edit and a new
        one only for an entry that comes back after its deletion (a new object id)."""
        sort_time = ts(entry.published or now)
        async with self.transaction():
            await self._write(
                "INSERT INTO entries (blog_id, entry_id, slug, data, content_hash, sort_time, "
                "first_seen_at, changed_at, in_feed, deleted_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, NULL) "
                "ON CONFLICT (blog_id, entry_id) DO UPDATE SET data = excluded.data, "
                "content_hash = excluded.content_hash, "
                # Re-saving unchanged content is not an edit: ``updated`` must not move.
                "changed_at = CASE WHEN entries.content_hash = excluded.content_hash "
                "AND entries.deleted_at IS NULL THEN entries.changed_at "
                "ELSE excluded.changed_at END, "
                "sort_time = CASE WHEN ? IS NULL THEN entries.sort_time "
                "ELSE excluded.sort_time END, in_feed = 1, deleted_at = NULL, "
                "slug = excluded.slug",
                (
                    blog_id,
                    entry.id,
                    slug,
                    json.dumps(entry.to_json(), ensure_ascii=False),
                    entry.content_hash(),
                    sort_time,
                    ts(now),
                    ts(now),
                    ts(entry.published),
                ),
            )
            row = await self._row(
                "SELECT * FROM entries WHERE blog_id = ? AND entry_id = ?", (blog_id, entry.id)
            )
        assert row is not None
        return _entry(row)

    async def set_in_feed(self, blog_id: int, entry_ids: Collection[str], in_feed: bool) -> None:
        """Mark whether these entries are still listed in the feed."""
        async with self.transaction():
            for entry_id in entry_ids:
                await self._write(
                    "UPDATE entries SET in_feed = ? WHERE blog_id = ? AND entry_id = ?",
                    (in_feed, blog_id, entry_id),
                )

    async def mark_entry_deleted(self, blog_id: int, entry_id: str, now: datetime) -> None:
        """Record that the publisher deleted this entry."""
        await self._write(
            "UPDATE entries SET deleted_at = ?, in_feed = 0, changed_at = ? "
            "WHERE blog_id = ? AND entry_id = ?",
            (ts(now), ts(now), blog_id, entry_id),
        )

    async def get_entry_by_slug(self, blog_id: int, slug: str) -> StoredEntry | None:
        """The entry with this slug, deleted ones included."""
        row = await self._row(
            "SELECT * FROM entries WHERE blog_id = ? AND slug = ?", (blog_id, slug)
        )
        return _entry(row) if row else None

    async def entry_by_article(self, handle: str, slug: str) -> tuple[Blog, EntryRef] | None:
        """The blog with ``handle`` and its entry with ``slug`` (without its content), in one
        query."""
        # The blog's columns and three of the entry's, whose names the blogs table lacks.
        row = await self._row(
            "SELECT b.*, e.entry_id, e.slug, e.deleted_at "
            "FROM blogs AS b JOIN entries AS e ON e.blog_id = b.id "
            "WHERE b.handle = ? AND e.slug = ?",
            (handle, slug),
        )
        if row is None:
            return None
        blog = blog_from_row(row)
        return blog, EntryRef(blog.id, row["entry_id"], row["slug"], dt(row["deleted_at"]))

    async def list_entries(self, blog_id: int, limit: int, offset: int = 0) -> list[StoredEntry]:
        """Live entries, newest first."""
        rows = await self._rows(
            "SELECT * FROM entries WHERE blog_id = ? AND deleted_at IS NULL "
            "ORDER BY sort_time DESC, entry_id LIMIT ? OFFSET ?",
            (blog_id, limit, offset),
        )
        return [_entry(row) for row in rows]

    async def count_entries(self, blog_id: int) -> int:
        """Number of live entries."""
        row = await self._row(
            "SELECT COUNT(*) AS n FROM entries WHERE blog_id = ? AND deleted_at IS NULL",
            (blog_id,),
        )
        return int(row["n"]) if row else 0

    # -- outbox -------------------------------------------------------------------------

    async def add_activity(self, activity: NewActivity, now: datetime) -> OutboxActivity:
        """Record an activity."""
        async with self.transaction():
            try:
                cursor = await self._write(
                    "INSERT INTO outbox (blog_id, activity_id, type, entry_id, payload, deliver, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        activity.blog_id,
                        activity.activity_id,
                        activity.type,
                        activity.entry_id,
                        json.dumps(activity.payload, ensure_ascii=False),
                        activity.deliver,
                        ts(now),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"activity {activity.activity_id} already recorded") from exc
            seq = cast(int, cursor.lastrowid)
        return OutboxActivity(seq=seq, created_at=now, **asdict(activity))

    async def get_activity(self, activity_id: str) -> OutboxActivity | None:
        """The activity with this id, if any."""
        row = await self._row("SELECT * FROM outbox WHERE activity_id = ?", (activity_id,))
        return _activity(row) if row else None

    async def list_activities(
        self, blog_id: int, limit: int, after_seq: int = 0
    ) -> list[OutboxActivity]:
        """Activities of a blog in recording order."""
        rows = await self._rows(
            "SELECT * FROM outbox WHERE blog_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (blog_id, after_seq, limit),
        )
        return [_activity(row) for row in rows]


def _entry(row: sqlite3.Row) -> StoredEntry:
    return StoredEntry(
        blog_id=row["blog_id"],
        slug=row["slug"],
        entry=FeedEntry.from_json(json.loads(row["data"])),
        content_hash=row["content_hash"],
        first_seen_at=dt_required(row["first_seen_at"]),
        changed_at=dt_required(row["changed_at"]),
        in_feed=bool(row["in_feed"]),
        deleted_at=dt(row["deleted_at"]),
    )


def _activity(row: sqlite3.Row) -> OutboxActivity:
    return OutboxActivity(
        seq=row["seq"],
        blog_id=row["blog_id"],
        activity_id=row["activity_id"],
        type=row["type"],
        entry_id=row["entry_id"],
        payload=json.loads(row["payload"]),
        deliver=bool(row["deliver"]),
        created_at=dt_required(row["created_at"]),
    )
