"""Store roles of the backfeed: comments (replies) and reactions (likes, boosts, mentions).

A comment is a reply in one post's thread: from the fediverse (a remote Note, sanitised and
moderated) or, later, from the blog itself. A reaction is a like, a boost or a mention of a post;
boosts and mentions become linkbacks. Withdrawn reactions and deleted comments are kept with
their time of withdrawal, so their pages can answer 410 and sinks can take them back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from bridge.store.records import BlockSeverity

CommentState = Literal["published", "held", "duplicate", "spam", "rejected", "deleted"]
CommentOrigin = Literal["fediverse", "blog"]
ReactionKind = Literal["like", "boost", "mention"]

__all__ = [
    "ActorBlock",
    "ActorBlockStore",
    "AuthorStanding",
    "BlockSeverity",
    "Comment",
    "CommentOrigin",
    "CommentState",
    "CommentStore",
    "NewComment",
    "NewReaction",
    "Person",
    "Reaction",
    "ReactionKind",
    "ReactionStore",
    "comment_as_added",
    "item_slug",
]


def item_slug(object_id: str) -> str:
    """The stable path segment of a comment's or reaction's page (derived from its id)."""
    return hashlib.sha256(object_id.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Person:
    """Who wrote a comment or reacted: plain-text name, ``@user@host`` handle, links."""

    actor_id: str
    name: str
    handle: str
    profile_url: str
    avatar_url: str | None = None


@dataclass(frozen=True)
class NewComment:
    """A comment about to be stored.

    ``parent_id`` is what it answers: the post's object id, or another comment's object id.
    ``source`` is the Note as received (kept for re-rendering and for the sinks).
    ``text_hash`` identifies the text as moderation compares it (see
    :meth:`CommentStore.author_standing`); None when the writer did not compute one.
    """

    blog_id: int
    entry_id: str
    object_id: str
    parent_id: str | None
    author: Person
    content_html: str
    published: datetime
    state: CommentState
    summary: str | None = None
    url: str | None = None
    language: str | None = None
    score: float = 0.0
    reasons: tuple[str, ...] = ()
    origin: CommentOrigin = "fediverse"
    source: dict[str, Any] = field(default_factory=dict)
    text_hash: str | None = None


@dataclass(frozen=True)
class AuthorStanding:
    """What moderation asks the store about a new comment's author and its server, answered
    in one query."""

    blocked: bool
    """The actor is blocked (its domain's rule is :attr:`domain_severity`)."""
    published_before: bool
    """The actor has a published comment on the blog."""
    recent_count: int
    """How many of the actor's comments (any state, every blog) arrived since
    ``recent_since``: counted in the store, so a prolific author costs no more than a new one."""
    duplicate: bool
    """A live comment of the actor on the same post, received within the window, has the
    same ``text_hash``."""
    unhashed: tuple[str, ...]
    """The HTML of the actor's live comments on the post within the window that were stored
    without a hash (before migration 5, or by a writer that computed none): the caller
    compares those texts itself."""
    domain_severity: BlockSeverity | None
    """The most specific domain rule (``BlockStore``) for the author's host, if any."""
    origin_known: bool
    """An activity from the author's server was received before the given time."""


@dataclass(frozen=True)
class Comment:
    """A stored comment."""

    id: int
    slug: str
    blog_id: int
    entry_id: str
    object_id: str
    parent_id: str | None
    author: Person
    content_html: str
    published: datetime
    state: CommentState
    summary: str | None
    url: str | None
    language: str | None
    score: float
    reasons: tuple[str, ...]
    origin: CommentOrigin
    source: dict[str, Any]
    received_at: datetime
    updated: datetime | None = None
    deleted_at: datetime | None = None
    text_hash: str | None = None


def comment_as_added(new: NewComment, comment_id: int, slug: str, received_at: datetime) -> Comment:
    """The comment the store holds right after adding ``new`` as ``comment_id`` with
    ``slug`` (what a backend reads back, built without reading it: times in UTC as the
    store answers them)."""
    return Comment(
        id=comment_id,
        slug=slug,
        blog_id=new.blog_id,
        entry_id=new.entry_id,
        object_id=new.object_id,
        parent_id=new.parent_id,
        author=new.author,
        content_html=new.content_html,
        published=new.published.astimezone(UTC),
        state=new.state,
        summary=new.summary,
        url=new.url,
        language=new.language,
        score=float(new.score),
        reasons=tuple(new.reasons),
        origin=new.origin,
        source=new.source,
        received_at=received_at.astimezone(UTC),
        text_hash=new.text_hash,
    )


@dataclass(frozen=True)
class NewReaction:
    """A like, boost or mention about to be stored.

    ``activity_id`` is the Like/Announce id, or the mentioning Note's id; ``content_html``
    is the mention's sanitised text or an emoji reaction's emoji.
    """

    blog_id: int
    entry_id: str
    kind: ReactionKind
    activity_id: str
    actor: Person
    published: datetime
    content_html: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reaction:
    """A stored reaction."""

    id: int
    slug: str
    blog_id: int
    entry_id: str
    kind: ReactionKind
    activity_id: str
    actor: Person
    published: datetime
    content_html: str | None
    url: str | None
    received_at: datetime
    withdrawn_at: datetime | None = None


@dataclass(frozen=True)
class ActorBlock:
    """A blocked remote actor."""

    actor_id: str
    reason: str | None
    created_at: datetime


class CommentStore(Protocol):
    """Comments in posts' threads."""

    async def add_comment(self, comment: NewComment, now: datetime) -> Comment | None:
        """Store a comment (its slug is :func:`item_slug` of its object id, ``received_at`` is
        ``now``); None when its object id is known already, in any state."""
        ...

    async def get_comment(self, object_id: str) -> Comment | None:
        """The comment with this object id (any state)."""
        ...

    async def comment_exists(self, object_id: str) -> bool:
        """Whether a comment with this object id is stored (any state, deleted ones too)."""
        ...

    async def get_comment_by_slug(self, blog_id: int, slug: str) -> Comment | None:
        """The comment whose page ends in ``slug``."""
        ...

    async def edit_comment(
        self,
        object_id: str,
        content_html: str,
        summary: str | None,
        updated: datetime,
        source: dict[str, Any],
        text_hash: str | None = None,
    ) -> Comment | None:
        """Replace a comment's text (an ``Update``) and its ``text_hash``; None when unknown
        or deleted.

        An edit dated no later than the last one applied changes nothing (Updates can arrive
        out of order): the comment comes back as stored, its ``updated`` unlike the one given.
        """
        ...

    async def set_comment_state(
        self, object_id: str, state: CommentState, reasons: tuple[str, ...] | None = None
    ) -> Comment | None:
        """Moderate: approve, hold, reject ...; ``reasons`` None keeps the old ones.

        None when unknown or deleted (a deleted comment stays deleted). ``"deleted"`` is not a
        state to set here: :meth:`delete_comment` records when (``ValueError``).
        """
        ...

    async def delete_comment(self, object_id: str, now: datetime) -> Comment | None:
        """Mark a comment deleted: state ``"deleted"``, ``deleted_at`` now (its page answers
        410); None when unknown or deleted already."""
        ...

    async def delete_comments_by_author(self, actor_id: str, now: datetime) -> list[Comment]:
        """Mark every live (not yet deleted) comment of an actor deleted, on every blog;
        return them, oldest first."""
        ...

    async def list_comments(
        self,
        blog_id: int,
        *,
        entry_id: str | None = None,
        states: Iterable[CommentState] = ("published",),
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Comment]:
        """Comments of a blog (or of one post) in the given states, by published time
        (newest or oldest first; equal times in the order received)."""
        ...

    async def count_comments(
        self,
        blog_id: int,
        *,
        entry_id: str | None = None,
        states: Iterable[CommentState] = ("published",),
    ) -> int:
        """How many comments a blog (or one post) has in the given states."""
        ...

    async def comments_by_author_since(self, actor_id: str, since: datetime) -> list[Comment]:
        """An actor's comments received at or after ``since`` (rate limits, duplicates), any
        state, on every blog, in the order received."""
        ...

    async def author_has_published(self, blog_id: int, actor_id: str) -> bool:
        """Whether the actor has a published comment on this blog (a known commenter)."""
        ...

    async def author_standing(
        self,
        actor_id: str,
        blog_id: int,
        entry_id: str,
        text_hash: str | None,
        recent_since: datetime,
        similar_from: datetime,
        similar_until: datetime,
        *,
        host: str,
        origin: str,
        origin_before: datetime,
    ) -> AuthorStanding:
        """The actor's standing for moderating a new comment on ``entry_id`` of ``blog_id``,
        in one round trip: blocked, published before, how many of its comments arrived since
        ``recent_since``, and whether a live comment on the same post received between
        ``similar_from`` and ``similar_until`` (inclusive) has ``text_hash`` (never, when
        ``text_hash`` is None), with the texts of those stored unhashed; and of its server:
        the domain rule for ``host`` (as ``BlockStore.domain_block_severity``) and whether
        an activity from ``origin`` arrived before ``origin_before`` (as
        ``InboundStore.origin_seen_before``)."""
        ...


class ReactionStore(Protocol):
    """Likes, boosts and mentions of posts."""

    async def add_reaction(self, reaction: NewReaction, now: datetime) -> Reaction | None:
        """Store a reaction; None when its activity id is known, or when the same actor's
        like or boost of the same post is already live (a like counts once)."""
        ...

    async def get_reaction(self, activity_id: str) -> Reaction | None:
        """The reaction with this activity id (withdrawn ones included)."""
        ...

    async def get_reaction_by_slug(self, blog_id: int, slug: str) -> Reaction | None:
        """The reaction whose page ends in ``slug``."""
        ...

    async def withdraw_reaction(
        self, activity_id: str, actor_id: str, now: datetime
    ) -> Reaction | None:
        """Withdraw the actor's own reaction (an ``Undo``); None when unknown, not theirs,
        or withdrawn already."""
        ...

    async def withdraw_reactions_by_actor(self, actor_id: str, now: datetime) -> list[Reaction]:
        """Withdraw every live reaction of an actor, on every blog; return them, oldest
        first."""
        ...

    async def list_reactions(
        self,
        blog_id: int,
        entry_id: str,
        kind: ReactionKind,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Reaction]:
        """Live reactions of one kind to one post, oldest (by published time) first."""
        ...

    async def count_reactions(self, blog_id: int, entry_id: str, kind: ReactionKind) -> int:
        """How many live reactions of one kind a post has."""
        ...


class ActorBlockStore(Protocol):
    """Remote actors the operator blocked (domain blocks are in ``BlockStore``)."""

    async def block_actor(self, actor_id: str, reason: str | None, now: datetime) -> None:
        """Block an actor (blocking again replaces the reason, keeps the time)."""
        ...

    async def unblock_actor(self, actor_id: str) -> bool:
        """Lift a block; True when there was one."""
        ...

    async def list_actor_blocks(self) -> list[ActorBlock]:
        """All blocked actors, by actor id."""
        ...

    async def is_actor_blocked(self, actor_id: str) -> bool:
        """Whether the actor is blocked."""
        ...
