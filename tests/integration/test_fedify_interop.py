"""Interop with a real implementation: Fedify 1.5 follows a blog, gets the Accept, gets a post.

The bridge runs in this process on a real port (the public URL equals the listening one, so
Fedify can fetch its actor and keys); Fedify runs in Node. Fedify only records activities whose
signatures it verified, so "received" here means "verified by Fedify".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from bridge.app import create_app
from bridge.appkeys import CONTEXT
from bridge.ingest.poller import poll_blog
from tests.conftest import TALKABOUT, make_config
from tests.fakes.fedify_peer import FedifyPeer, require_fedify
from tests.fakes.process import free_port

pytestmark = pytest.mark.fedify

FEED = (TALKABOUT / "feed.rss").read_text(encoding="utf-8")
NEW_ITEM = """<item>
    <title>Teilnehmen lassen: Jawoll!</title>
    <link>http://www.talkabout.de/teilnehmen-lassen/</link>
    <pubDate>Mon, 22 Feb 2010 09:00:00 +0000</pubDate>
    <guid isPermaLink="false">http://www.talkabout.de/?p=1250</guid>
    <description><![CDATA[Der Dialog ist die Kür.]]></description>
  </item>
"""


class Feed:
    def __init__(self) -> None:
        self.body = FEED

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(text=self.body, content_type="application/rss+xml")

    def publish(self) -> None:
        self.body = FEED.replace("<item>", NEW_ITEM + "<item>", 1)


@pytest.fixture
async def peer() -> AsyncIterator[FedifyPeer]:
    require_fedify()
    async with FedifyPeer() as running:
        yield running


async def test_fedify_follows_gets_accept_and_receives_a_post(
    tmp_path: Path, serve: Callable[[web.Application], Awaitable[str]], peer: FedifyPeer
) -> None:
    feed = Feed()
    feed_app = web.Application()
    feed_app.router.add_get("/feed/", feed.handle)
    feed_url = f"{await serve(feed_app)}/feed/"

    port = free_port()
    config = make_config(
        f"http://127.0.0.1:{port}",
        server={"allow_private_addresses": True},
        database={"url": f"sqlite:///{tmp_path / 'bridge.db'}"},
        blogs=[{"handle": "talkabout", "feed_url": feed_url}],
    )
    app = create_app(config, poll_tick=0.2)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ctx = app[CONTEXT]
        actor_url = ctx.urls.actor("talkabout")
        for _ in range(100):
            blog = await ctx.store.get_blog("talkabout")
            if blog is not None and blog.feed.first_poll_done:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the first poll did not happen")

        followed = await peer.follow(actor_url)
        accept = await peer.wait_for("Accept", timeout=20)
        assert accept.actor == actor_url
        assert accept.verified
        assert followed.id
        assert await ctx.store.get_follower(blog.id, peer.actor_id) is not None

        feed.publish()
        report = await poll_blog(ctx, blog)
        assert report.created == 1, report
        create = await peer.wait_for("Create", timeout=30)
        assert create.actor == actor_url
        assert create.verified
        assert create.object_type == "Article"
        article = create.activity["object"]
        assert article["name"] == "Teilnehmen lassen: Jawoll!"
        # The back catalogue was not pushed: the only Create is the new post.
        creates = [r for r in await peer.received() if r.type == "Create"]
        assert len(creates) == 1
    finally:
        await runner.cleanup()
