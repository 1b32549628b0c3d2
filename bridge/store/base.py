"""The store seam: small role Protocols, composed into one :class:`Store` per backend.

Callers depend on a role (``BlogStore``, ``EntryStore`` ...), never on a backend. Every backend
implements all roles in one class (:class:`Store`) and passes ``tests/contract``. The roles
live beside this module by flow (``roles_feeds``, ``roles_federation``, ``roles_backfeed``,
``roles_sinks``);
the records they speak in are in :mod:`bridge.store.records`. All datetimes are aware UTC.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bridge.store.records import (
    ActivityType,
    BlockSeverity,
    Blog,
    BlogSettings,
    DomainBlock,
    EntryRef,
    FeedState,
    FeedStatus,
    Follower,
    FollowerState,
    HostStatus,
    InboundActivity,
    InboundState,
    Job,
    JobCount,
    JobState,
    KeyPair,
    NewActivity,
    NewBlog,
    NewInbound,
    NewJob,
    OutboxActivity,
    RemoteActor,
    RemoteKey,
    StoredEntry,
    WebSubStatus,
    WebSubSubscription,
)
from bridge.store.roles_backfeed import (
    ActorBlock,
    ActorBlockStore,
    Comment,
    CommentOrigin,
    CommentState,
    CommentStore,
    NewComment,
    NewReaction,
    Person,
    Reaction,
    ReactionKind,
    ReactionStore,
    item_slug,
)
from bridge.store.roles_dialog import DialogSource, DialogSourceStore
from bridge.store.roles_federation import (
    BlockStore,
    FollowerStore,
    HostStore,
    InboundStore,
    JobStore,
    RemoteCacheStore,
)
from bridge.store.roles_feeds import BlogStore, EntryStore, KeyStore, OutboxStore, WebSubStore
from bridge.store.roles_sinks import (
    SinkItem,
    SinkItemKind,
    SinkItemState,
    SinkItemStore,
    SinkItemUpdate,
)

__all__ = [
    "ActivityType",
    "ActorBlock",
    "ActorBlockStore",
    "BlockSeverity",
    "BlockStore",
    "Blog",
    "BlogSettings",
    "BlogStore",
    "Comment",
    "CommentOrigin",
    "CommentState",
    "CommentStore",
    "DialogSource",
    "DialogSourceStore",
    "DomainBlock",
    "EntryRef",
    "EntryStore",
    "FeedState",
    "FeedStatus",
    "Follower",
    "FollowerState",
    "FollowerStore",
    "HostStatus",
    "HostStore",
    "InboundActivity",
    "InboundState",
    "InboundStore",
    "Job",
    "JobCount",
    "JobState",
    "JobStore",
    "KeyPair",
    "KeyStore",
    "NewActivity",
    "NewBlog",
    "NewComment",
    "NewInbound",
    "NewJob",
    "NewReaction",
    "OutboxActivity",
    "OutboxStore",
    "Person",
    "Reaction",
    "ReactionKind",
    "ReactionStore",
    "RemoteActor",
    "RemoteCacheStore",
    "RemoteKey",
    "SinkItem",
    "SinkItemKind",
    "SinkItemState",
    "SinkItemStore",
    "SinkItemUpdate",
    "Store",
    "StoredEntry",
    "WebSubStatus",
    "WebSubStore",
    "WebSubSubscription",
    "item_slug",
]


class Store(
    BlogStore,
    EntryStore,
    OutboxStore,
    KeyStore,
    FollowerStore,
    WebSubStore,
    JobStore,
    HostStore,
    RemoteCacheStore,
    InboundStore,
    BlockStore,
    CommentStore,
    ReactionStore,
    ActorBlockStore,
    SinkItemStore,
    DialogSourceStore,
    Protocol,
):
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
