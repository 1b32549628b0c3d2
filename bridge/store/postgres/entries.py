"""PostgreSQL queries for entries and the outbox activities recorded from them."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bridge.entries import FeedEntry
from bridge.errors import StoreError
from bridge.store.postgres.blogs import blog_from_row
from bridge.store.postgres.connection import PostgresBase, Row, ts
from bridge.store.records import Blog, EntryRef, NewActivity, OutboxActivity, StoredEntry


class EntryRows(PostgresBase):
    """PostgreSQL queries for entries and the outbox activities recorded from them."""

    # -- entries ------------------------------------------------------------------------

    async def get_entries(self, blog_id: int, entry_ids: Collection[str]) -> dict[str, StoredEntry]:
        """Stored entries among ``entry_ids``, keyed by entry id."""
        if not entry_ids:
            return {}
        rows = await self._rows(
            "SELECT * FROM entries WHERE blog_id = $1 AND entry_id = ANY($2::text[])",
            blog_id,
            list(entry_ids),
        )
        return {row["entry_id"]: _entry(row) for row in rows}

    async def entries_in_feed(self, blog_id: int) -> list[StoredEntry]:
        """Live entries present in the feed at the last successful poll."""
        rows = await self._rows(
            "SELECT * FROM entries WHERE blog_id = $1 AND in_feed AND deleted_at IS NULL",
            blog_id,
        )
        return [_entry(row) for row in rows]

    async def save_entry(
        self, blog_id: int, entry: FeedEntry, slug: str, now: datetime
    ) -> StoredEntry:
        """Insert an entry or replace its content, marking it live and in the feed.

        ``slug`` replaces the stored one: callers pass the stored slug for an edit and a new
        one only for an entry that comes back after its deletion (a new object id)."""
        row = await self._row(
            "INSERT INTO entries (blog_id, entry_id, slug, data, content_hash, sort_time, "
            "first_seen_at, changed_at, in_feed, deleted_at) "
            "VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, $7::timestamptz), $7, $7, "
            "TRUE, NULL) "
            "ON CONFLICT (blog_id, entry_id) DO UPDATE SET data = EXCLUDED.data, "
            "content_hash = EXCLUDED.content_hash, "
            # Re-saving unchanged content is not an edit: ``updated`` must not move.
            "changed_at = CASE WHEN entries.content_hash = EXCLUDED.content_hash "
            "AND entries.deleted_at IS NULL THEN entries.changed_at "
            "ELSE EXCLUDED.changed_at END, "
            # Without a date in the feed the entry keeps its place in the timeline.
            "sort_time = CASE WHEN $6::timestamptz IS NULL THEN entries.sort_time "
            "ELSE EXCLUDED.sort_time END, in_feed = TRUE, deleted_at = NULL, "
            "slug = EXCLUDED.slug "
            "RETURNING *",
            blog_id,
            entry.id,
            slug,
            entry.to_json(),
            entry.content_hash(),
            ts(entry.published),
            ts(now),
        )
        if row is None:
            raise StoreError(f"upsert of entry {entry.id!r} returned nothing")
        return _entry(row)

    async def set_in_feed(self, blog_id: int, entry_ids: Collection[str], in_feed: bool) -> None:
        """Mark whether these entries are still listed in the feed."""
        if not entry_ids:
            return
        await self._execute(
            "UPDATE entries SET in_feed = $1 WHERE blog_id = $2 AND entry_id = ANY($3::text[])",
            in_feed,
            blog_id,
            list(entry_ids),
        )

    async def mark_entry_deleted(self, blog_id: int, entry_id: str, now: datetime) -> None:
        """Record that the publisher deleted this entry."""
        await self._execute(
            "UPDATE entries SET deleted_at = $1, in_feed = FALSE, changed_at = $1 "
            "WHERE blog_id = $2 AND entry_id = $3",
            ts(now),
            blog_id,
            entry_id,
        )

    async def get_entry_by_slug(self, blog_id: int, slug: str) -> StoredEntry | None:
        """The entry with this slug, deleted ones included."""
        row = await self._row(
            "SELECT * FROM entries WHERE blog_id = $1 AND slug = $2", blog_id, slug
        )
        return _entry(row) if row else None

    async def entry_by_article(self, handle: str, slug: str) -> tuple[Blog, EntryRef] | None:
        """The blog with ``handle`` and its entry with ``slug`` (without its content), in one
        query."""
        # The blog's columns and three of the entry's, whose names the blogs table lacks.
        row = await self._row(
            "SELECT b.*, e.entry_id, e.slug, e.deleted_at "
            "FROM blogs AS b JOIN entries AS e ON e.blog_id = b.id "
            "WHERE b.handle = $1 AND e.slug = $2",
            handle,
            slug,
        )
        if row is None:
            return None
        blog = blog_from_row(row)
        return blog, EntryRef(blog.id, row["entry_id"], row["slug"], row["deleted_at"])

    async def list_entries(self, blog_id: int, limit: int, offset: int = 0) -> list[StoredEntry]:
        """Live entries, newest first."""
        rows = await self._rows(
            "SELECT * FROM entries WHERE blog_id = $1 AND deleted_at IS NULL "
            "ORDER BY sort_time DESC, entry_id LIMIT $2 OFFSET $3",
            blog_id,
            limit,
            offset,
        )
        return [_entry(row) for row in rows]

    async def count_entries(self, blog_id: int) -> int:
        """Number of live entries."""
        count = await self._value(
            "SELECT COUNT(*) FROM entries WHERE blog_id = $1 AND deleted_at IS NULL", blog_id
        )
        return int(count)

    # -- outbox -------------------------------------------------------------------------

    async def add_activity(self, activity: NewActivity, now: datetime) -> OutboxActivity:
        """Record an activity; its id must be new."""
        # ON CONFLICT instead of catching the unique violation: a failed statement would
        # abort the caller's whole transaction on PostgreSQL.
        row = await self._row(
            "INSERT INTO outbox (blog_id, activity_id, type, entry_id, payload, deliver, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (activity_id) DO NOTHING RETURNING *",
            activity.blog_id,
            activity.activity_id,
            activity.type,
            activity.entry_id,
            activity.payload,
            activity.deliver,
            ts(now),
        )
        if row is None:
            raise StoreError(f"activity {activity.activity_id} already recorded")
        return _activity(row)

    async def get_activity(self, activity_id: str) -> OutboxActivity | None:
        """The activity with this id, if any."""
        row = await self._row("SELECT * FROM outbox WHERE activity_id = $1", activity_id)
        return _activity(row) if row else None

    async def list_activities(
        self, blog_id: int, limit: int, after_seq: int = 0
    ) -> list[OutboxActivity]:
        """Activities of a blog in recording order."""
        rows = await self._rows(
            "SELECT * FROM outbox WHERE blog_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            blog_id,
            after_seq,
            limit,
        )
        return [_activity(row) for row in rows]


def _entry(row: Row) -> StoredEntry:
    return StoredEntry(
        blog_id=row["blog_id"],
        slug=row["slug"],
        entry=FeedEntry.from_json(row["data"]),
        content_hash=row["content_hash"],
        first_seen_at=row["first_seen_at"],
        changed_at=row["changed_at"],
        in_feed=row["in_feed"],
        deleted_at=row["deleted_at"],
    )


def _activity(row: Row) -> OutboxActivity:
    return OutboxActivity(
        seq=row["seq"],
        blog_id=row["blog_id"],
        activity_id=row["activity_id"],
        type=row["type"],
        entry_id=row["entry_id"],
        payload=row["payload"],
        deliver=row["deliver"],
        created_at=row["created_at"],
    )
