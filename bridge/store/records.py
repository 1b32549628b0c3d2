"""Typed records the store reads and writes (plain frozen dataclasses).

All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bridge.config import (
    DEFAULT_LINKBACKS_PER_MINUTE,
    DEFAULT_NOTE_TEMPLATE,
    ModerationMode,
    ObjectType,
    SinkName,
)
from bridge.entries import FeedEntry, FeedMeta

FeedStatus = Literal["new", "ok", "failing", "gone"]
ActivityType = Literal["Create", "Update", "Delete"]
WebSubStatus = Literal["pending", "active", "failed", "unsubscribed"]
FollowerState = Literal["pending", "accepted"]
JobState = Literal["queued", "running", "done", "dead"]
InboundState = Literal["received", "processed", "ignored", "failed"]
# "block" refuses everything from a domain; "limit" accepts it but holds its comments for review.
BlockSeverity = Literal["block", "limit"]


@dataclass(frozen=True)
class BlogSettings:
    """Per-blog options (from the config file or the CLI)."""

    object_type: ObjectType = "Article"
    note_template: str = DEFAULT_NOTE_TEMPLATE
    manually_approves_followers: bool = False
    display_name: str | None = None
    summary: str | None = None
    moderation: ModerationMode = "publish_all"
    """Which new comments wait for a moderator: none, first-time authors', or all."""
    sink: SinkName = "feed"
    """How comments and linkbacks reach the blog (``feed``: nothing is pushed)."""
    wordpress_url: str | None = None
    wordpress_user: str | None = None
    wordpress_password_env: str | None = None
    """Name of the environment variable with the WordPress application password."""
    likes_as_comments: bool = False
    linkbacks_per_minute: int = DEFAULT_LINKBACKS_PER_MINUTE


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

    @property
    def ref(self) -> EntryRef:
        """The entry named without its content."""
        return EntryRef(self.blog_id, self.entry_id, self.slug, self.deleted_at)


@dataclass(frozen=True)
class EntryRef:
    """An entry named by its ids alone, without its content: what a comment or reaction
    hangs under (reading it spares parsing the post's JSON)."""

    blog_id: int
    entry_id: str
    slug: str
    deleted_at: datetime | None = None


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
    """A remote actor following (or asking to follow) a blog.

    ``follow_id`` is the id of their ``Follow``, which our ``Accept``/``Reject`` must name.
    """

    blog_id: int
    actor_id: str
    inbox: str
    shared_inbox: str | None
    state: FollowerState
    created_at: datetime
    follow_id: str | None = None

    @property
    def delivery_inbox(self) -> str:
        """Where posts go: the shared inbox when the server offers one."""
        return self.shared_inbox or self.inbox


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


@dataclass(frozen=True)
class NewJob:
    """Background work to enqueue.

    ``dedupe_key`` makes enqueueing idempotent (a fan-out that is re-run after a crash enqueues
    nothing twice); ``host`` is the remote host the job talks to (per-host limits and
    availability); ``run_at`` None means now.
    """

    kind: str
    payload: dict[str, Any]
    dedupe_key: str | None = None
    host: str | None = None
    run_at: datetime | None = None


@dataclass(frozen=True)
class Job:
    """A durable job with its own history (attempts, next try, last status and error)."""

    id: int
    kind: str
    payload: dict[str, Any]
    dedupe_key: str | None
    host: str | None
    state: JobState
    attempts: int
    run_at: datetime
    lease_until: datetime | None
    claimed_by: str | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class JobCount:
    """Queue depth of one kind in one state, and its oldest due time."""

    kind: str
    state: JobState
    count: int
    oldest_run_at: datetime | None


@dataclass(frozen=True)
class HostStatus:
    """What we know of a remote host's health and habits."""

    host: str
    failures: int = 0
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    unavailable: bool = False
    signature_scheme: Literal["rfc9421", "cavage"] | None = None


@dataclass(frozen=True)
class RemoteKey:
    """A remote actor's public key, cached."""

    key_id: str
    owner: str
    public_pem: str
    fetched_at: datetime


@dataclass(frozen=True)
class RemoteActor:
    """A remote actor's document, cached, with the fields the bridge uses."""

    id: str
    inbox: str
    shared_inbox: str | None
    key_id: str | None
    document: dict[str, Any]
    fetched_at: datetime
    preferred_username: str | None = None
    name: str | None = None
    url: str | None = None
    also_known_as: tuple[str, ...] = ()
    moved_to: str | None = None


@dataclass(frozen=True)
class NewInbound:
    """A verified activity as received, before processing.

    Deduplication is keyed by ``origin`` (the signer's host) and ``activity_id``, so a forged
    id from another host can never suppress the genuine activity.
    """

    origin: str
    activity_id: str
    actor_id: str
    type: str
    payload: dict[str, Any]
    blog_id: int | None = None


@dataclass(frozen=True)
class InboundActivity:
    """A stored inbound activity and where its processing stands."""

    id: int
    origin: str
    activity_id: str
    actor_id: str
    type: str
    payload: dict[str, Any]
    blog_id: int | None
    state: InboundState
    error: str | None
    received_at: datetime


@dataclass(frozen=True)
class DomainBlock:
    """A blocked or limited remote domain (and its subdomains)."""

    domain: str
    reason: str | None
    created_at: datetime
    severity: BlockSeverity = "block"
