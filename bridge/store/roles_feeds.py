"""Store roles of the feed side: blogs, entries, the outbox, our keys, WebSub."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

from bridge.entries import FeedEntry, FeedMeta
from bridge.store.records import (
    Blog,
    EntryRef,
    FeedState,
    KeyPair,
    NewActivity,
    NewBlog,
    OutboxActivity,
    StoredEntry,
    WebSubSubscription,
)


class BlogStore(Protocol):
    """Blogs, their feed metadata and polling state."""

    async def add_blog(self, new: NewBlog, now: datetime) -> Blog:
        """Insert a blog; raise ``BlogExists`` when the handle is taken."""
        ...

    async def sync_config_blog(self, new: NewBlog, now: datetime) -> Blog:
        """Insert or update a blog declared in the config file (settings and feed URL)."""
        ...

    async def get_blog(self, handle: str) -> Blog | None:
        """The blog with this handle, if any."""
        ...

    async def get_blog_by_id(self, blog_id: int) -> Blog | None:
        """The blog with this id, if any."""
        ...

    async def list_blogs(self) -> list[Blog]:
        """All blogs, ordered by handle."""
        ...

    async def remove_blog(self, handle: str) -> None:
        """Delete a blog and everything it owns; raise ``BlogNotFound`` if absent."""
        ...

    async def update_blog_meta(self, blog_id: int, meta: FeedMeta) -> None:
        """Store what the feed says about the blog."""
        ...

    async def update_feed_state(
        self, blog_id: int, state: FeedState, feed_url: str | None = None
    ) -> None:
        """Store the polling state; ``feed_url`` replaces the URL (after a 301)."""
        ...

    async def due_blogs(self, now: datetime, limit: int = 100) -> list[Blog]:
        """Blogs whose next poll is due (never polled counts as due), gone ones excluded."""
        ...

    async def claim_due_blogs(
        self, now: datetime, limit: int, lease_seconds: float, worker: str
    ) -> list[Blog]:
        """Lease up to ``limit`` due blogs to ``worker`` for ``lease_seconds`` and return them.

        Due as in :meth:`due_blogs`, and not leased (or leased until ``now`` or earlier: its
        poller died). Concurrent claims, from this or other processes, never return the same
        blog while its lease runs; never-polled blogs come first, then the longest overdue.
        """
        ...

    async def release_blog_lease(self, blog_id: int, worker: str) -> bool:
        """End ``worker``'s lease on the blog; False when it held none (lost or never had)."""
        ...


class EntryStore(Protocol):
    """Entries read from feeds."""

    async def get_entries(self, blog_id: int, entry_ids: Collection[str]) -> dict[str, StoredEntry]:
        """Stored entries among ``entry_ids``, deleted ones included, keyed by entry id."""
        ...

    async def entries_in_feed(self, blog_id: int) -> list[StoredEntry]:
        """Live entries that were present in the feed at the last successful poll."""
        ...

    async def save_entry(
        self, blog_id: int, entry: FeedEntry, slug: str, now: datetime
    ) -> StoredEntry:
        """Insert an entry or replace its content (marking it live and in the feed); ``slug``
        replaces the stored one (a new one only for an entry back from its deletion)."""
        ...

    async def set_in_feed(self, blog_id: int, entry_ids: Collection[str], in_feed: bool) -> None:
        """Mark whether these entries are still listed in the feed."""
        ...

    async def mark_entry_deleted(self, blog_id: int, entry_id: str, now: datetime) -> None:
        """Record that the publisher deleted this entry."""
        ...

    async def get_entry_by_slug(self, blog_id: int, slug: str) -> StoredEntry | None:
        """The entry whose object URL ends in ``slug``, deleted ones included."""
        ...

    async def entry_by_article(self, handle: str, slug: str) -> tuple[Blog, EntryRef] | None:
        """The blog with ``handle`` and its entry whose object URL ends in ``slug`` (deleted
        ones included), in one query: what an article id names. None when either is
        missing. The entry's content is not read: a reply only hangs under it."""
        ...

    async def list_entries(self, blog_id: int, limit: int, offset: int = 0) -> list[StoredEntry]:
        """Live entries, newest first."""
        ...

    async def count_entries(self, blog_id: int) -> int:
        """Number of live entries."""
        ...


class OutboxStore(Protocol):
    """Outgoing activities."""

    async def add_activity(self, activity: NewActivity, now: datetime) -> OutboxActivity:
        """Record an activity; its id must be new."""
        ...

    async def get_activity(self, activity_id: str) -> OutboxActivity | None:
        """The activity with this id, if any."""
        ...

    async def list_activities(
        self, blog_id: int, limit: int, after_seq: int = 0
    ) -> list[OutboxActivity]:
        """Activities of a blog in recording order, after ``after_seq``."""
        ...


class KeyStore(Protocol):
    """Actors' key pairs."""

    async def get_keypair(self, owner: str) -> KeyPair | None:
        """The key pair of ``owner`` (a blog handle or ``"instance"``), if any."""
        ...

    async def put_keypair_if_absent(self, keypair: KeyPair) -> KeyPair:
        """Store a key pair unless the owner has one; return the one that is stored."""
        ...


class WebSubStore(Protocol):
    """WebSub subscriptions."""

    async def get_websub(self, blog_id: int) -> WebSubSubscription | None:
        """The blog's subscription, if any."""
        ...

    async def put_websub(self, subscription: WebSubSubscription) -> None:
        """Insert or replace the blog's subscription."""
        ...

    async def delete_websub(self, blog_id: int) -> None:
        """Forget the blog's subscription."""
        ...

    async def websubs_expiring(self, before: datetime) -> list[WebSubSubscription]:
        """Active subscriptions whose lease ends before ``before``."""
        ...
