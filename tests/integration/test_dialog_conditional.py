"""The dialog reads a post's comment feed with conditional GET (talkabout's ``wfw:commentRss``).

A real aiohttp server on 127.0.0.1 serves the comment feed with an ``ETag`` and a
``Last-Modified`` and answers 304 when both validators match, as WordPress behind a cache does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.activitypub.urls import entry_slug
from bridge.backfeed.dialog import poll_dialog
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.store.base import Blog, NewBlog

POST = "http://www.talkabout.de/?p=1234"
MODIFIED = "Mon, 22 Feb 2010 10:00:00 GMT"


def comment_feed(*items: tuple[str, str]) -> str:
    rows = "".join(
        f"<item><title>Von {who}</title><link>{POST}#comment-{n}</link>"
        f"<dc:creator>{who}</dc:creator><guid isPermaLink='false'>{POST}#comment-{n}</guid>"
        f"<pubDate>Mon, 22 Feb 2010 10:{n:02d}:00 +0000</pubDate>"
        f"<description>{text}</description><content:encoded><![CDATA[<p>{text}</p>]]>"
        "</content:encoded></item>"
        for n, (who, text) in enumerate(items, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Kommentare zu: Ein Plädoyer</title><link>{POST}</link>{rows}</channel></rss>"
    )


@dataclass
class CommentFeed:
    """The comment feed of one post; ``version`` changes its ETag."""

    body: str
    version: int = 1
    seen: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/comments/feed/", self.get)
        return app

    async def get(self, request: web.Request) -> web.Response:
        self.seen.append(
            {name: request.headers.get(name, "") for name in ("If-None-Match", "If-Modified-Since")}
        )
        etag = f'W/"c{self.version}"'
        headers = {"ETag": etag, "Last-Modified": MODIFIED}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(
            text=self.body, content_type="application/rss+xml", headers=headers, charset="utf-8"
        )


async def post_with_feed(ctx: BridgeContext, feed_url: str) -> Blog:
    blog = await ctx.store.add_blog(
        NewBlog("talkabout", "http://www.talkabout.de/feed/"), ctx.clock()
    )
    entry = FeedEntry(id=POST, link=POST, title="Ein Plädoyer", comments_feed=feed_url)
    await ctx.store.save_entry(blog.id, entry, entry_slug(POST), ctx.clock())
    return blog


async def blog_comments(ctx: BridgeContext, blog: Blog) -> list[Any]:
    return [c for c in await ctx.store.list_comments(blog.id) if c.origin == "blog"]


async def test_unchanged_comment_feed_is_not_read_again(ctx: BridgeContext, serve: Any) -> None:
    feed = CommentFeed(comment_feed(("Kai", "Schöner Text!")))
    url = await serve(feed.app()) + "/comments/feed/"
    blog = await post_with_feed(ctx, url)

    first = await poll_dialog(ctx, blog)
    assert (first.posts, len(first.published)) == (1, 1)
    assert feed.seen[0] == {"If-None-Match": "", "If-Modified-Since": ""}
    source = await ctx.store.get_dialog_source(blog.id, POST)
    assert source is not None
    assert (source.url, source.etag, source.last_modified) == (url, 'W/"c1"', MODIFIED)

    second = await poll_dialog(ctx, blog)
    assert feed.seen[1] == {"If-None-Match": 'W/"c1"', "If-Modified-Since": MODIFIED}
    assert (second.posts, second.published) == (0, [])  # 304: nothing parsed or reconciled
    assert len(await blog_comments(ctx, blog)) == 1


async def test_changed_comment_feed_is_reconciled_and_its_new_validators_kept(
    ctx: BridgeContext, serve: Any
) -> None:
    feed = CommentFeed(comment_feed(("Kai", "Schöner Text!")))
    url = await serve(feed.app()) + "/comments/feed/"
    blog = await post_with_feed(ctx, url)
    await poll_dialog(ctx, blog)

    feed.body = comment_feed(("Kai", "Schöner Text!"), ("Jens", "Jawoll! Danke!"))
    feed.version = 2
    report = await poll_dialog(ctx, blog)
    assert feed.seen[1]["If-None-Match"] == 'W/"c1"'
    assert len(report.published) == 1
    assert sorted(c.author.name for c in await blog_comments(ctx, blog)) == ["Jens", "Kai"]
    source = await ctx.store.get_dialog_source(blog.id, POST)
    assert source is not None and source.etag == 'W/"c2"'
    await poll_dialog(ctx, blog)
    assert feed.seen[2]["If-None-Match"] == 'W/"c2"'


async def test_validators_of_another_url_are_not_sent(ctx: BridgeContext, serve: Any) -> None:
    feed = CommentFeed(comment_feed(("Kai", "Schöner Text!")))
    url = await serve(feed.app()) + "/comments/feed/"
    blog = await post_with_feed(ctx, url)
    await ctx.store.put_dialog_source(
        blog.id, POST, url + "?old", etag='W/"c1"', last_modified=MODIFIED, now=ctx.clock()
    )
    report = await poll_dialog(ctx, blog)
    assert feed.seen[0] == {"If-None-Match": "", "If-Modified-Since": ""}
    assert len(report.published) == 1
    source = await ctx.store.get_dialog_source(blog.id, POST)
    assert source is not None and source.url == url
