"""What readers see of the fediverse's answers: post pages, comment and linkback pages,
comment feeds, and each post's ``replies``, ``likes`` and ``shares`` collections.

URLs (minted in :mod:`bridge.activitypub.urls`):

- ``/@{handle}/{slug}``: the post page. The post's object id keeps sending browsers to
  the blog post (it is the link Mastodon shows under the post); the post page is linked
  from the profile page and is where the bridge shows the thread.
- ``/@{handle}/{slug}/comments.rss|atom`` and ``/@{handle}/comments.rss|atom``: the
  comment feeds of a post and of the blog, answered 304 to a matching conditional GET.
- ``{article}/comments/{slug}`` and ``{article}/linkbacks/{slug}``: one comment, one boost,
  like or mention; 200 directly (pingback and webmention verifiers follow no redirects
  reliably), 410 once withdrawn or deleted, 404 while held by moderation.

The ``replies``, ``likes`` and ``shares`` collections are in
:mod:`bridge.web.post_collections`.

Building a feed or a thread sanitises every comment again, which is CPU work in proportion
to what hostile authors sent: it runs in a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

from aiohttp import web

from bridge.activitypub.actors import display_name, safe_http_url
from bridge.activitypub.excerpts import excerpt
from bridge.activitypub.jsonld import with_context
from bridge.activitypub.negotiation import activity_response, wants_activity_json
from bridge.appkeys import CONTEXT
from bridge.backfeed import commentfeeds, pages
from bridge.backfeed.commentfeeds import CommentFeed, FeedKind, PostRef
from bridge.context import BridgeContext
from bridge.federation.dialog_out import SOURCE_KIND
from bridge.store.base import Blog, StoredEntry
from bridge.store.roles_backfeed import Comment, CommentState
from bridge.web import pages as web_pages

routes = web.RouteTableDef()

FEED_CACHE_SECONDS: Final = 300
THREAD_LIMIT: Final = 1000
"""Comments shown on a post page (WordPress shows all of them unless told to page)."""
FACES: Final = 80
"""Avatars shown per kind of reaction; the count says how many there are in all."""
_SLUG: Final = "{slug:[0-9a-f]{20}}"
_KIND: Final = "{kind:rss|atom}"
_DELETED: Final[tuple[CommentState, ...]] = ("deleted",)


def post_ref(blog: Blog, stored: StoredEntry, ctx: BridgeContext) -> PostRef:
    """How pages and feeds name a post: its object id, title and the blog post's URL."""
    object_id = ctx.urls.article(blog.handle, stored.slug)
    title = " ".join((stored.entry.title or "").split()) or web_pages.UNTITLED
    return PostRef(object_id, title, safe_http_url(stored.entry.link) or object_id)


def comment_url(ctx: BridgeContext, blog: Blog, post_slug: str, comment: Comment) -> str:
    """The page of a comment on a post of ``blog``."""
    return ctx.urls.comment_page(blog.handle, post_slug, comment.slug)


async def live_post(
    request: web.Request,
) -> tuple[BridgeContext, Blog, StoredEntry] | web.Response:
    """The blog and live post the URL names, or the 404 or 410 page to answer."""
    ctx = request.app[CONTEXT]
    blog = await ctx.store.get_blog(request.match_info["handle"])
    if blog is None:
        return await _error(ctx, 404, "No such account.")
    stored = await ctx.store.get_entry_by_slug(blog.id, request.match_info["slug"])
    if stored is None:
        return await _error(ctx, 404, "No such post.")
    if stored.deleted_at is not None:
        return await _error(ctx, 410, "The blog removed this post.")
    return ctx, blog, stored


async def _error(ctx: BridgeContext, status: int, message: str) -> web.Response:
    title = "Gone" if status == 410 else "Not found"
    return await web_pages.error_page(status, title, message, domain=ctx.config.domain)


# The post page


