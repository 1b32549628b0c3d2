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
a parent that failed for good or was withdrawn leaves the reply top-level. A reply to a comment
written on the blog itself (read by the dialog) answers it by the blog's own id.

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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from bridge.activitypub.actors import safe_http_url
from bridge.backfeed.blog_comments import wordpress_comment_id
from bridge.backfeed.pages import item_title, person_view
from bridge.backfeed.sanitize import sanitize_html
from bridge.context import BridgeContext
from bridge.errors import Rejected, RetryLater
from bridge.federation.dialog_out import blog_comment_id
from bridge.jobs import PUSH, Handler
from bridge.sinks.access import hosts_of
from bridge.sinks.base import Sink, SinkComment, SinkLinkback, SinkResult
from bridge.store.base import (
    Blog,
    Comment,
    NewJob,
    Reaction,
    SinkItem,
    SinkItemKind,
    SinkItemState,
    SinkItemUpdate,
    StoredEntry,
)
from bridge.store.records import Job

__all__ = [
    "PARENT_WAIT",
    "RATE_WINDOW",
    "PushAction",
    "PushRequest",
    "SinkFactory",
    "blog_hosts",
    "enqueue_push",
    "make_push_handler",
    "parse_push",
    "push_comment",
    "push_reaction",
    "push_withdrawals",
]

PushAction = Literal["publish", "update", "withdraw"]
SinkFactory = Callable[[BridgeContext, Blog], Sink]
"""Builds the sink a blog's settings name (``bridge.sinks.factory``)."""

RATE_WINDOW: Final = timedelta(minutes=1)
PARENT_WAIT: Final = 30.0
"""Seconds a reply waits for the comment it answers to reach the blog."""
RETRYING: Final = "will retry: "
"""Starts the recorded error of a push that failed for now (``RetryLater``): a reply waits
for such a parent, while one whose parent was ``Rejected`` goes top-level."""
UNTITLED: Final = "Untitled post"
_ITEMS: Final[dict[str, SinkItemKind]] = {"comment": "comment", "linkback": "linkback"}
_ACTIONS: Final[dict[str, PushAction]] = {
    "publish": "publish",
    "update": "update",
    "withdraw": "withdraw",
}
_DONE: Final[dict[PushAction, SinkItemState]] = {
    "publish": "published",
    "update": "updated",
    "withdraw": "withdrawn",
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
    ctx: BridgeContext, comment: Comment, action: PushAction, *, version: str | None = None
) -> bool:
    """Queue a push of a comment to its blog; a publish only of a published comment."""
    if action == "publish" and comment.state != "published":
        return False
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


def make_push_handler(sinks: SinkFactory) -> Handler:
    """The ``push`` job handler, with the sink of each blog built by ``sinks``."""

    async def push_item(ctx: BridgeContext, job: Job) -> int | None:
        """Push one comment or linkback to its blog (see the module docstring)."""
        request = parse_push(job.payload)
        blog = await ctx.store.get_blog_by_id(request.blog_id)
        if blog is None:
            return None  # the blog was removed, and its items with it
        sink = sinks(ctx, blog)
        pusher = _Pusher(ctx, blog, sink, request)
        await pusher.run()
        return None

    return push_item


