"""Each post's ``replies``, ``likes`` and ``shares`` collections, with counts.

``{article}/replies|likes|shares`` (URLs from :mod:`bridge.activitypub.urls`, named by the
article itself) answer an ``OrderedCollection`` with ``totalItems`` and the first page
embedded, as Mastodon serves ``replies``; pages are ``?page=N``. Items are ids: the
comments' note ids (the whole published thread, oldest first), the ``Like`` and
``Announce`` activity ids (live ones, oldest first). Browsers are sent to the post page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from bridge.activitypub import collections
from bridge.activitypub.jsonld import with_context
from bridge.activitypub.negotiation import activity_response, wants_activity_json
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.errors import InvalidPage
from bridge.store.base import Blog, StoredEntry
from bridge.store.roles_backfeed import ReactionKind
from bridge.web.backfeed_routes import live_post
from bridge.web.routes import page_number

routes = web.RouteTableDef()

COLLECTION_CACHE_SECONDS: Final = 60


async def _collection(
    request: web.Request,
    collection_of: Callable[[str, str], str],
    total_of: Callable[[BridgeContext, Blog, StoredEntry], Awaitable[int]],
    items_of: Callable[[BridgeContext, Blog, StoredEntry, int, int], Awaitable[list[str]]],
) -> web.StreamResponse:
    """An OrderedCollection of ids with ``totalItems``, its first page embedded."""
    found = await live_post(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog, stored = found
    if not wants_activity_json(request.headers.get("Accept")):
        raise web.HTTPFound(ctx.urls.post_page(blog.handle, stored.slug))
    collection_id = collection_of(blog.handle, stored.slug)
    size = ctx.config.limits.page_size
    try:
        page = page_number(request)
    except InvalidPage as exc:
        return activity_response({"error": str(exc)}, status=400)
    total = await total_of(ctx, blog, stored)
    number = page or 1
    offset = collections.page_offset(number, size)
    items = await items_of(ctx, blog, stored, size, offset) if total else []
    next_id, prev_id = collections.page_links(collection_id, number, total, size)
    first = collections.ordered_collection_page(
        collections.page_url(collection_id, number),
        collection_id,
        list(items),
        next_id=next_id,
        prev_id=prev_id,
        start_index=offset,
    )
    if page is not None:
        document = first
    else:
        pages_total = collections.page_count(total, size)
        document = collections.ordered_collection(
            collection_id,
            total,
            first=None,
            last=collections.page_url(collection_id, pages_total) if pages_total else None,
        )
        document["first"] = first
    return activity_response(with_context(document), cache_seconds=COLLECTION_CACHE_SECONDS)


async def _count_comments(ctx: BridgeContext, blog: Blog, stored: StoredEntry) -> int:
    return await ctx.store.count_comments(blog.id, entry_id=stored.entry_id)


async def _comment_ids(
    ctx: BridgeContext, blog: Blog, stored: StoredEntry, limit: int, offset: int
) -> list[str]:
    found = await ctx.store.list_comments(
        blog.id, entry_id=stored.entry_id, limit=limit, offset=offset, newest_first=False
    )
    return [comment.object_id for comment in found]


def _reactions(
    kind: ReactionKind,
) -> tuple[
    Callable[[BridgeContext, Blog, StoredEntry], Awaitable[int]],
    Callable[[BridgeContext, Blog, StoredEntry, int, int], Awaitable[list[str]]],
]:
    async def total(ctx: BridgeContext, blog: Blog, stored: StoredEntry) -> int:
        return await ctx.store.count_reactions(blog.id, stored.entry_id, kind)

    async def ids(
        ctx: BridgeContext, blog: Blog, stored: StoredEntry, limit: int, offset: int
    ) -> list[str]:
        found = await ctx.store.list_reactions(blog.id, stored.entry_id, kind, limit, offset)
        return [reaction.activity_id for reaction in found]

    return total, ids


@routes.get("/users/{handle}/posts/{slug}/replies")
async def replies(request: web.Request) -> web.StreamResponse:
    """The post's published comments (the whole thread), oldest first, as object ids."""
    urls = request.app[CONTEXT].urls
    return await _collection(request, urls.replies, _count_comments, _comment_ids)


@routes.get("/users/{handle}/posts/{slug}/likes")
async def likes(request: web.Request) -> web.StreamResponse:
    """The post's live likes, as the ids of the ``Like`` activities."""
    urls = request.app[CONTEXT].urls
    return await _collection(request, urls.likes, *_reactions("like"))


@routes.get("/users/{handle}/posts/{slug}/shares")
async def shares(request: web.Request) -> web.StreamResponse:
    """The post's live boosts, as the ids of the ``Announce`` activities."""
    urls = request.app[CONTEXT].urls
    return await _collection(request, urls.shares, *_reactions("boost"))
