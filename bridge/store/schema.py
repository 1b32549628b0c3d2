"""The ordered list of schema migrations (their SQL lives in :mod:`bridge.store.migrations`)."""

from __future__ import annotations

from bridge.store.migrations import (
    Migration,
    m0001_feeds,
    m0002_federation,
    m0003_backfeed,
    m0004_poll_leases,
    m0005_comment_text_hash,
    m0006_sink_items,
    m0007_dialog_sources,
)

MIGRATIONS: tuple[Migration, ...] = (
    m0001_feeds.MIGRATION,
    m0002_federation.MIGRATION,
    m0003_backfeed.MIGRATION,
    m0004_poll_leases.MIGRATION,
    m0005_comment_text_hash.MIGRATION,
    m0006_sink_items.MIGRATION,
    m0007_dialog_sources.MIGRATION,
)

__all__ = ["MIGRATIONS", "Migration"]
