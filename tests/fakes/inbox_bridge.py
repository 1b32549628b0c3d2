"""The bridge's inbox side on a real server of 127.0.0.1, and a small fediverse to talk to it.

:func:`running_bridge` serves the inboxes (and the actor documents fake instances fetch to
verify what the bridge sends) on an ephemeral port, with a context whose base URL is that
server's, a real SQLite store, the guarded session through the test's resolver and the test's
clock. :class:`InboxBridge` runs the jobs by hand and reads what the store holds.
:func:`fake_fediverse` starts three fake instances (:class:`World`) with their own keys.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.activitypub.addresses import AddressPolicy, open_remote_session
from bridge.activitypub.keycache import KeyCache
from bridge.activitypub.keys import INSTANCE_OWNER
from bridge.activitypub.urls import Urls
from bridge.appkeys import CONTEXT
from bridge.context import BridgeContext
from bridge.federation import inbox
from bridge.federation.delivery import Deliverer
from bridge.federation.dispatch import process_inbound
from bridge.jobs import DELIVER, INBOUND
from bridge.store.base import Blog, BlogSettings, InboundActivity, Job, KeyPair, NewBlog
from bridge.store.sqlite import SQLiteStore
from bridge.web import backfeed_routes
from bridge.web import routes as ap_routes
from tests.conftest import FakeClock, make_config
from tests.fakes import httpsig
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_actors import FakeActor
from tests.fakes.instance_server import FakeServer
from tests.fakes.resolver import MappingResolver

LOOPBACK_POLICY = AddressPolicy(allow_private=True)


@functools.cache
def _private_pem(slot: int) -> str:
    """RSA-2048 keys made once per test session (making one costs ~50 ms)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def premade_keypair(owner: str, slot: int, clock: FakeClock) -> KeyPair:
    """A key pair for ``owner`` from the session's premade keys."""
    private = serialization.load_pem_private_key(_private_pem(slot).encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(owner, _private_pem(slot), public.decode("ascii"), clock())


@functools.cache
def fake_key(slot: int) -> rsa.RSAPrivateKey:
    """RSA keys for the fake actors, made once per session."""
    return httpsig.new_key()


@dataclass
class World:
    """alice on mastodon.test, bob on social.test (no shared inbox), mallory on evil.test."""

    server: FakeServer
    mastodon: FakeInstance
    social: FakeInstance
    evil: FakeInstance
    alice: FakeActor
    bob: FakeActor
    mallory: FakeActor

    def site_of(self, actor: FakeActor) -> FakeInstance:
        """The instance ``actor`` lives on."""
        return next(site for site in (self.mastodon, self.social, self.evil) if actor.site is site)

    async def send(self, actor: FakeActor, bridge: InboxBridge, activity: Any) -> None:
        """POST ``activity`` to the bridge's shared inbox as ``actor``; run the inbound job."""
        status, text = await self.site_of(actor).send(actor, bridge.inbox(None), activity)
        assert status == 202, text
        await bridge.run_inbound()

    async def follow(
        self, bridge: InboxBridge, actor: FakeActor | None = None, handle: str = "talkabout"
    ) -> dict[str, Any]:
        """``actor`` (alice by default) follows a blog; the Follow is processed."""
        actor = actor or self.alice
        activity = self.site_of(actor).follow(actor, bridge.actor(handle))
        await self.send(actor, bridge, activity)
        return activity


@asynccontextmanager
async def fake_fediverse(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[World]:
    """Three fake instances on one server, their names known to the bridge's resolver."""
    async with FakeServer() as server:
        mastodon = server.instance("mastodon.test", clock=clock, key=fake_key(10))
        social = server.instance("social.test", clock=clock, key=fake_key(11))
        evil = server.instance("evil.test", clock=clock, key=fake_key(12))
        alice = mastodon.add_actor("alice", key=fake_key(0))
        bob = social.add_actor("bob", key=fake_key(1), shared_inbox=False)
        mallory = evil.add_actor("mallory", key=fake_key(2))
        for name in server.names:
            resolver.names[name] = ("127.0.0.1",)
        yield World(server, mastodon, social, evil, alice, bob, mallory)


@dataclass
class InboxBridge:
    """A running bridge's inbox side and what it holds."""

    ctx: BridgeContext
    base: str
    keys: KeyCache
    blogs: dict[str, Blog]

    @property
    def store(self) -> SQLiteStore:
        """The real SQLite store (tests read its tables directly)."""
        store = self.ctx.store
        assert isinstance(store, SQLiteStore)
        return store

    def actor(self, handle: str = "talkabout") -> str:
        """A blog's actor id."""
        return self.ctx.urls.actor(handle)

    def inbox(self, handle: str | None = "talkabout") -> str:
        """A blog's personal inbox, or the shared inbox for None."""
        return self.ctx.urls.inbox(handle) if handle else self.ctx.urls.shared_inbox()

    async def count(self, table: str) -> int:
        """Rows in one table."""
        rows = await self.store._rows(f"SELECT COUNT(*) FROM {table}")
        return int(rows[0][0])

    async def assert_nothing_kept(self) -> None:
        """Nothing was stored, queued or followed."""
        assert await self.count("inbound") == 0
        assert await self.count("jobs") == 0
        assert await self.count("followers") == 0

    async def last_state(self) -> tuple[str, str | None]:
        """How processing of the latest inbound activity ended, and why."""
        latest = (await self.inbound())[-1]
        return latest.state, latest.error

    async def inbound(self) -> list[InboundActivity]:
        """Every stored inbound activity, oldest first."""
        rows = await self.store._rows("SELECT id FROM inbound ORDER BY id")
        found = [await self.store.get_inbound(int(row[0])) for row in rows]
        return [item for item in found if item is not None]

    async def queued(self, kind: str) -> list[Job]:
        """Queued jobs of ``kind``, oldest first."""
        jobs = await self.store.list_jobs("queued", kind, limit=1000)
        return sorted(jobs, key=lambda job: job.id)

    async def run_inbound(self) -> list[Job]:
        """Process every due inbound job as the worker would; return them."""
        jobs = await self.store.claim_jobs([INBOUND], self.ctx.clock(), 100, 60, "test")
        for job in jobs:
            await process_inbound(self.ctx, job)
            await self.store.finish_job(job.id, self.ctx.clock())
        return jobs

    async def sent(self) -> list[dict[str, Any]]:
        """The activities queued for delivery (Accept, Reject …), oldest first."""
        return [job.payload["activity"] for job in await self.queued(DELIVER)]

    async def deliver(self) -> list[int | None]:
        """Deliver every queued direct send with the real delivery handler."""
        deliverer = Deliverer(timeout=5)
        try:
            jobs = await self.store.claim_jobs([DELIVER], self.ctx.clock(), 100, 60, "test")
            results = []
            for job in jobs:
                results.append(await deliverer(self.ctx, job))
                await self.store.finish_job(job.id, self.ctx.clock())
            return results
        finally:
            deliverer.close()


@asynccontextmanager
async def running_bridge(
    store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    *,
    policy: AddressPolicy = LOOPBACK_POLICY,
    limits: dict[str, Any] | None = None,
    blogs: dict[str, BlogSettings] | None = None,
) -> AsyncIterator[InboxBridge]:
    """Serve the inboxes on 127.0.0.1 with a context whose base URL is the server's."""
    port = unused_port()
    config = make_config(f"http://127.0.0.1:{port}", limits=limits or {})
    async with open_remote_session(policy, user_agent="feedfed-test", resolver=resolver) as remote:
        ctx = BridgeContext(
            config=config,
            store=store,
            http=http,
            remote=remote,
            urls=Urls(config.base_url),
            clock=clock,
        )
        await store.put_keypair_if_absent(premade_keypair(INSTANCE_OWNER, 0, clock))
        made = {}
        for slot, (handle, settings) in enumerate(
            (blogs or {"talkabout": BlogSettings()}).items(), start=1
        ):
            new = NewBlog(handle, f"http://127.0.0.1:1/{handle}/feed", settings)
            made[handle] = await store.add_blog(new, clock())
            await store.put_keypair_if_absent(premade_keypair(handle, slot, clock))
        app = web.Application()
        app[CONTEXT] = ctx
        inbox.install(app)
        app.add_routes(ap_routes.routes)
        app.add_routes(backfeed_routes.routes)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            yield InboxBridge(ctx, config.base_url, app[inbox.KEY_CACHE], made)
        finally:
            await server.close()
