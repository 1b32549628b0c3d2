"""The whole bridge, writing into a fake WordPress blog: for the talkabout scenario end to end.

:func:`talkabout_blog` starts the fake WordPress blog (:class:`FakeWordPressBlog`) with the post
``?p=1234`` and its feed (the talkabout fixture, its URLs moved onto the fake blog's host, so
nothing ever names www.talkabout.de). :func:`serve_bridge` runs the bridge on a fixed port of
127.0.0.1: its inboxes and every page readers and WordPress read (the linkback and comment
pages a pingback's source names), on a context whose store may be reopened, so a test can
stop the bridge and start it again on the same SQLite file. :func:`drain` runs the real job
worker with the real handlers (``push`` through the WordPress sink, ``dialog``, ``deliver``,
``fanout``) and moves the fake clock along until the queue is empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bridge.activitypub.addresses import open_remote_session
from bridge.activitypub.keys import INSTANCE_OWNER
from bridge.activitypub.urls import Urls, entry_slug
from bridge.appkeys import CONTEXT
from bridge.backfeed.dialog import DIALOG
from bridge.context import BridgeContext
from bridge.entries import FeedEntry
from bridge.federation import inbox
from bridge.federation.delivery import Deliverer
from bridge.ingest.parse import parse_feed
from bridge.jobs import DELIVER, FANOUT, INBOUND, PUSH
from bridge.jobs.registry import job_handlers
from bridge.jobs.worker import JobWorker
from bridge.store.base import BlogSettings, Job, NewBlog, StoredEntry
from bridge.store.sqlite import SQLiteStore
from bridge.web import backfeed_routes, pages, post_collections
from bridge.web import routes as ap_routes
from tests.conftest import TALKABOUT, FakeClock, make_config
from tests.fakes.inbox_bridge import LOOPBACK_POLICY, InboxBridge, premade_keypair
from tests.fakes.resolver import MappingResolver
from tests.fakes.wordpress_blog import USER, FakeWordPressBlog

ORIGIN = "http://www.talkabout.de"
POST_NUMBER = 1234
POST_SLUG = "ein-pladoyer-fur-die-mitteilung"
PASSWORD_ENV = "FEEDFED_TEST_TALKABOUT_WP_PASSWORD"
WORKER_KINDS = (DELIVER, FANOUT, PUSH, DIALOG)


def talkabout_feed(base: str) -> bytes:
    """The talkabout fixture feed as the fake blog at ``base`` serves it."""
    text = (TALKABOUT / "feed.rss").read_text(encoding="utf-8")
    return text.replace(ORIGIN, base).encode("utf-8")


def talkabout_post(base: str) -> FeedEntry:
    """The post "Ein Plädoyer für die Mitteilung" (guid ``?p=1234``) of the fake blog's feed,
    parsed by the bridge's own parser."""
    parsed = parse_feed(talkabout_feed(base), url=f"{base}/feed/")
    return next(e for e in parsed.entries if e.id == f"{base}/?p={POST_NUMBER}")


@asynccontextmanager
async def talkabout_blog(fetcher: aiohttp.ClientSession) -> AsyncIterator[FakeWordPressBlog]:
    """The fake WordPress blog with the post, serving on 127.0.0.1 until the block ends."""
    blog = FakeWordPressBlog(fetcher)
    blog.add_post(POST_NUMBER, POST_SLUG, "Ein Plädoyer für die Mitteilung")
    await blog.start()
    try:
        yield blog
    finally:
        await blog.stop()


def wordpress_settings(blog: FakeWordPressBlog, **extra: Any) -> BlogSettings:
    """Settings of a blog writing through the WordPress sink (password from PASSWORD_ENV)."""
    settings = BlogSettings(
        sink="wordpress",
        wordpress_url=blog.url,
        wordpress_user=USER,
        wordpress_password_env=PASSWORD_ENV,
    )
    return replace(settings, **extra)


