"""`feedfed blogs …` and `feedfed poll` as a blog owner uses them, against a real feed host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from tests.conftest import TALKABOUT
from tests.fakes.process import feedfed_env, free_port, run_feedfed

FEED = (TALKABOUT / "feed.rss").read_bytes()


class Blog:
    """A blog with a home page that links its feed; the feed can move (301) or go (410)."""

    def __init__(self) -> None:
        self.feed_status = 200

    async def home(self, request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><html><head><title>talkabout</title>"
            '<link rel="alternate" type="application/rss+xml" title="Feed" href="/feed/">'
            "</head><body>Hallo</body></html>",
            content_type="text/html",
        )

    async def feed(self, request: web.Request) -> web.StreamResponse:
        if self.feed_status == 301:
            raise web.HTTPMovedPermanently("/new-feed/")
        if self.feed_status == 410:
            raise web.HTTPGone()
        return web.Response(body=FEED, content_type="application/rss+xml")

    async def new_feed(self, request: web.Request) -> web.Response:
        return web.Response(body=FEED, content_type="application/rss+xml")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.home)
        app.router.add_get("/feed/", self.feed)
        app.router.add_get("/new-feed/", self.new_feed)
        return app


async def test_blog_lifecycle_through_the_cli(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    blog = Blog()
    site = await serve(blog.app())
    env = feedfed_env(tmp_path, free_port())
    domain = env["FEEDFED_BASE_URL"].removeprefix("http://")

    # Added by its home page: the feed is discovered, the handle comes from the feed title.
    status, out = await run_feedfed(env, "blogs", "add", f"{site}/")
    assert status == 0, out
    assert f"added @talkabout@{domain} for {site}/feed/" in out
    assert "2 new" in out

    status, out = await run_feedfed(env, "blogs", "add", f"{site}/feed/")
    assert status == 1 and "exists" in out

    status, out = await run_feedfed(env, "blogs", "list")
    assert f"@talkabout@{domain}\tok\t{site}/feed/" in out

    # Polling an unchanged feed changes nothing.
    status, out = await run_feedfed(env, "poll", "talkabout")
    assert status == 0, out
    assert "0 new, 0 edited, 0 deleted" in out or "not-modified" in out

    blog.feed_status = 301
    status, out = await run_feedfed(env, "poll", "@talkabout")
    assert status == 0, out
    status, out = await run_feedfed(env, "blogs", "show", "talkabout")
    assert f"feed               {site}/new-feed/" in out

    blog.feed_status = 410
    status, out = await run_feedfed(env, "poll", "talkabout")
    # The moved URL answers; only the old one is gone.
    assert status == 0, out

    status, out = await run_feedfed(env, "blogs", "remove", "talkabout")
    assert status == 0 and f"removed @talkabout@{domain}" in out
    status, out = await run_feedfed(env, "blogs", "show", "talkabout")
    assert status == 1 and "no blog with handle" in out


async def test_a_gone_feed_stops_polling_and_says_so(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    blog = Blog()
    site = await serve(blog.app())
    env = feedfed_env(tmp_path, free_port())
    status, out = await run_feedfed(env, "blogs", "add", f"{site}/feed/", "--handle", "talk")
    assert status == 0, out

    blog.feed_status = 410
    status, out = await run_feedfed(env, "poll", "talk")
    assert "gone" in out
    status, out = await run_feedfed(env, "blogs", "show", "talk")
    assert "gone: the feed answered 410, polling stopped" in out
    assert "next poll          never (feed is gone)" in out
    assert "posts              2" in out, "the posts stay"


async def test_bad_handles_and_urls_are_refused(tmp_path: Path) -> None:
    env = feedfed_env(tmp_path, free_port())
    status, out = await run_feedfed(env, "blogs", "add", "not-a-url")
    assert status == 1 and "must be an absolute http(s) URL" in out
    status, out = await run_feedfed(
        env, "blogs", "add", "http://127.0.0.1:9/feed", "--handle", "Bad Name"
    )
    assert status == 1 and "config --handle: 'Bad Name'" in out, out
    status, out = await run_feedfed(env, "blogs", "list")
    assert "no blogs yet" in out
