"""Every table of a store as the db copy sees it, for moving a bridge between backends.

:data:`TABLES` lists each table in dependency order with all its columns and the ones whose
values differ in kind between the backends (SQLite keeps times as ISO text, JSON as text and
booleans as integers; PostgreSQL has TIMESTAMPTZ, JSONB and BOOLEAN). The row adapters of
:mod:`bridge.store.table_rows` read and write rows by these descriptions. Used by
:mod:`bridge.store.copy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RowValues = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """One table as the copy sees it: every column, and those that need converting
    between SQLite's text and integers and PostgreSQL's own types."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    times: frozenset[str] = frozenset()
    jsons: frozenset[str] = frozenset()
    bools: frozenset[str] = frozenset()
    identity: str | None = None


def _table(
    name: str,
    key: str,
    columns: str,
    *,
    times: str = "",
    jsons: str = "",
    bools: str = "",
    identity: str | None = None,
) -> Table:
    return Table(
        name,
        tuple(key.split()),
        tuple(columns.split()),
        frozenset(times.split()),
        frozenset(jsons.split()),
        frozenset(bools.split()),
        identity,
    )


# Parents before children, so foreign keys hold after every batch.
TABLES: tuple[Table, ...] = (
    _table(
        "blogs",
        "id",
        "id handle feed_url configured_feed_url settings from_config created_at meta status "
        "etag last_modified last_polled_at last_success_at next_poll_at poll_interval failures "
        "last_error first_poll_done lease_until leased_by",
        times="created_at last_polled_at last_success_at next_poll_at lease_until",
        jsons="settings meta",
        bools="from_config first_poll_done",
        identity="id",
    ),
    _table(
        "entries",
        "blog_id entry_id",
        "blog_id entry_id slug data content_hash sort_time first_seen_at changed_at in_feed "
        "deleted_at",
        times="sort_time first_seen_at changed_at deleted_at",
        jsons="data",
        bools="in_feed",
    ),
    _table(
        "outbox",
        "seq",
        "seq blog_id activity_id type entry_id payload deliver created_at",
        times="created_at",
        jsons="payload",
        bools="deliver",
        identity="seq",
    ),
    _table("keys", "owner", "owner private_pem public_pem created_at", times="created_at"),
    _table(
        "followers",
        "blog_id actor_id",
        "blog_id actor_id inbox shared_inbox state created_at follow_id actor_host",
        times="created_at",
    ),
    _table(
        "websub",
        "blog_id",
        "blog_id hub_url topic_url secret status lease_expires_at last_error updated_at",
        times="lease_expires_at updated_at",
    ),
    _table(
        "jobs",
        "id",
        "id kind payload dedupe_key host state attempts run_at lease_until claimed_by "
        "last_status last_error created_at updated_at",
        times="run_at lease_until created_at updated_at",
        jsons="payload",
        identity="id",
    ),
    _table(
        "hosts",
        "host",
        "host failures first_failure_at last_failure_at last_success_at unavailable "
        "signature_scheme",
        times="first_failure_at last_failure_at last_success_at",
        bools="unavailable",
    ),
    _table("remote_keys", "key_id", "key_id owner public_pem fetched_at", times="fetched_at"),
    _table(
        "remote_actors",
        "id",
        "id inbox shared_inbox key_id document fetched_at preferred_username name url "
        "also_known_as moved_to",
        times="fetched_at",
        jsons="document also_known_as",
    ),
    _table(
        "inbound",
        "id",
        "id origin activity_id actor_id type payload blog_id state error received_at",
        times="received_at",
        jsons="payload",
        identity="id",
    ),
    _table("domain_blocks", "domain", "domain reason created_at severity", times="created_at"),
    _table(
        "comments",
        "id",
        "id slug blog_id entry_id object_id parent_id author_id author_name author_handle "
        "author_url author_avatar content_html summary url language published state score "
        "reasons origin source received_at updated deleted_at text_hash",
        times="published received_at updated deleted_at",
        jsons="reasons source",
        identity="id",
    ),
    _table(
        "reactions",
        "id",
        "id slug blog_id entry_id kind activity_id actor_id actor_name actor_handle actor_url "
        "actor_avatar content_html url published received_at withdrawn_at",
        times="published received_at withdrawn_at",
        identity="id",
    ),
    _table("actor_blocks", "actor_id", "actor_id reason created_at", times="created_at"),
    _table(
        "sink_items",
        "blog_id kind item_id sink",
        "blog_id kind item_id sink remote_id state live last_error created_at updated_at",
        times="created_at updated_at",
        bools="live",
    ),
    _table(
        "dialog_sources",
        "blog_id entry_id",
        "blog_id entry_id url etag last_modified checked_at",
        times="checked_at",
    ),
)

# Bookkeeping each store keeps for itself: never copied.
OWN_TABLES = frozenset({"schema_migrations"})
