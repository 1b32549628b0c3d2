"""Pushing comments and linkbacks into the blog: the durable ``push`` job.

One job per (item, action): ``{"blog_id", "item": "comment" | "linkback", "id", "action":
"publish" | "update" | "withdraw"}``, ``id`` being the comment's object id or the reaction's
activity id. The handler reads the item from the store as it is *now*, builds a
:class:`~bridge.sinks.base.SinkComment` or :class:`~bridge.sinks.base.SinkLinkback`, calls the
blog's sink and records what the sink returned (``SinkItemStore``), so:

* nothing is posted twice: a publish of an item that is live on the blog does nothing;
* an update or a withdrawal of an item that never reached the blog is skipped, and one that
  did reaches the same remote item (its stored ``remote_id``);
* what the sink cannot do (its :class:`~bridge.sinks.base.Capabilities`) is skipped: a sink
  without comments gets comments as linkbacks from their pages (a ``mention``), a sink without
  threading gets top-level comments, one without ``update``/``delete`` keeps the old text;
* failures follow the job contract: the sink's ``RetryLater`` is retried on the delivery
  schedule, ``Rejected`` buries the job; both are recorded on the item (state ``failed``, the
  error) without changing whether it is live.

A reply is pushed after the comment it answers, so the blog can thread it: while the parent's
own push is pending, or failed for now and is retried, the reply's job waits (``RetryLater``);
a parent that failed for good or was withdrawn leaves the reply top-level, and so does a parent
still pending when the reply's own last attempt comes (a reply is never lost to waiting). A
reply to a comment written on the blog itself (read by the dialog) answers it by the blog's
own id.

Linkbacks only ever go to the blog's own hosts (those of its feed, its home page and its
WordPress address), never to a URL found in remote content; and at most
``linkbacks_per_minute`` of them a minute (per blog, so per blog host): a job over the limit
waits, with ``RetryLater`` naming when the window frees up. Push jobs carry the blog's host,
so the worker's per-host limit also caps how many talk to the blog at once.

Known limit: a crash after the blog accepted an item and before its result is stored sends
it again on retry (the WordPress sink marks comments with their object id in comment meta,
where such a duplicate can be recognised).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from bridge.context import BridgeContext
from bridge.errors import Rejected
from bridge.jobs import PUSH
from bridge.sinks.access import hosts_of
from bridge.sinks.base import Sink
from bridge.store.base import (
    Blog,
    Comment,
    NewJob,
    Reaction,
    SinkItemKind,
)

__all__ = [
    "PushAction",
    "PushRequest",
    "SinkFactory",
    "blog_hosts",
    "enqueue_push",
    "parse_push",
    "push_comment",
    "push_reaction",
    "push_withdrawals",
]

PushAction = Literal["publish", "update", "withdraw"]
SinkFactory = Callable[[BridgeContext, Blog], Sink]
"""Builds the sink a blog's settings name (``bridge.sinks.factory``)."""

_ITEMS: Final[dict[str, SinkItemKind]] = {"comment": "comment", "linkback": "linkback"}
_ACTIONS: Final[dict[str, PushAction]] = {
    "publish": "publish",
    "update": "update",
    "withdraw": "withdraw",
}


@dataclass(frozen=True)
class PushRequest:
    """A push job's payload, checked."""

    blog_id: int
    item: SinkItemKind
    id: str
    action: PushAction


def parse_push(payload: dict[str, Any]) -> PushRequest:
    """The payload of a ``push`` job; :class:`Rejected` when it is malformed."""
    blog_id, item_id = payload.get("blog_id"), payload.get("id")
    item = _ITEMS.get(str(payload.get("item")))
    action = _ACTIONS.get(str(payload.get("action")))
    if not isinstance(blog_id, int) or not isinstance(item_id, str) or not item_id:
        raise Rejected(f"malformed push payload: {str(payload)[:300]}")
    if item is None or action is None:
        raise Rejected(f"malformed push payload: {str(payload)[:300]}")
    return PushRequest(blog_id, item, item_id, action)


def blog_hosts(blog: Blog) -> frozenset[str]:
    """The hosts the blog's posts may live on: those of its feed, home page and WordPress."""
    s = blog.settings
    return hosts_of(blog.feed_url, blog.meta.home_url or "", s.wordpress_url or "")


def push_host(blog: Blog) -> str | None:
    """The host a blog's push jobs talk to (the worker's per-host limit applies to it)."""
    url = blog.settings.wordpress_url or blog.meta.home_url or blog.feed_url
    return (urlsplit(url).hostname or "").lower() or None


async def enqueue_push(
    ctx: BridgeContext,
    blog: Blog,
    item: SinkItemKind,
    item_id: str,
    action: PushAction,
    *,
    version: str | None = None,
) -> bool:
    """Queue a push of a comment or linkback; False when nothing was queued (the blog's sink
    is ``feed``, or the same push is queued already).

    The dedupe key names the blog, item, action and ``version``: a handler that runs twice
    (a retried inbound job) queues one push; callers pass a ``version`` where the same
    action may rightly happen again (the edit's time for an update, the moderation time for
    an approval after a rejection).
    """
    if blog.settings.sink == "feed":
        return False
    digest = hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:32]
    key = f"push:{blog.id}:{item}:{digest}:{action}"
    if version is not None:
        key += f":{version}"
    payload = {"blog_id": blog.id, "item": item, "id": item_id, "action": action}
    added = await ctx.store.enqueue(
        [NewJob(PUSH, payload, dedupe_key=key, host=push_host(blog))], ctx.clock()
    )
    if added:
        ctx.jobs_ready.set()
    return added > 0


async def push_comment(
    ctx: BridgeContext,
    comment: Comment,
    action: PushAction,
    *,
    version: str | None = None,
    blog: Blog | None = None,
) -> bool:
    """Queue a push of a comment to its blog; a publish only of a published comment.

    ``blog`` spares a lookup where the caller holds the comment's blog already."""
    if action == "publish" and comment.state != "published":
        return False
    if blog is None or blog.id != comment.blog_id:
        blog = await ctx.store.get_blog_by_id(comment.blog_id)
    if blog is None:
        return False
    return await enqueue_push(ctx, blog, "comment", comment.object_id, action, version=version)


async def push_reaction(ctx: BridgeContext, reaction: Reaction, action: PushAction) -> bool:
    """Queue a push of a boost, like or mention to its blog, as a linkback."""
    blog = await ctx.store.get_blog_by_id(reaction.blog_id)
    if blog is None:
        return False
    return await enqueue_push(ctx, blog, "linkback", reaction.activity_id, action)


async def push_withdrawals(
    ctx: BridgeContext, comments: Iterable[Comment], reactions: Iterable[Reaction]
) -> None:
    """Queue the withdrawal of everything an actor took back at once (a deleted account)."""
    for comment in comments:
        await push_comment(ctx, comment, "withdraw")
    for reaction in reactions:
        await push_reaction(ctx, reaction, "withdraw")
