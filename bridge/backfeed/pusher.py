"""The ``push`` job's handler: one comment or linkback to the blog's sink, and the record of
what the sink returned. What the job promises (no double posts, capabilities, threading,
linkback hosts and rate) is described in :mod:`bridge.backfeed.push`, which queues the jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit

from bridge.activitypub.actors import safe_http_url
from bridge.backfeed.blog_comments import wordpress_comment_id
from bridge.backfeed.pages import item_title, person_view
from bridge.backfeed.push import PushAction, PushRequest, SinkFactory, blog_hosts, parse_push
from bridge.backfeed.sanitize import sanitize_html
from bridge.context import BridgeContext
from bridge.errors import Rejected, RetryLater
from bridge.federation.dialog_out import blog_comment_id
from bridge.jobs import Handler
from bridge.jobs.retry import RetryPolicy
from bridge.sinks.base import Sink, SinkComment, SinkLinkback, SinkResult
from bridge.store.base import (
    Blog,
    Comment,
    Reaction,
    SinkItem,
    SinkItemState,
    SinkItemUpdate,
    StoredEntry,
)
from bridge.store.records import Job

log = logging.getLogger(__name__)

__all__ = ["PARENT_WAIT", "RATE_WINDOW", "make_push_handler"]

RATE_WINDOW: Final = timedelta(minutes=1)
PARENT_WAIT: Final = 30.0
"""Seconds a reply waits for the comment it answers to reach the blog."""
RETRYING: Final = "will retry: "
"""Starts the recorded error of a push that failed for now (``RetryLater``): a reply waits
for such a parent, while one whose parent was ``Rejected`` or gave up goes top-level."""
GAVE_UP: Final = "gave up: "
"""Starts the recorded error of a push whose last attempt failed for now: it is not retried."""
UNTITLED: Final = "Untitled post"
_DONE: Final[dict[PushAction, SinkItemState]] = {
    "publish": "published",
    "update": "updated",
    "withdraw": "withdrawn",
}


def make_push_handler(sinks: SinkFactory) -> Handler:
    """The ``push`` job handler, with the sink of each blog built by ``sinks``."""

    async def push_item(ctx: BridgeContext, job: Job) -> int | None:
        """Push one comment or linkback to its blog (see the module docstring)."""
        request = parse_push(job.payload)
        blog = await ctx.store.get_blog_by_id(request.blog_id)
        if blog is None:
            return None  # the blog was removed, and its items with it
        sink = sinks(ctx, blog)
        # As the worker decides (its policy comes from the same limit): after a failure of
        # this attempt the job is not tried again.
        policy = RetryPolicy(max_retries=ctx.config.limits.delivery_retries)
        pusher = _Pusher(ctx, blog, sink, request, last=policy.gives_up_after(job.attempts + 1))
        await pusher.run()
        return None

    return push_item


class _Pusher:
    """One push: the item, its record, the sink call and the record of what it returned."""

    def __init__(
        self, ctx: BridgeContext, blog: Blog, sink: Sink, request: PushRequest, *, last: bool
    ) -> None:
        self.ctx = ctx
        self.blog = blog
        self.sink = sink
        self.request = request
        self.last = last
        """This is the job's last attempt: a failure now is final."""

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
            if isinstance(exc, RetryLater):
                error = f"{GAVE_UP if self.last else RETRYING}{exc}"
            else:
                error = str(exc)
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
            if self.last:
                log.warning(
                    "reply %s goes to @%s top-level: comment %s has not reached the blog",
                    comment.object_id[:200],
                    self.blog.handle,
                    parent.object_id[:200],
                )
                return None
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