class _Pusher:
    """One push: the item, its record, the sink call and the record of what it returned."""

    def __init__(self, ctx: BridgeContext, blog: Blog, sink: Sink, request: PushRequest) -> None:
        self.ctx = ctx
        self.blog = blog
        self.sink = sink
        self.request = request

    async def run(self) -> None:
        caps = self.sink.capabilities
        if not (caps.comments or caps.linkbacks):
            return  # the feed-only sink: the comment feeds are the output
        record = await self.ctx.store.get_sink_item(
            self.blog.id, self.request.item, self.request.id, self.sink.name
        )
        if not _wanted(self.request.action, record):
            return
        if self.request.item == "comment":
            await self._comment(record)
        else:
            await self._reaction(record)

    async def _comment(self, record: SinkItem | None) -> None:
        comment = await self.ctx.store.get_comment(self.request.id)
        if comment is None or comment.blog_id != self.blog.id:
            raise Rejected(f"no comment {self.request.id[:200]} on @{self.blog.handle}")
        if self.request.action != "withdraw" and comment.state != "published":
            return  # held, rejected or deleted since the job was queued: a later job says so
        stored = await self._entry(comment.entry_id)
        caps = self.sink.capabilities
        if not caps.comments:
            linkback = self._comment_linkback(comment, stored)
            await self._send(record, lambda: self._linkback_call(record, linkback), linkback)
            return
        action = self.request.action
        if (action == "update" and not caps.update) or (action == "withdraw" and not caps.delete):
            return
        if action == "withdraw":
            await self._call(record, self._withdraw_comment(record))
            return
        parent = await self._parent_remote_id(comment) if caps.threading else None
        sink_comment = self._sink_comment(comment, stored, parent)
        if action == "publish":
            await self._call(record, self.sink.publish_comment(sink_comment))
        elif record is not None and record.remote_id is not None:
            await self._call(record, self.sink.update_comment(record.remote_id, sink_comment))

    async def _reaction(self, record: SinkItem | None) -> None:
        reaction = await self.ctx.store.get_reaction(self.request.id)
        if reaction is None or reaction.blog_id != self.blog.id:
            raise Rejected(f"no reaction {self.request.id[:200]} on @{self.blog.handle}")
        if self.request.action != "withdraw" and reaction.withdrawn_at is not None:
            return
        if not self.sink.capabilities.linkbacks:
            return
        stored = await self._entry(reaction.entry_id)
        linkback = self._reaction_linkback(reaction, stored)
        await self._send(record, lambda: self._linkback_call(record, linkback), linkback)

    async def _send(
        self,
        record: SinkItem | None,
        call: Callable[[], Awaitable[SinkResult]],
        linkback: SinkLinkback,
    ) -> None:
        """A linkback: to the blog's own hosts only, within the rate limit."""
        if (urlsplit(linkback.target_url).hostname or "").lower() not in blog_hosts(self.blog):
            raise Rejected(f"linkback target {linkback.target_url[:200]} is not on the blog")
        limit = self.blog.settings.linkbacks_per_minute
        now = self.ctx.clock()
        sent = await self.ctx.store.count_sink_items_since(
            self.blog.id, self.request.item, now - RATE_WINDOW
        )
        if sent >= limit:
            raise RetryLater(
                f"linkback rate limit of @{self.blog.handle} reached ({limit} a minute)",
                retry_after=RATE_WINDOW.total_seconds(),
            )
        await self._call(record, call())

    async def _linkback_call(self, record: SinkItem | None, linkback: SinkLinkback) -> SinkResult:
        if self.request.action == "withdraw":
            await self.sink.withdraw_linkback(linkback, record.remote_id if record else None)
            return SinkResult()
        return await self.sink.send_linkback(linkback)

    async def _withdraw_comment(self, record: SinkItem | None) -> SinkResult:
        if record is not None and record.remote_id is not None:
            await self.sink.withdraw_comment(record.remote_id)
        return SinkResult()

    async def _call(self, record: SinkItem | None, call: Awaitable[SinkResult]) -> None:
        """Await the sink call and record its outcome (failures too, then re-raised)."""
        request = self.request
        base = SinkItemUpdate(self.blog.id, request.item, request.id, self.sink.name, "failed")
        try:
            result: SinkResult = await call
        except (RetryLater, Rejected) as exc:
            error = f"{RETRYING}{exc}" if isinstance(exc, RetryLater) else str(exc)
            await self.ctx.store.put_sink_item(replace(base, error=error[:1000]), self.ctx.clock())
            raise
        done = replace(
            base,
            state=_DONE[request.action],
            remote_id=result.remote_id,
            live=request.action != "withdraw",
        )
        await self.ctx.store.put_sink_item(done, self.ctx.clock())

    async def _entry(self, entry_id: str) -> StoredEntry:
        entries = await self.ctx.store.get_entries(self.blog.id, [entry_id])
        stored = entries.get(entry_id)
        if stored is None:
            raise Rejected(f"post {entry_id[:200]} of @{self.blog.handle} is unknown")
        return stored

    async def _parent_remote_id(self, comment: Comment) -> str | None:
        """The sink's id of the comment this one answers; waits while its push is pending."""
        if comment.parent_id is None:
            return None
        parent = await self.ctx.store.get_comment(comment.parent_id)
        if parent is None or parent.state != "published" or parent.blog_id != self.blog.id:
            return None  # answers the post itself, or a comment the blog will never show
        if parent.origin == "blog":
            return self._blog_comment_id(parent)
        record = await self.ctx.store.get_sink_item(
            self.blog.id, "comment", parent.object_id, self.sink.name
        )
        # The parent's push pending, or failed for now and retried: the reply goes after it.
        if record is None or (not record.live and (record.last_error or "").startswith(RETRYING)):
            raise RetryLater(
                f"waiting for comment {parent.object_id[:200]} to reach the blog first",
                retry_after=PARENT_WAIT,
            )
        return record.remote_id if record.live else None

    def _blog_comment_id(self, parent: Comment) -> str | None:
        """The WordPress id of a comment written on the blog itself (the dialog read it
        there, so it was never pushed and has no record); None for other sinks."""
        ref = blog_comment_id(parent)
        if ref is None or self.sink.name != "wordpress":
            return None
        return ref if ref.isdigit() else wordpress_comment_id(ref)

    def _post(self, stored: StoredEntry) -> tuple[str, str, str]:
        """The post's URL on the blog, its guid and its title as the pages show it."""
        article = self.ctx.urls.article(self.blog.handle, stored.slug)
        url = safe_http_url(stored.entry.link) or article
        title = " ".join((stored.entry.title or "").split()) or UNTITLED
        return url, stored.entry.id, title

    def _sink_comment(
        self, comment: Comment, stored: StoredEntry, parent: str | None
    ) -> SinkComment:
        url, guid, _title = self._post(stored)
        author = person_view(comment.author)
        return SinkComment(
            object_id=comment.object_id,
            post_url=url,
            post_guid=guid,
            author_name=author.name,
            author_url=author.profile_url or comment.author.actor_id,
            content_html=sanitize_html(comment.content_html),
            published=comment.published,
            page_url=self.ctx.urls.comment_page(self.blog.handle, stored.slug, comment.slug),
            author_avatar=author.avatar_url,
            parent_remote_id=parent,
            updated=comment.updated,
        )

    def _comment_linkback(self, comment: Comment, stored: StoredEntry) -> SinkLinkback:
        url, _guid, title = self._post(stored)
        author = person_view(comment.author)
        return SinkLinkback(
            kind="mention",
            activity_id=comment.object_id,
            source_url=self.ctx.urls.comment_page(self.blog.handle, stored.slug, comment.slug),
            target_url=url,
            title=item_title("comment", author.name, title),
            actor_name=author.name,
            actor_url=author.profile_url or comment.author.actor_id,
            published=comment.published,
        )

    def _reaction_linkback(self, reaction: Reaction, stored: StoredEntry) -> SinkLinkback:
        url, _guid, title = self._post(stored)
        actor = person_view(reaction.actor)
        return SinkLinkback(
            kind=reaction.kind,
            activity_id=reaction.activity_id,
            source_url=self.ctx.urls.linkback_page(self.blog.handle, stored.slug, reaction.slug),
            target_url=url,
            title=item_title(reaction.kind, actor.name, title),
            actor_name=actor.name,
            actor_url=actor.profile_url or reaction.actor.actor_id,
            published=reaction.published,
        )


def _wanted(action: PushAction, record: SinkItem | None) -> bool:
    """Whether the action has anything to do, given what the blog already has."""
    live = record is not None and record.live
    if action == "publish":
        return not live  # on the blog already: never post twice
    return live  # an update or withdrawal of what never reached the blog: nothing to reach
