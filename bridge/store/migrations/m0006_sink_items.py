"""Migration 6: what each sink returned for each comment and linkback (``SinkItemStore``).

Released: never edit; add the next number.
"""

from bridge.store.migrations import Migration

MIGRATION = Migration(
    6,
    "sink items",
    """
    CREATE TABLE sink_items (
        blog_id INTEGER NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('comment', 'linkback')),
        item_id TEXT NOT NULL,
        sink TEXT NOT NULL,
        remote_id TEXT,
        state TEXT NOT NULL CHECK (state IN ('published', 'updated', 'withdrawn', 'failed')),
        live INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (blog_id, kind, item_id, sink)
    );
    CREATE INDEX sink_items_by_state ON sink_items (state, updated_at);
    CREATE INDEX sink_items_recent ON sink_items (blog_id, kind, updated_at);
    """,
    """
    CREATE TABLE sink_items (
        blog_id BIGINT NOT NULL REFERENCES blogs (id) ON DELETE CASCADE,
        kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('comment', 'linkback')),
        item_id TEXT COLLATE "C" NOT NULL,
        sink TEXT COLLATE "C" NOT NULL,
        remote_id TEXT,
        state TEXT COLLATE "C" NOT NULL
            CHECK (state IN ('published', 'updated', 'withdrawn', 'failed')),
        live BOOLEAN NOT NULL DEFAULT FALSE,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (blog_id, kind, item_id, sink)
    );
    CREATE INDEX sink_items_by_state ON sink_items (state, updated_at);
    CREATE INDEX sink_items_recent ON sink_items (blog_id, kind, updated_at);
    """,
)
