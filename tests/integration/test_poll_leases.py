"""Two pollers (two contexts, two store instances on one database) share 50 blogs served by a
fake feed host on 127.0.0.1: each blog is polled exactly once per interval, by one of them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bridge.activitypub.urls import Urls
from bridge.context import BridgeContext
from bridge.ingest.poller import run_poller
from bridge.store import open_store
from bridge.store.base import NewBlog, Store
from tests.conftest import FakeClock, make_config
from tests.fakes.feedhost import FeedHost, post
from tests.fakes.postgres import fresh_schema, postgres_url

Serve = Callable[[web.Application], Awaitable[str]]
BLOGS = 50


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[Store]]:
    """Two independent store instances on one fresh database of each backend."""
    if request.param == "sqlite":
        async with _two(f"sqlite:///{tmp_path / 'leases.db'}") as pair:
            yield pair
    else:
        async with fresh_schema(postgres_url()) as url, _two(url) as pair:
            yield pair


class _two:
    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[Store] = []

    async def __aenter__(self) -> list[Store]:
        for _ in range(2):
            self.opened.append(await open_store(self.url))
        await self.opened[0].migrate()
        return self.opened

    async def __aexit__(self, *exc: object) -> None:
        for store in self.opened:
            await store.close()


def _context(
    store: Store,
    name: str,
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
) -> BridgeContext:
    config = make_config(server={"user_agent": name})
    return BridgeContext(config, store, http, remote, Urls(config.base_url), clock)


async def _until(host: FeedHost, rounds: int) -> None:
    async with asyncio.timeout(10):
        for n in range(BLOGS):
            await host.wait_hits(f"/feed/{n}", rounds)
    # Several more ticks of both pollers: nothing may be polled again meanwhile.
    await asyncio.sleep(0.3)


async def test_two_pollers_poll_each_blog_once_per_interval(
    stores: list[Store],
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
    serve: Serve,
) -> None:
    host = FeedHost(items=[post(1), post(2)])
    host.delay = 0.01  # polls overlap, so both pollers are busy at once
    await host.start(serve)
    blogs = [
        await stores[0].add_blog(NewBlog(f"b{n}", f"{host.base}/feed/{n}"), clock())
        for n in range(BLOGS)
    ]
    a = _context(stores[0], "poller-a", http, remote, clock)
    b = _context(stores[1], "poller-b", http, remote, clock)
    stop = asyncio.Event()
    pollers = [
        asyncio.create_task(run_poller(ctx, stop, tick=0.02, concurrency=4, worker=name))
        for ctx, name in ((a, "a"), (b, "b"))
    ]
    try:
        await _until(host, 1)
        assert host.hits == Counter({f"/feed/{n}": 1 for n in range(BLOGS)})
        agents = Counter(headers.get("User-Agent") for _, headers in host.requests)
        assert set(agents) == {"poller-a", "poller-b"}, f"both pollers work: {agents}"

        # Past the longest interval: every blog is due again, and polled once again.
        clock.advance(7 * 3600)
        await _until(host, 2)
        assert host.hits == Counter({f"/feed/{n}": 2 for n in range(BLOGS)})
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*pollers), 5)

    for blog in blogs:
        stored = await stores[1].get_blog_by_id(blog.id)
        assert stored is not None and stored.feed.status == "ok"
        # Every lease was given back once its poll was stored.
        assert not await stores[1].release_blog_lease(blog.id, "a")
        assert not await stores[1].release_blog_lease(blog.id, "b")


async def test_stopping_mid_poll_releases_the_lease_for_another_poller(
    stores: list[Store],
    http: aiohttp.ClientSession,
    remote: aiohttp.ClientSession,
    clock: FakeClock,
    serve: Serve,
) -> None:
    host = FeedHost(items=[post(1)])
    host.delay = 30.0  # the poll hangs until the grace period cuts it off
    await host.start(serve)
    blog = await stores[0].add_blog(NewBlog("slow", f"{host.base}/feed/slow"), clock())
    a = _context(stores[0], "poller-a", http, remote, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(run_poller(a, stop, tick=0.02, worker="a", shutdown_grace=0.1))
    async with asyncio.timeout(5):
        await host.wait_hits("/feed/slow", 1)
    assert await stores[1].claim_due_blogs(clock(), 10, 300, "b") == [], "leased to a"
    stop.set()
    await asyncio.wait_for(task, 2)
    # Not left to the five-minute lease: the other poller may take the blog at once.
    assert [b.id for b in await stores[1].claim_due_blogs(clock(), 10, 300, "b")] == [blog.id]
