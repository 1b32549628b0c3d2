"""Migration 5: a hash of each comment's normalised text, so moderation finds an author's
duplicates and counts their recent comments by index instead of reading their comments.

``text_hash`` stays NULL for comments stored before this migration (SQL cannot normalise
text as the moderation does); those are compared by their text
(see ``CommentStore.author_standing``).

Released: never edit; add the next number.
"""

from bridge.store.migrations import Migration

MIGRATION = Migration(
    5,
    "comment text hash",
    """
    ALTER TABLE comments ADD COLUMN text_hash TEXT;
    CREATE INDEX comments_by_text ON comments (author_id, entry_id, text_hash, received_at);
    """,
    """
    ALTER TABLE comments ADD COLUMN text_hash TEXT COLLATE "C";
    CREATE INDEX comments_by_text ON comments (author_id, entry_id, text_hash, received_at);
    """,
)
