"""The sink seam: what every way into a blog can do, and what it is handed.

A sink publishes comments and linkbacks into the blog and, where it can, edits and withdraws
them. It declares what it can do (:class:`Capabilities`) and fails in one of two ways, both from
:mod:`bridge.errors`: ``RetryLater`` (the blog is down, rate limited, answered 5xx: the push job
retries on the delivery schedule) or ``Rejected`` (the blog refused for good: no retry).
What a sink returns (:class:`SinkResult`) is stored, so a retried push never posts twice and
edits and withdrawals reach the same item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

LinkbackKind = Literal["boost", "mention", "like"]


@dataclass(frozen=True)
class Capabilities:
    """What a sink can do with the blog it writes to."""

    comments: bool
    threading: bool
    update: bool
    delete: bool
    linkbacks: bool


@dataclass(frozen=True)
class SinkComment:
    """A comment to publish.

    ``post_url`` is the blog post's URL (the entry link) and ``post_guid`` the entry's stable
    id (a WordPress guid such as ``?p=1234`` names the post id); ``parent_remote_id`` is the sink's
    id of the comment this one answers (None: a top-level comment); ``page_url`` is the bridge's
    page of the comment; ``object_id`` the fediverse Note's id (marks the origin, so the bridge
    never re-imports its own comments).
    """

    object_id: str
    post_url: str
    post_guid: str
    author_name: str
    author_url: str
    content_html: str
    published: datetime
    page_url: str
    author_avatar: str | None = None
    parent_remote_id: str | None = None
    updated: datetime | None = None


@dataclass(frozen=True)
class SinkLinkback:
    """A boost, mention or like to make visible as a pingback or webmention.

    ``source_url`` is the bridge's linkback page (which names ``target_url`` early and answers
    200 directly); ``target_url`` the blog post; ``title`` e.g. "Jens Nirschl boosted „…“".
    """

    kind: LinkbackKind
    activity_id: str
    source_url: str
    target_url: str
    title: str
    actor_name: str
    actor_url: str
    published: datetime


@dataclass(frozen=True)
class SinkResult:
    """What the blog returned: its id of the item (a comment id, a webmention status URL),
    or None where it gives none (a pingback)."""

    remote_id: str | None = None
    note: str | None = None


class Sink(Protocol):
    """One way into one blog."""

    @property
    def name(self) -> str:
        """``wordpress``, ``pingback``, ``webmention`` or ``feed``."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What this sink can do."""
        ...

    async def publish_comment(self, comment: SinkComment) -> SinkResult:
        """Create the comment in the blog."""
        ...

    async def update_comment(self, remote_id: str, comment: SinkComment) -> SinkResult:
        """Replace the text of a comment published before."""
        ...

    async def withdraw_comment(self, remote_id: str) -> None:
        """Remove (trash) a comment published before."""
        ...

    async def send_linkback(self, linkback: SinkLinkback) -> SinkResult:
        """Tell the blog that ``source_url`` links ``target_url``."""
        ...

    async def withdraw_linkback(self, linkback: SinkLinkback, remote_id: str | None) -> None:
        """Tell the blog the linkback is gone (its source now answers 410), where it can."""
        ...