@asynccontextmanager
async def serve_bridge(
    store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    port: int,
    settings: BlogSettings,
    feed_url: str,
) -> AsyncIterator[InboxBridge]:
    """The bridge on ``http://127.0.0.1:{port}``: inboxes, pages, collections and comment
    feeds. The blog ``talkabout`` and the keys are made on the first start only."""
    config = make_config(f"http://127.0.0.1:{port}")
    async with open_remote_session(
        LOOPBACK_POLICY, user_agent="feedfed-test", resolver=resolver
    ) as remote:
        ctx = BridgeContext(
            config=config,
            store=store,
            http=http,
            remote=remote,
            urls=Urls(config.base_url),
            clock=clock,
        )
        await store.put_keypair_if_absent(premade_keypair(INSTANCE_OWNER, 0, clock))
        await store.put_keypair_if_absent(premade_keypair("talkabout", 1, clock))
        blog = await store.get_blog("talkabout")
        if blog is None:
            blog = await store.add_blog(NewBlog("talkabout", feed_url, settings), clock())
        app = web.Application()
        app[CONTEXT] = ctx
        inbox.install(app)
        for routes in (ap_routes, backfeed_routes, post_collections, pages):
            app.add_routes(routes.routes)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            yield InboxBridge(ctx, config.base_url, app[inbox.KEY_CACHE], {"talkabout": blog})
        finally:
            await server.close()


async def save_post(bridge: InboxBridge, entry: FeedEntry) -> StoredEntry:
    """Store the post as the feed poller would."""
    blog = bridge.blogs["talkabout"]
    return await bridge.store.save_entry(blog.id, entry, entry_slug(entry.id), bridge.ctx.clock())


async def pending(store: SQLiteStore, kinds: tuple[str, ...] = WORKER_KINDS) -> list[Job]:
    """Jobs of ``kinds`` still queued or running."""
    found: list[Job] = []
    for state in ("queued", "running"):
        for kind in kinds:
            found.extend(await store.list_jobs(state, kind, limit=1000))
    return found


async def dead(store: SQLiteStore) -> list[Job]:
    """Jobs buried for good (of any kind)."""
    return await store.list_jobs("dead", None, limit=1000)


async def run_worker(ctx: BridgeContext, deliverer: Deliverer, *, limit: float = 10.0) -> None:
    """Run a real worker until nothing it handles is due now (or ``limit`` seconds pass)."""
    handlers = job_handlers(WORKER_KINDS, deliverer)
    worker = JobWorker(ctx, handlers, worker_id="talkabout-test", poll_interval=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    assert isinstance(ctx.store, SQLiteStore)
    store = ctx.store
    try:
        async with asyncio.timeout(limit):
            # The worker signals nothing a test could wait on: poll the queue.
            while not await _nothing_due(store, ctx.clock()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        await task


async def _nothing_due(store: SQLiteStore, now: datetime) -> bool:
    jobs = await pending(store)
    return all(job.state == "queued" and job.run_at > now for job in jobs)


async def work(bridge: InboxBridge) -> None:
    """Run what is due now (the worker's kinds and inbound), without moving the clock."""
    deliverer = Deliverer(timeout=5)
    try:
        await run_worker(bridge.ctx, deliverer)
        await bridge.run_inbound()
    finally:
        deliverer.close()


async def drain(
    bridge: InboxBridge, clock: FakeClock, *, step: float = 60.0, rounds: int = 40
) -> int:
    """Run the worker, moving the clock ``step`` seconds between runs, until no job is left
    (inbound jobs included: those the test sends are run by ``bridge.run_inbound``); the
    number of clock steps it took."""
    deliverer = Deliverer(timeout=5)
    try:
        for taken in range(rounds):
            await run_worker(bridge.ctx, deliverer)
            await bridge.run_inbound()
            if not await pending(bridge.store, (*WORKER_KINDS, INBOUND)):
                return taken
            clock.advance(step)
    finally:
        deliverer.close()
    left = [(job.kind, job.payload, job.last_error) for job in await pending(bridge.store)]
    raise AssertionError(f"jobs left after {rounds} steps: {left}")
