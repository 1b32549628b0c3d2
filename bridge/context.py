"""The running bridge's shared resources, handed to every edge that does I/O."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
from aiohttp.abc import AbstractResolver

from bridge.activitypub.addresses import AddressPolicy, announce_policy, open_remote_session
from bridge.activitypub.urls import Urls
from bridge.config import Config
from bridge.errors import StoreError
from bridge.metrics import Metrics
from bridge.store import open_store
from bridge.store.base import BlogSettings, NewBlog, Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class BridgeContext:
    """Config, store, the HTTP client sessions, URL builder, clock and metrics of a process.

    ``http`` fetches what the operator configured (feeds, the blog's own API); ``remote``
    is the guarded session for everything a remote party names (actors, keys, inboxes).
    ``metrics`` is what ``/metrics`` serves (its own registry, one per context).
    """

    config: Config
    store: Store
    http: aiohttp.ClientSession
    remote: aiohttp.ClientSession
    urls: Urls
    clock: Clock = field(default=utc_now)
    # Set whenever this process enqueues jobs, so its workers start at once instead of
    # waiting for their next poll of the queue.
    jobs_ready: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Metrics = field(default_factory=Metrics)


@asynccontextmanager
async def open_context(
    config: Config,
    *,
    resolver: AbstractResolver | None = None,
    clock: Clock = utc_now,
    migrate: bool = True,
    metrics: Metrics | None = None,
) -> AsyncIterator[BridgeContext]:
    """Open the store (migrating it), sync config blogs, start the one ClientSession.

    ``resolver`` replaces DNS resolution (tests map names to loopback with it); ``metrics``
    is the process's metrics (default: a fresh set).
    """
    store = await open_store(config.database_url)
    try:
        if migrate:
            applied = await store.migrate()
            if applied:
                log.info("migrations applied versions=%s", ",".join(map(str, applied)))
        elif pending := await store.pending_migrations():
            raise StoreError(f"database needs migrations {pending}: run `feedfed migrate`")
        await sync_config_blogs(store, config, clock())
        connector = aiohttp.TCPConnector(
            resolver=resolver, limit=100, limit_per_host=8, ttl_dns_cache=300
        )
        policy = AddressPolicy(allow_private=config.allow_private_addresses)
        announce_policy(policy, log)
        async with (
            aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": config.user_agent}
            ) as http,
            open_remote_session(policy, user_agent=config.user_agent, resolver=resolver) as remote,
        ):
            yield BridgeContext(
                config=config,
                store=store,
                http=http,
                remote=remote,
                urls=Urls(config.base_url),
                clock=clock,
                metrics=metrics or Metrics(),
            )
    finally:
        await store.close()


async def sync_config_blogs(store: Store, config: Config, now: datetime) -> None:
    """Insert or update the blogs the config file declares."""
    for blog in config.blogs:
        settings = BlogSettings(
            object_type=blog.object_type,
            note_template=blog.note_template,
            manually_approves_followers=blog.manually_approves_followers,
            display_name=blog.display_name,
            summary=blog.summary,
            moderation=blog.moderation,
            sink=blog.sink,
            wordpress_url=blog.wordpress_url,
            wordpress_user=blog.wordpress_user,
            wordpress_password_env=blog.wordpress_password_env,
            likes_as_comments=blog.likes_as_comments,
            linkbacks_per_minute=blog.linkbacks_per_minute,
        )
        await store.sync_config_blog(
            NewBlog(blog.handle, blog.feed_url, settings, from_config=True), now
        )
