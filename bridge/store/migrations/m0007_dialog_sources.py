"""Migration 7: validators of each post's comment source (``DialogSourceStore``).

Released: never edit; add the next number.
"""

from bridge.store.migrations import Migration

MIGRATION = Migration(
    7,
    "dialog sources",
    """
    CREATE TABLE dialog_sources (
        blog_id INTEGER NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
        entry_id TEXT NOT NULL,
        url TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        checked_at TEXT NOT NULL,
        PRIMARY KEY (blog_id, entry_id)
    );
    """,
    """
    CREATE TABLE dialog_sources (
        blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
        entry_id TEXT COLLATE "C" NOT NULL,
        url TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        checked_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (blog_id, entry_id)
    );
    """,
)
