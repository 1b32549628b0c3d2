"""SQLite backend (the embedded default): one connection in WAL mode, serialised by a lock.

One process owns the database; calls from concurrent tasks queue on an asyncio lock, and a
``transaction()`` block holds that lock so its calls commit (or roll back) together.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bridge.entries import FeedEntry, FeedMeta
from bridge.errors import BlogExists, BlogNotFound, StoreError
from bridge.store.base import (
    Blog,
    BlogSettings,
    FeedState,
    Follower,
    KeyPair,
    NewActivity,
    NewBlog,
    OutboxActivity,
    StoredEntry,
    WebSubSubscription,
)
from bridge.store.schema import MIGRATIONS


def ts(value: datetime | None) -> str | None:
    """A datetime as sortable UTC text."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    """Parse what :func:`ts` wrote."""
    return datetime.fromisoformat(value) if value else None


def _dt_required(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SQLiteStore:
    """Every store role on one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"sqlite_tx_{id(self)}", default=False)

    @classmethod
    async def open(cls, path: str) -> SQLiteStore:
        """Open (creating the file if needed) with WAL and foreign keys on."""
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        try:
            db = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.execute("PRAGMA synchronous=NORMAL")
        store._db = db
        return store

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Hold the connection for the block and commit it as one transaction."""
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            else:
                await self.db.execute("COMMIT")
            finally:
                self._in_tx.reset(token)

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        async with self.transaction():
            return await self.db.execute(sql, tuple(params))

    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        if self._in_tx.get():
            return list(await self.db.execute_fetchall(sql, tuple(params)))
        async with self._lock:
            return list(await self.db.execute_fetchall(sql, tuple(params)))

    async def _row(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    # -- migrations ---------------------------------------------------------------------

    async def _applied(self) -> set[int]:
        await self._write(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        return {row["version"] for row in await self._rows("SELECT version FROM schema_migrations")}

    async def pending_migrations(self) -> list[int]:
        """Versions not yet applied."""
        applied = await self._applied()
        return [m.version for m in MIGRATIONS if m.version not in applied]

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction."""
        applied = await self._applied()
        done: list[int] = []
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            async with self.transaction():
                for statement in _statements(migration.sqlite):
                    await self.db.execute(statement)
                await self.db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, ts(datetime.now(UTC))),
                )
            done.append(migration.version)
        return done

    # -- blogs --------------------------------------------------------------------------

    async def add_blog(self, new: NewBlog, now: datetime) -> Blog:
        """Insert a blog; raise ``BlogExists`` when the handle is taken."""
        async with self.transaction():
            if await self._row("SELECT 1 FROM blogs WHERE handle = ?", (new.handle,)):
                raise BlogExists(f"a blog with handle {new.handle!r} exists")
            cursor = await self.db.execute(
                "INSERT INTO blogs (handle, feed_url, configured_feed_url, settings, from_config, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    new.handle,
                    new.feed_url,
                    new.feed_url,
                    _settings_json(new.settings),
                    new.from_config,
                    ts(now),
                ),
            )
            blog_id = cursor.lastrowid
        blog = await self.get_blog_by_id(cast(int, blog_id))
        assert blog is not None
        return blog

    async def sync_config_blog(self, new: NewBlog, now: datetime) -> Blog:
        """Insert or update a blog declared in the config file."""
        async with self.transaction():
            existing = await self.get_blog(new.handle)
            if existing is None:
                return await self.add_blog(new, now)
            # A 301 may have moved the feed since: keep the moved URL unless the operator
            # changed the URL in the config file.
            await self.db.execute(
                "UPDATE blogs SET settings = ?, from_config = 1, "
                "feed_url = CASE WHEN configured_feed_url = ? THEN feed_url ELSE ? END, "
                "configured_feed_url = ? WHERE id = ?",
                (
                    _settings_json(new.settings),
                    new.feed_url,
                    new.feed_url,
                    new.feed_url,
                    existing.id,
                ),
            )
            blog = await self.get_blog_by_id(existing.id)
        assert blog is not None
        return blog

    async def get_blog(self, handle: str) -> Blog | None:
        """The blog with this handle, if any."""
        row = await self._row("SELECT * FROM blogs WHERE handle = ?", (handle,))
        return _blog(row) if row else None

    async def get_blog_by_id(self, blog_id: int) -> Blog | None:
        """The blog with this id, if any."""
        row = await self._row("SELECT * FROM blogs WHERE id = ?", (blog_id,))
        return _blog(row) if row else None

    async def list_blogs(self) -> list[Blog]:
        """All blogs, ordered by handle."""
        return [_blog(row) for row in await self._rows("SELECT * FROM blogs ORDER BY handle")]

    async def remove_blog(self, handle: str) -> None:
        """Delete a blog and everything it owns."""
        async with self.transaction():
            cursor = await self.db.execute("DELETE FROM blogs WHERE handle = ?", (handle,))
            if cursor.rowcount == 0:
                raise BlogNotFound(f"no blog with handle {handle!r}")
            await self.db.execute("DELETE FROM keys WHERE owner = ?", (handle,))

    async def update_blog_meta(self, blog_id: int, meta: FeedMeta) -> None:
        """Store what the feed says about the blog."""
        await self._write(
            "UPDATE blogs SET meta = ? WHERE id = ?", (json.dumps(meta.to_json()), blog_id)
        )

    async def update_feed_state(
        self, blog_id: int, state: FeedState, feed_url: str | None = None
    ) -> None:
        """Store the polling state; ``feed_url`` replaces the URL (after a 301)."""
        await self._write(
            "UPDATE blogs SET status = ?, etag = ?, last_modified = ?, last_polled_at = ?, "
            "last_success_at = ?, next_poll_at = ?, poll_interval = ?, failures = ?, "
            "last_error = ?, first_poll_done = ?, feed_url = COALESCE(?, feed_url) WHERE id = ?",
            (
                state.status,
                state.etag,
                state.last_modified,
                ts(state.last_polled_at),
                ts(state.last_success_at),
                ts(state.next_poll_at),
                state.poll_interval,
                state.failures,
                state.last_error,
                state.first_poll_done,
                feed_url,
                blog_id,
            ),
        )

    async def due_blogs(self, now: datetime, limit: int = 100) -> list[Blog]:
        """Blogs whose next poll is due, never-polled first; gone ones excluded."""
        rows = await self._rows(
            "SELECT * FROM blogs WHERE status != 'gone' AND "
            "(next_poll_at IS NULL OR next_poll_at <= ?) "
            "ORDER BY next_poll_at IS NOT NULL, next_poll_at LIMIT ?",
            (ts(now), limit),
        )
        return [_blog(row) for row in rows]

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
        """Insert an entry or replace its content, marking it live and in the feed."""
        sort_time = ts(entry.published or now)
        async with self.transaction():
            await self.db.execute(
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
                "ELSE excluded.sort_time END, in_feed = 1, deleted_at = NULL",
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
                await self.db.execute(
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
                cursor = await self.db.execute(
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

    # -- keys ---------------------------------------------------------------------------

    async def get_keypair(self, owner: str) -> KeyPair | None:
        """The key pair of ``owner``, if any."""
        row = await self._row("SELECT * FROM keys WHERE owner = ?", (owner,))
        if row is None:
            return None
        return KeyPair(
            owner=row["owner"],
            private_pem=row["private_pem"],
            public_pem=row["public_pem"],
            created_at=_dt_required(row["created_at"]),
        )

    async def put_keypair_if_absent(self, keypair: KeyPair) -> KeyPair:
        """Store a key pair unless the owner has one; return the stored one."""
        async with self.transaction():
            await self.db.execute(
                "INSERT INTO keys (owner, private_pem, public_pem, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (owner) DO NOTHING",
                (keypair.owner, keypair.private_pem, keypair.public_pem, ts(keypair.created_at)),
            )
            stored = await self.get_keypair(keypair.owner)
        assert stored is not None
        return stored

    # -- followers ----------------------------------------------------------------------

    async def count_followers(self, blog_id: int) -> int:
        """Accepted followers of a blog."""
        row = await self._row(
            "SELECT COUNT(*) AS n FROM followers WHERE blog_id = ? AND state = 'accepted'",
            (blog_id,),
        )
        return int(row["n"]) if row else 0

    async def list_followers(self, blog_id: int, limit: int, offset: int = 0) -> list[Follower]:
        """Accepted followers, oldest first."""
        rows = await self._rows(
            "SELECT * FROM followers WHERE blog_id = ? AND state = 'accepted' "
            "ORDER BY created_at, actor_id LIMIT ? OFFSET ?",
            (blog_id, limit, offset),
        )
        return [
            Follower(
                blog_id=row["blog_id"],
                actor_id=row["actor_id"],
                inbox=row["inbox"],
                shared_inbox=row["shared_inbox"],
                state=row["state"],
                created_at=_dt_required(row["created_at"]),
            )
            for row in rows
        ]

    # -- websub -------------------------------------------------------------------------

    async def get_websub(self, blog_id: int) -> WebSubSubscription | None:
        """The blog's subscription, if any."""
        row = await self._row("SELECT * FROM websub WHERE blog_id = ?", (blog_id,))
        return _websub(row) if row else None

    async def put_websub(self, subscription: WebSubSubscription) -> None:
        """Insert or replace the blog's subscription."""
        s = subscription
        await self._write(
            "INSERT OR REPLACE INTO websub (blog_id, hub_url, topic_url, secret, status, "
            "lease_expires_at, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.blog_id,
                s.hub_url,
                s.topic_url,
                s.secret,
                s.status,
                ts(s.lease_expires_at),
                s.last_error,
                ts(s.updated_at),
            ),
        )

    async def delete_websub(self, blog_id: int) -> None:
        """Forget the blog's subscription."""
        await self._write("DELETE FROM websub WHERE blog_id = ?", (blog_id,))

    async def websubs_expiring(self, before: datetime) -> list[WebSubSubscription]:
        """Active subscriptions whose lease ends before ``before``."""
        rows = await self._rows(
            "SELECT * FROM websub WHERE status = 'active' AND lease_expires_at < ?",
            (ts(before),),
        )
        return [_websub(row) for row in rows]


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _settings_json(settings: BlogSettings) -> str:
    return json.dumps(asdict(settings), ensure_ascii=False)


def _blog(row: sqlite3.Row) -> Blog:
    return Blog(
        id=row["id"],
        handle=row["handle"],
        feed_url=row["feed_url"],
        settings=BlogSettings(**json.loads(row["settings"])),
        from_config=bool(row["from_config"]),
        created_at=_dt_required(row["created_at"]),
        meta=FeedMeta.from_json(json.loads(row["meta"])),
        feed=FeedState(
            status=row["status"],
            etag=row["etag"],
            last_modified=row["last_modified"],
            last_polled_at=dt(row["last_polled_at"]),
            last_success_at=dt(row["last_success_at"]),
            next_poll_at=dt(row["next_poll_at"]),
            poll_interval=row["poll_interval"],
            failures=row["failures"],
            last_error=row["last_error"],
            first_poll_done=bool(row["first_poll_done"]),
        ),
    )


def _entry(row: sqlite3.Row) -> StoredEntry:
    return StoredEntry(
        blog_id=row["blog_id"],
        slug=row["slug"],
        entry=FeedEntry.from_json(json.loads(row["data"])),
        content_hash=row["content_hash"],
        first_seen_at=_dt_required(row["first_seen_at"]),
        changed_at=_dt_required(row["changed_at"]),
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
        created_at=_dt_required(row["created_at"]),
    )


def _websub(row: sqlite3.Row) -> WebSubSubscription:
    return WebSubSubscription(
        blog_id=row["blog_id"],
        hub_url=row["hub_url"],
        topic_url=row["topic_url"],
        secret=row["secret"],
        status=row["status"],
        lease_expires_at=dt(row["lease_expires_at"]),
        last_error=row["last_error"],
        updated_at=dt(row["updated_at"]),
    )
