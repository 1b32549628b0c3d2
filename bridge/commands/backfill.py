"""``feedfed blogs backfill BLOG``: push what the bridge holds for a blog to its sink.

What arrives from the fediverse is pushed to the blog's sink as it arrives; a blog whose sink
changed (from ``feed`` to ``wordpress``, say) has older comments and linkbacks that only ever
reached the comment feeds. This queues a push of every published comment and every live
linkback (boost, like, mention) on the blog's live posts, post by post, comments oldest first
so that a parent goes before its replies. The push jobs skip what this sink holds already (its
``sink_items``), so running the command twice sends nothing twice. The workers do the pushing,
with their retries and the blog's linkback rate limit.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar, get_args

from bridge.backfeed import push
from bridge.commands.blog_handle import blog_named
from bridge.context import BridgeContext
from bridge.errors import ConfigError
from bridge.store.base import Blog, Comment, Reaction, StoredEntry
from bridge.store.roles_backfeed import ReactionKind

PAGE = 200
"""Rows read per store call."""

T = TypeVar("T")


def add_backfill(blogs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backfill`` to the ``blogs`` subcommands."""
    backfill = blogs.add_parser(
        "backfill",
        help="push the blog's earlier comments and linkbacks to its sink (after a sink change)",
    )
    backfill.add_argument("handle")
    backfill.set_defaults(action=lambda a: lambda ctx: run_backfill(ctx, a.handle))


async def run_backfill(ctx: BridgeContext, handle: str) -> int:
    """Queue the pushes for the blog named ``handle`` and say how many; 0 on success."""
    blog = await blog_named(ctx, handle)
    comments, linkbacks = await backfill(ctx, blog)
    print(
        f"@{blog.handle}: queued {comments} comment(s) and {linkbacks} linkback(s) for its "
        f"{blog.settings.sink} sink; the workers push them (see feedfed deliveries status)"
    )
    return 0


async def backfill(ctx: BridgeContext, blog: Blog) -> tuple[int, int]:
    """Queue a push of each published comment and live linkback of ``blog``'s live posts;
    how many comment and linkback pushes were queued (not queued: ones queued already)."""
    if blog.settings.sink == "feed":
        raise ConfigError(
            "sink",
            f"@{blog.handle} has the feed sink, whose comment feeds hold everything already "
            "(give the blog another sink in the config file, then backfill)",
        )
    # Its own version: the pushes a blog had under an earlier sink, still in the queue's
    # history, do not stand in the way of these.
    version = f"backfill-{blog.settings.sink}"
    comments = linkbacks = 0
    async for entry in _entries(ctx, blog):
        async for comment in _comments(ctx, blog, entry):
            comments += await push.push_comment(ctx, comment, "publish", version=version, blog=blog)
        async for reaction in _reactions(ctx, blog, entry):
            linkbacks += await push.enqueue_push(
                ctx, blog, "linkback", reaction.activity_id, "publish", version=version
            )
    return comments, linkbacks


async def _entries(ctx: BridgeContext, blog: Blog) -> AsyncIterator[StoredEntry]:
    async for entry in _pages(functools.partial(ctx.store.list_entries, blog.id, PAGE)):
        yield entry


async def _comments(ctx: BridgeContext, blog: Blog, entry: StoredEntry) -> AsyncIterator[Comment]:
    async def page(offset: int) -> list[Comment]:
        return await ctx.store.list_comments(
            blog.id, entry_id=entry.entry_id, limit=PAGE, offset=offset, newest_first=False
        )

    async for comment in _pages(page):
        yield comment


async def _reactions(ctx: BridgeContext, blog: Blog, entry: StoredEntry) -> AsyncIterator[Reaction]:
    for kind in get_args(ReactionKind):
        read = functools.partial(ctx.store.list_reactions, blog.id, entry.entry_id, kind, PAGE)
        async for reaction in _pages(read):
            yield reaction


async def _pages(read: Callable[[int], Awaitable[list[T]]]) -> AsyncIterator[T]:
    """Every row of a paged store listing."""
    offset = 0
    while page := await read(offset):
        for row in page:
            yield row
        offset += len(page)