@routes.get(f"/@{{handle}}/{_SLUG}")
async def post_page(request: web.Request) -> web.StreamResponse:
    """The post's HTML face: title, link, threaded comments, boosts, likes and mentions.

    Servers asking for JSON get the post's object, as they would at its id.
    """
    found = await live_post(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog, stored = found
    post = post_ref(blog, stored, ctx)
    if wants_activity_json(request.headers.get("Accept")):
        raise web.HTTPFound(post.object_id, headers={"Vary": "Accept"})
    store, entry_id = ctx.store, stored.entry_id
    comments = await store.list_comments(
        blog.id, entry_id=entry_id, limit=THREAD_LIMIT, newest_first=False
    )
    counts = {
        kind: await store.count_reactions(blog.id, entry_id, kind)
        for kind in ("like", "boost", "mention")
    }
    reactions = {
        kind: await store.list_reactions(blog.id, entry_id, kind, limit=FACES)
        for kind in ("like", "boost", "mention")
    }
    comment_count = await store.count_comments(blog.id, entry_id=entry_id)

    def build() -> tuple[pages.PostPage, list[pages.CommentView]]:
        roots = pages.thread(
            comments, post.object_id, lambda c: comment_url(ctx, blog, stored.slug, c)
        )
        views = {
            kind: tuple(
                pages.reaction_view(
                    reaction, ctx.urls.linkback_page(blog.handle, stored.slug, reaction.slug)
                )
                for reaction in found
            )
            for kind, found in reactions.items()
        }
        body = stored.entry.summary_html or stored.entry.content_html or ""
        view = pages.PostPage(
            title=post.title,
            url=post.url,
            page_url=ctx.urls.post_page(blog.handle, stored.slug),
            object_id=post.object_id,
            published=stored.sort_time,
            excerpt=excerpt(body, web_pages.EXCERPT_CHARS) if body else "",
            lang=web_pages.language_tag(stored.entry.language)
            or web_pages.language_tag(blog.meta.language),
            blog_name=display_name(blog),
            blog_address=f"@{blog.handle}@{ctx.config.domain}",
            profile_url=ctx.urls.profile(blog.handle),
            comments=roots,
            comment_count=comment_count,
            like_count=counts["like"],
            boost_count=counts["boost"],
            mention_count=counts["mention"],
            likes=views["like"],
            boosts=views["boost"],
            mentions=views["mention"],
            rss_url=ctx.urls.post_comments_feed(blog.handle, stored.slug, "rss"),
            atom_url=ctx.urls.post_comments_feed(blog.handle, stored.slug, "atom"),
        )
        return view, pages.flatten(roots)

    view, flat = await asyncio.to_thread(build)
    response = await web_pages.render(
        "post.html", domain=ctx.config.domain, post=view, comments=flat
    )
    response.headers["Vary"] = "Accept"
    return response


# One comment, one linkback


async def _blog_note(
    request: web.Request, ctx: BridgeContext, blog: Blog, stored: StoredEntry, comment: Comment
) -> web.StreamResponse:
    """The Note an answer on the blog became, dereferenceable at its id (servers fetch a
    reply's parent); browsers are sent to the comment's own page."""
    if comment.deleted_at is not None or comment.state == "deleted":
        if wants_activity_json(request.headers.get("Accept")):
            tombstone = {"id": comment.object_id, "type": "Tombstone", "formerType": "Note"}
            return activity_response(with_context(tombstone), status=410)
        return await _error(ctx, 410, "The author deleted this comment.")
    if wants_activity_json(request.headers.get("Accept")):
        note = {k: v for k, v in comment.source.items() if k != SOURCE_KIND}
        return activity_response(with_context(note))
    raise web.HTTPFound(comment_url(ctx, blog, stored.slug, comment))


@routes.get("/users/{handle}/posts/{slug}/comments/{item:[0-9a-f]{20}}")
async def comment_item_page(request: web.Request) -> web.StreamResponse:
    """One comment's page (a pingback or webmention source); 410 once deleted."""
    found = await live_post(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog, stored = found
    wanted = request.match_info["item"]
    comment = await ctx.store.get_comment_by_slug(blog.id, wanted)
    if comment is None:
        # An answer written on the blog is a Note whose id is this URL (see dialog_out).
        note_id = ctx.urls.comment_page(blog.handle, stored.slug, wanted)
        comment = await ctx.store.get_comment(note_id)
        if comment is not None and comment.origin == "blog":
            return await _blog_note(request, ctx, blog, stored, comment)
    if comment is None or comment.entry_id != stored.entry_id:
        return await _error(ctx, 404, "No such comment.")
    if comment.state == "deleted" or comment.deleted_at is not None:
        return await _error(ctx, 410, "Its author deleted this comment.")
    if comment.state != "published":
        return await _error(ctx, 404, "No such comment.")
    post = post_ref(blog, stored, ctx)
    parent_url = None
    if comment.parent_id and comment.parent_id != post.object_id:
        parent = await ctx.store.get_comment(comment.parent_id)
        if parent is not None and parent.entry_id == stored.entry_id:
            parent_url = (
                comment_url(ctx, blog, stored.slug, parent)
                if parent.state == "published"
                else safe_http_url(parent.url)
            )
        parent_url = parent_url or safe_http_url(comment.parent_id)
    item = await asyncio.to_thread(
        pages.comment_page,
        comment,
        target_url=post.url,
        post_title=post.title,
        post_page_url=ctx.urls.post_page(blog.handle, stored.slug),
        page_url=comment_url(ctx, blog, stored.slug, comment),
        parent_url=parent_url,
    )
    return await web_pages.render("comment.html", domain=ctx.config.domain, item=item)


@routes.get("/users/{handle}/posts/{slug}/linkbacks/{item:[0-9a-f]{20}}")
async def linkback_item_page(request: web.Request) -> web.StreamResponse:
    """One boost's, mention's or like's page; 410 once withdrawn."""
    found = await live_post(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog, stored = found
    reaction = await ctx.store.get_reaction_by_slug(blog.id, request.match_info["item"])
    if reaction is None or reaction.entry_id != stored.entry_id:
        return await _error(ctx, 404, "No such boost, like or mention.")
    if reaction.withdrawn_at is not None:
        return await _error(ctx, 410, "This was withdrawn.")
    post = post_ref(blog, stored, ctx)
    item = pages.linkback_page(
        reaction,
        target_url=post.url,
        post_title=post.title,
        post_page_url=ctx.urls.post_page(blog.handle, stored.slug),
        page_url=ctx.urls.linkback_page(blog.handle, stored.slug, reaction.slug),
    )
    return await web_pages.render("linkback.html", domain=ctx.config.domain, item=item)


# Comment feeds


@routes.get(f"/@{{handle}}/{_SLUG}/comments.{_KIND}")
async def post_feed(request: web.Request) -> web.StreamResponse:
    """The comment feed of one post."""
    found = await live_post(request)
    if isinstance(found, web.Response):
        return found
    ctx, blog, stored = found
    kind: FeedKind = "atom" if request.match_info["kind"] == "atom" else "rss"
    post = post_ref(blog, stored, ctx)
    comments = await ctx.store.list_comments(
        blog.id, entry_id=stored.entry_id, limit=commentfeeds.FEED_ITEMS
    )
    deleted = await ctx.store.list_comments(
        blog.id, entry_id=stored.entry_id, states=_DELETED, limit=commentfeeds.FEED_ITEMS
    )
    urls = ctx.urls
    feed = _feed_shell(
        ctx,
        blog,
        kind,
        self_of=lambda k: urls.post_comments_feed(blog.handle, stored.slug, k),
        title=f"Comments on: {post.title}",
        home_url=urls.post_page(blog.handle, stored.slug),
        language=web_pages.language_tag(stored.entry.language),
        fallback=stored.sort_time,
    )
    return await _feed_response(
        request,
        ctx,
        feed,
        kind,
        comments,
        deleted,
        {stored.entry_id: (post, stored.slug)},
        blog_wide=False,
    )


@routes.get(f"/@{{handle}}/comments.{_KIND}")
async def blog_feed(request: web.Request) -> web.StreamResponse:
    """The comment feed of a whole blog."""
    ctx = request.app[CONTEXT]
    blog = await ctx.store.get_blog(request.match_info["handle"])
    if blog is None:
        return await _error(ctx, 404, "No such account.")
    kind: FeedKind = "atom" if request.match_info["kind"] == "atom" else "rss"
    comments = await ctx.store.list_comments(blog.id, limit=commentfeeds.FEED_ITEMS)
    deleted = await ctx.store.list_comments(blog.id, states=_DELETED, limit=commentfeeds.FEED_ITEMS)
    entries = await ctx.store.get_entries(blog.id, {c.entry_id for c in comments})
    posts = {
        entry_id: (post_ref(blog, stored, ctx), stored.slug)
        for entry_id, stored in entries.items()
        if stored.deleted_at is None
    }
    feed = _feed_shell(
        ctx,
        blog,
        kind,
        self_of=lambda k: ctx.urls.blog_comments_feed(blog.handle, k),
        title=f"Comments for {display_name(blog)}",
        home_url=ctx.urls.profile(blog.handle),
        language=None,
        fallback=blog.created_at,
    )
    return await _feed_response(request, ctx, feed, kind, comments, deleted, posts, blog_wide=True)


def _feed_shell(
    ctx: BridgeContext,
    blog: Blog,
    kind: FeedKind,
    *,
    self_of: Callable[[FeedKind], str],
    title: str,
    home_url: str,
    language: str | None,
    fallback: datetime,
) -> CommentFeed:
    other: FeedKind = "rss" if kind == "atom" else "atom"
    return CommentFeed(
        self_url=self_of(kind),
        alternate_url=self_of(other),
        title=title,
        home_url=home_url,
        description=f"Replies from the fediverse to {display_name(blog)}",
        language=language or web_pages.language_tag(blog.meta.language),
        updated=fallback,
        items=(),
    )


async def _feed_response(
    request: web.Request,
    ctx: BridgeContext,
    shell: CommentFeed,
    kind: FeedKind,
    comments: Sequence[Comment],
    deleted: Sequence[Comment],
    posts: dict[str, tuple[PostRef, str]],
    *,
    blog_wide: bool,
) -> web.StreamResponse:
    handle = request.match_info["handle"]
    page_of = {
        c.object_id: ctx.urls.comment_page(handle, posts[c.entry_id][1], c.slug)
        for c in comments
        if c.entry_id in posts
    }
    updated = commentfeeds.feed_updated(
        [c.received_at for c in comments]
        + [c.updated for c in comments]
        + [c.deleted_at for c in deleted],
        shell.updated,
    )

    def build() -> bytes:
        items = commentfeeds.items_for(
            comments, {k: v[0] for k, v in posts.items()}, page_of, blog_wide=blog_wide
        )
        feed = dataclasses.replace(shell, updated=updated, items=items)
        return commentfeeds.build_feed(feed, kind)

    body = await asyncio.to_thread(build)
    etag = commentfeeds.entity_tag(body)
    headers = {
        "ETag": etag,
        "Last-Modified": commentfeeds.http_date(updated),
        "Cache-Control": f"max-age={FEED_CACHE_SECONDS}, public",
    }
    if commentfeeds.is_not_modified(
        request.headers.get("If-None-Match"),
        request.headers.get("If-Modified-Since"),
        etag,
        updated,
    ):
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=body,
        content_type=commentfeeds.media_type(kind),
        charset="utf-8",
        headers=headers,
    )
