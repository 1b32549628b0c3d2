"""What a remote note answers or links: one of our posts, or a comment in a post's thread.

A reply names its parent by ``inReplyTo``: our article's object id (what Mastodon and most
servers use), the blog post's own URL (what a reply written from a link preview or a
WordPress site uses), or a comment's object id (a reply to a reply). Mentions name posts by
their URL in the text. :func:`target_of` finds the blog, the entry and the id the comment
hangs under for each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from yarl import URL

from bridge.config import HANDLE_RE
from bridge.context import BridgeContext
from bridge.federation.remote_actors import is_http_url, is_local
from bridge.store.base import Blog, EntryRef

ENTRY_SCAN_LIMIT: Final = 2000
"""Newest entries per blog compared by URL (older posts are found by their object id)."""
_PAGE: Final = 200


@dataclass(frozen=True)
class Target:
    """Where a comment or reaction goes: a blog's live entry, and the object id it answers
    (the article's, or a comment's for a nested reply)."""

    blog: Blog
    entry: EntryRef
    parent_id: str
    article_id: str
    """The object id of the post itself."""


async def target_of(ctx: BridgeContext, url: str | None) -> Target | None:
    """The post or comment ``url`` names, if it is one of ours; deleted ones are not."""
    if url is None or not is_http_url(url):
        return None
    named = _article_path(ctx, url)
    if named is not None:
        # No comment has an article's id (the blog's own answers are
        # ``{article}/comments/…``, remote notes with our ids are refused by the origin
        # rules), so a reply to a post costs no comment lookup.
        return await _article(ctx, *named)
    # Comments first: the blog's own answers are Notes with ids on this bridge, and a reply
    # to them must nest like a reply to any other comment.
    comment = await ctx.store.get_comment(url)
    if comment is None:
        return None if is_local(ctx, url) else await post_by_link(ctx, url)
    if comment.state == "deleted":
        return None
    blog = await ctx.store.get_blog_by_id(comment.blog_id)
    entries = await ctx.store.get_entries(comment.blog_id, [comment.entry_id])
    entry = entries.get(comment.entry_id)
    if blog is None or entry is None or entry.deleted_at is not None:
        return None
    return Target(blog, entry.ref, comment.object_id, ctx.urls.article(blog.handle, entry.slug))


async def post_by_link(ctx: BridgeContext, url: str) -> Target | None:
    """The live post whose link (or id) is ``url``, compared without fragment, trailing
    slash or scheme (blogs link themselves over http and https alike)."""
    wanted = canonical(url)
    if wanted is None:
        return None
    for blog in await ctx.store.list_blogs():
        by_id = (await ctx.store.get_entries(blog.id, [url])).get(url)
        if by_id is not None and by_id.deleted_at is None:
            return _post(ctx, blog, by_id.ref)
        for offset in range(0, ENTRY_SCAN_LIMIT, _PAGE):
            page = await ctx.store.list_entries(blog.id, _PAGE, offset)
            for stored in page:
                links = (stored.entry.link, stored.entry.id)
                if any(link and canonical(link) == wanted for link in links):
                    return _post(ctx, blog, stored.ref)
            if len(page) < _PAGE:
                break
    return None


def canonical(url: str) -> str | None:
    """A URL as compared with post links: no scheme, fragment or trailing slash; lower-case
    host; default port dropped."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return None
    port = "" if parsed.is_default_port() else f":{parsed.port}"
    path = parsed.raw_path.rstrip("/")
    query = f"?{parsed.raw_query_string}" if parsed.raw_query_string else ""
    return f"{parsed.raw_host.lower()}{port}{path}{query}"


def _post(ctx: BridgeContext, blog: Blog, entry: EntryRef) -> Target:
    article = ctx.urls.article(blog.handle, entry.slug)
    return Target(blog, entry, article, article)


def _article_path(ctx: BridgeContext, url: str) -> tuple[str, str, str] | None:
    """The handle and slug of a URL shaped like one of our article ids
    (``{base}/users/{handle}/posts/{slug}``), with the URL without its fragment."""
    prefix = ctx.urls.actor("")
    clean = url.split("#", 1)[0]
    if not clean.startswith(prefix):
        return None
    handle, marker, slug = clean[len(prefix) :].partition("/posts/")
    if not marker or not HANDLE_RE.fullmatch(handle) or not slug or "/" in slug:
        return None
    return handle, slug, clean


async def _article(ctx: BridgeContext, handle: str, slug: str, clean: str) -> Target | None:
    """The live post of one of our article ids (see :func:`_article_path`)."""
    found = await ctx.store.entry_by_article(handle, slug)
    if found is None:
        return None
    blog, stored = found
    if stored.deleted_at is not None:
        return None
    target = _post(ctx, blog, stored)
    return target if target.parent_id == clean else None
