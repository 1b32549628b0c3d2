"""Numbered schema migrations.

Each migration runs once, in order, inside a transaction, and is recorded in
``schema_migrations``. Never edit a released migration: add the next number.
Timestamps are ISO 8601 UTC text with microseconds, so they sort as text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    sqlite: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "blogs, entries, outbox, keys, followers, websub",
        """
        CREATE TABLE blogs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            handle TEXT NOT NULL UNIQUE,
            feed_url TEXT NOT NULL,
            configured_feed_url TEXT NOT NULL,
            settings TEXT NOT NULL,
            from_config INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'new',
            etag TEXT,
            last_modified TEXT,
            last_polled_at TEXT,
            last_success_at TEXT,
            next_poll_at TEXT,
            poll_interval INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            first_poll_done INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX blogs_next_poll ON blogs (next_poll_at);

        CREATE TABLE entries (
            blog_id INTEGER NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
            entry_id TEXT NOT NULL,
            slug TEXT NOT NULL,
            data TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            sort_time TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            in_feed INTEGER NOT NULL DEFAULT 1,
            deleted_at TEXT,
            PRIMARY KEY (blog_id, entry_id)
        );
        CREATE UNIQUE INDEX entries_slug ON entries (blog_id, slug);
        CREATE INDEX entries_by_time ON entries (blog_id, sort_time DESC);

        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            blog_id INTEGER NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
            activity_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            deliver INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX outbox_by_blog ON outbox (blog_id, seq);

        CREATE TABLE keys (
            owner TEXT PRIMARY KEY,
            private_pem TEXT NOT NULL,
            public_pem TEXT NOT NULL,
            created_at TEXT NOT NULL
        );

        CREATE TABLE followers (
            blog_id INTEGER NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
            actor_id TEXT NOT NULL,
            inbox TEXT NOT NULL,
            shared_inbox TEXT,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (blog_id, actor_id)
        );

        CREATE TABLE websub (
            blog_id INTEGER PRIMARY KEY REFERENCES blogs (id) ON DELETE CASCADE,
            hub_url TEXT NOT NULL,
            topic_url TEXT NOT NULL,
            secret TEXT NOT NULL,
            status TEXT NOT NULL,
            lease_expires_at TEXT,
            last_error TEXT,
            updated_at TEXT
        );
        """,
    ),
    Migration(
        2,
        "follows, jobs, hosts, remote cache, inbound activities, domain blocks",
        """
        ALTER TABLE followers ADD COLUMN follow_id TEXT;
        ALTER TABLE followers ADD COLUMN actor_host TEXT NOT NULL DEFAULT '';
        CREATE INDEX followers_by_actor ON followers (actor_id);
        CREATE INDEX followers_by_inbox ON followers (inbox);
        CREATE INDEX followers_by_host ON followers (blog_id, actor_host);

        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            dedupe_key TEXT UNIQUE,
            host TEXT,
            state TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            run_at TEXT NOT NULL,
            lease_until TEXT,
            claimed_by TEXT,
            last_status INTEGER,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX jobs_due ON jobs (state, run_at);
        CREATE INDEX jobs_by_kind ON jobs (kind, state);

        CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            failures INTEGER NOT NULL DEFAULT 0,
            first_failure_at TEXT,
            last_failure_at TEXT,
            last_success_at TEXT,
            unavailable INTEGER NOT NULL DEFAULT 0,
            signature_scheme TEXT
        );

        CREATE TABLE remote_keys (
            key_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            public_pem TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        );
        CREATE INDEX remote_keys_by_owner ON remote_keys (owner);

        CREATE TABLE remote_actors (
            id TEXT PRIMARY KEY,
            inbox TEXT NOT NULL,
            shared_inbox TEXT,
            key_id TEXT,
            document TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            preferred_username TEXT,
            name TEXT,
            url TEXT,
            also_known_as TEXT NOT NULL DEFAULT '[]',
            moved_to TEXT
        );

        CREATE TABLE inbound (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            origin TEXT NOT NULL,
            activity_id TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT NOT NULL,
            blog_id INTEGER REFERENCES blogs (id) ON DELETE SET NULL,
            state TEXT NOT NULL DEFAULT 'received',
            error TEXT,
            received_at TEXT NOT NULL,
            UNIQUE (origin, activity_id)
        );

        CREATE TABLE domain_blocks (
            domain TEXT PRIMARY KEY,
            reason TEXT,
            created_at TEXT NOT NULL
        );
        """,
    ),
)
