"""Comment feeds over HTTP: a real SQLite store, the bridge's routes on 127.0.0.1.

Comments are stored through the CommentStore role, as the inbound handlers store them;
the feeds are fetched as a feed reader fetches them, conditional GETs included.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import feedparser
from aiohttp import web
from multidict import CIMultiDict

from bridge.backfeed.commentfeeds import THREAD_NS
from bridge.context import BridgeContext
from tests.conftest import FakeClock
from tests.fakes.seed_backfeed import (
    POST_URL,
    Thread,
    at,
    person,
    readers_app,
    talkabout_thread,
)

Serve = Callable[[web.Application], Awaitable[str]]
SEBASTIAN = person("mastodon.example", "sebastiankeil", "Sebastian Keil")
SEAN = person("social.example", "seankollak", "Sean Kollak")
TIMO = person("gts.example", "timo", "Timo")


async def setup(ctx: BridgeContext, clock: FakeClock, serve: Serve) -> tuple[Thread, str]:
    thread = await talkabout_thread(ctx.store, ctx.urls, clock())
    return thread, await serve(readers_app(ctx))


def path(url: str, ctx: BridgeContext) -> str:
    return url.removeprefix(ctx.urls.base)


async def fetch(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, bytes, CIMultiDict[str]]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.read(), CIMultiDict(response.headers)


async def seed(thread: Thread) -> dict[str, Any]:
    first = await thread.comment(
        "https://mastodon.example/notes/1", SEBASTIAN, "<p>Gut gesagt.</p>", published=at(10)
    )
    held = await thread.comment(
        "https://social.example/notes/2",
        SEAN,
        "<p>Buy now</p>",
        published=at(20),
        state="held",
    )
    reply = await thread.comment(
        "https://gts.example/notes/3",
        TIMO,
        "<p>Genau!</p>",
        published=at(30),
        parent=first.object_id,
    )
    return {"first": first, "held": held, "reply": reply}


async def test_post_feeds_list_published_comments_newest_first(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    made = await seed(thread)
    rss_url = ctx.urls.post_comments_feed("talkabout", thread.post.slug, "rss")
    atom_url = ctx.urls.post_comments_feed("talkabout", thread.post.slug, "atom")

    status, body, headers = await fetch(http, base + path(rss_url, ctx))
    assert status == 200
    assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert [e.id for e in parsed.entries] == [
        made["reply"].object_id,
        made["first"].object_id,
    ]
    assert parsed.feed.title.startswith("Comments on: Ein Plädoyer für die Mitteilung")
    assert parsed.entries[1].author == "Sebastian Keil"
    assert parsed.entries[1].link == ctx.urls.comment_page(
        "talkabout", thread.post.slug, made["first"].slug
    )

    status, body, headers = await fetch(http, base + path(atom_url, ctx))
    assert status == 200
    assert headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(body)
    threads = [(el.get("ref"), el.get("href")) for el in root.iter(f"{{{THREAD_NS}}}in-reply-to")]
    assert threads == [
        (
            made["first"].object_id,
            ctx.urls.comment_page("talkabout", thread.post.slug, made["first"].slug),
        ),
        (thread.object_id, POST_URL),
    ]
    assert b"Buy now" not in body


async def test_conditional_get(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    made = await seed(thread)
    url = base + path(ctx.urls.post_comments_feed("talkabout", thread.post.slug, "atom"), ctx)
    status, _, headers = await fetch(http, url)
    assert status == 200
    etag, modified = headers["ETag"], headers["Last-Modified"]

    status, again, _ = await fetch(http, url, **{"If-None-Match": etag})
    assert (status, again) == (304, b"")
    status, _, _ = await fetch(http, url, **{"If-Modified-Since": modified})
    assert status == 304
    status, _, _ = await fetch(http, url, **{"If-None-Match": '"stale"'})
    assert status == 200

    # A deletion changes the feed: the old ETag no longer matches, the comment is gone.
    clock.advance(3600)
    await ctx.store.delete_comment(made["reply"].object_id, clock())
    status, changed, headers = await fetch(http, url, **{"If-None-Match": etag})
    assert status == 200
    assert headers["ETag"] != etag
    assert made["reply"].object_id.encode() not in changed
    # ... and Last-Modified moved with it, for readers that send only the date.
    status, _, _ = await fetch(http, url, **{"If-Modified-Since": modified})
    assert status == 200

    # Approving the held comment changes the ETag too.
    etag = headers["ETag"]
    await ctx.store.set_comment_state(made["held"].object_id, "published")
    status, approved, headers = await fetch(http, url, **{"If-None-Match": etag})
    assert status == 200 and b"Buy now" in approved


async def test_blog_feed_names_the_post(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    made = await seed(thread)
    for kind in ("rss", "atom"):
        url = base + path(ctx.urls.blog_comments_feed("talkabout", kind), ctx)
        status, body, _ = await fetch(http, url)
        assert status == 200
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        assert [e.id for e in parsed.entries] == [
            made["reply"].object_id,
            made["first"].object_id,
        ]
        title = parsed.entries[1].title.replace("\u2068", "").replace("\u2069", "")
        assert title == (
            "Comment on „Ein Plädoyer für die Mitteilung: Mit. Anderen. Teilen. Oder: "
            "Teilhaben lassen als Kern von Social Media.“ by Sebastian Keil"
        )


async def test_feeds_of_unknown_and_deleted_posts(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    await seed(thread)
    assert (await fetch(http, f"{base}/@nobody/comments.rss"))[0] == 404
    assert (await fetch(http, f"{base}/@talkabout/{'0' * 20}/comments.rss"))[0] == 404
    assert (await fetch(http, f"{base}/@talkabout/comments.json"))[0] == 404
    await ctx.store.mark_entry_deleted(thread.blog.id, thread.post.entry_id, clock())
    url = ctx.urls.post_comments_feed("talkabout", thread.post.slug, "rss")
    assert (await fetch(http, base + path(url, ctx)))[0] == 410
    # The blog's feed leaves the deleted post's comments out.
    status, body, _ = await fetch(http, f"{base}/@talkabout/comments.rss")
    assert status == 200 and feedparser.parse(body).entries == []


async def test_empty_feed_is_valid(
    ctx: BridgeContext, clock: FakeClock, serve: Serve, http: aiohttp.ClientSession
) -> None:
    thread, base = await setup(ctx, clock, serve)
    for kind in ("rss", "atom"):
        url = ctx.urls.post_comments_feed("talkabout", thread.post.slug, kind)
        status, body, _ = await fetch(http, base + path(url, ctx))
        assert status == 200
        ET.fromstring(body)
        parsed = feedparser.parse(body)
        assert not parsed.bozo and parsed.entries == []
