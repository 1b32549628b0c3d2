"""The store seam: typed records and small role Protocols.

Callers depend on a role (``BlogStore``, ``EntryStore`` ...), never on a backend. Every backend
implements all roles in one class (:class:`Store`) and passes ``tests/contract``.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from bridge.config import DEFAULT_NOTE_TEMPLATE, ObjectType
from bridge.entries import FeedEntry, FeedMeta

FeedStatus = Literal["new", "ok", "failing", "gone"]
ActivityType = Literal["Create", "Update", "Delete"]
WebSubStatus = Literal["pending", "active", "failed", "unsubscribed"]


@dataclass(frozen=True)
class BlogSettings:
    """Per-blog options (from the config file or the CLI)."""

    object_type: ObjectType = "Article"
    note_template: str = DEFAULT_NOTE_TEMPLATE
    manually_approves_followers: bool = False
    display_name: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class FeedState:
    """Where polling of one blog's feed stands; shown by ``feedfed blogs show``."""

    status: FeedStatus = "new"
    etag: str | None = None
    last_modified: str | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    next_poll_at: datetime | None = None
    poll_interval: int = 0
    failures: int = 0
    last_error: str | None = None
    first_poll_done: bool = False


@dataclass(frozen=True)
class NewBlog:
    """A blog about to be added."""

    handle: str
    feed_url: str
    settings: BlogSettings = field(default_factory=BlogSettings)
    from_config: bool = False


@dataclass(frozen=True)
class Blog:
    """A configured blog, what its feed says about it, and its polling state."""

    id: int
    handle: str
    feed_url: str
    settings: BlogSettings
    from_config: bool
    created_at: datetime
    meta: FeedMeta
    feed: FeedState


@dataclass(frozen=True)
class StoredEntry:
    """An entry as kept by the store, with its bookkeeping."""

    blog_id: int
    slug: str
    entry: FeedEntry
    content_hash: str
    first_seen_at: datetime
    changed_at: datetime
    in_feed: bool
    deleted_at: datetime | None = None

    @property
    def entry_id(self) -> str:
        """The entry's stable id."""
        return self.entry.id

    @property
    def sort_time(self) -> datetime:
        """When the post counts as published (the feed's date, else when first seen)."""
        return self.entry.published or self.first_seen_at


@dataclass(frozen=True)
class NewActivity:
    """An outgoing activity to record (and, in time, deliver)."""

    blog_id: int
    activity_id: str
    type: ActivityType
    entry_id: str
    payload: dict[str, Any]
    deliver: bool


@dataclass(frozen=True)
class OutboxActivity:
    """A recorded outgoing activity; ``seq`` orders them per store."""

    seq: int
    blog_id: int
    activity_id: str
    type: ActivityType
    entry_id: str
    payload: dict[str, Any]
    deliver: bool
    created_at: datetime


@dataclass(frozen=True)
class KeyPair:
    """An actor's RSA key pair, PEM encoded (private key PKCS#8, public key SPKI)."""

    owner: str
    private_pem: str
    public_pem: str
    created_at: datetime


@dataclass(frozen=True)
class Follower:
    """A remote actor following a blog."""

    blog_id: int
    actor_id: str
    inbox: str
    shared_inbox: str | None
    state: Literal["pending", "accepted"]
    created_at: datetime


@dataclass(frozen=True)
class WebSubSubscription:
    """One blog's subscription at its feed's WebSub hub."""

    blog_id: int
    hub_url: str
    topic_url: str
    secret: str
    status: WebSubStatus
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


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
        """Insert an entry or replace its content (marking it live and in the feed)."""
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


class FollowerStore(Protocol):
    """Remote followers (filled by the follows handling)."""

    async def count_followers(self, blog_id: int) -> int:
        """Accepted followers of a blog."""
        ...

    async def list_followers(self, blog_id: int, limit: int, offset: int = 0) -> list[Follower]:
        """Accepted followers, oldest first."""
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


class Store(BlogStore, EntryStore, OutboxStore, KeyStore, FollowerStore, WebSubStore, Protocol):
    """A whole backend: every role plus lifecycle and transactions."""

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied."""
        ...

    async def pending_migrations(self) -> list[int]:
        """Versions not yet applied."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Run the calls inside the block atomically (nested use joins the outer one)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
