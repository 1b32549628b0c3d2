"""Bad feeds via the real command: a clear error in `blogs show`, nothing stored, still serving."""

from __future__ import annotations

import asyncio
import functools
import gzip
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import TALKABOUT
from tests.fakes.process import feedfed_env, free_port, run_feedfed, running_bridge

GOOD = (TALKABOUT / "feed.rss").read_bytes()


@functools.cache
def bomb() -> bytes:
    """200 MB of zeros, gzip-compressed to about 200 KB: the classic bomb."""
    return gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)


class MutableFeed:
    def __init__(self) -> None:
        self.mode = "good"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "good":
            return web.Response(body=GOOD, content_type="application/rss+xml")
        if self.mode == "malformed":
            return web.Response(
                body=b"<?xml version='1.0'?><rss><channel><title>x</titl></rss",
                content_type="application/rss+xml",
            )
        if self.mode == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            await resp.prepare(request)
            chunk = b"<!-- " + b"x" * (1024 * 1024 - 9) + b" -->"
            for _ in range(50):
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        if self.mode == "bomb":
            return web.Response(
                body=bomb(),
                headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
            )
        assert self.mode == "slow"
        await asyncio.sleep(8)
        return web.Response(body=GOOD, content_type="application/rss+xml")


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed", "not a feed"),
        ("huge", "larger than"),
        ("bomb", "larger than"),
        ("slow", "timed out"),
    ],
)
async def test_bad_feed_is_reported_and_nothing_changes(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]], mode: str, message: str
) -> None:
    if mode == "bomb":
        bomb()  # compress it now: doing it inside the handler would eat the fetch timeout
    feed = MutableFeed()
    app = web.Application()
    app.router.add_get("/feed/", feed.handle)
    feed_url = f"{await serve(app)}/feed/"
    config = tmp_path / "feedfed.toml"
    config.write_text("[limits]\nmax_feed_bytes = 10485760\nfetch_timeout = 2.0\n")
    env = feedfed_env(tmp_path, free_port(), {"FEEDFED_CONFIG": str(config)})

    status, out = await run_feedfed(env, "blogs", "add", feed_url, "--handle", "talkabout")
    assert status == 0, out

    feed.mode = mode
    status, out = await run_feedfed(env, "poll", "talkabout")
    assert status == 1, out
    assert message in out.lower(), out

    status, out = await run_feedfed(env, "blogs", "show", "talkabout")
    assert status == 0, out
    assert "failing" in out
    assert message in out.lower()
    assert "failures in a row  1" in out
    assert "posts              2" in out

    async with (
        running_bridge(env) as base,
        aiohttp.ClientSession() as http,
        http.get(
            f"{base}/users/talkabout/outbox", headers={"Accept": "application/activity+json"}
        ) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json(content_type=None))["totalItems"] == 2


async def test_adding_a_page_without_feed_stores_nothing(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>x</title></head></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", page)
    base = await serve(app)
    env = feedfed_env(tmp_path, free_port())
    status, out = await run_feedfed(env, "blogs", "add", f"{base}/", "--handle", "nofeed")
    assert status == 1
    assert "feedfed: error:" in out and "no feed" in out.lower()
    status, out = await run_feedfed(env, "blogs", "list")
    assert "no blogs yet" in out
