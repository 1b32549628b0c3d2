"""The key cache against a hand-written key server: which documents prove a key, and caching.

The server at ``keys.test`` (127.0.0.1 through the test resolver) serves whatever documents a
test puts under a path, so each shape fediverse servers use, and each forgery, is spelled out.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.activitypub.keycache import KeyCache
from bridge.activitypub.keys import INSTANCE_OWNER
from bridge.context import BridgeContext
from bridge.errors import KeyNotOwned, KeyUnavailable
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import premade_keypair
from tests.fakes.resolver import MappingResolver

ACTIVITY_JSON = "application/activity+json"
Serve = Callable[[web.Application], Awaitable[str]]


@functools.cache
def pem(slot: int) -> str:
    """A public key PEM (keys made once per session)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class KeyServer:
    """Documents by path; ``hits`` counts the GETs of each path."""

    base: str = ""
    documents: dict[str, tuple[int, Any]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def put(self, path: str, document: Any, status: int = 200) -> None:
        self.documents[path] = (status, document)

    def redirect(self, path: str, location: str) -> None:
        self.documents[path] = (302, location)

    def actor(self, path: str, *keys: dict[str, Any] | str, **extra: Any) -> dict[str, Any]:
        """An actor document at ``path`` with ``keys`` as its publicKey (one, or a list)."""
        document = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": self.url(path),
            "type": "Person",
            "inbox": self.url(path + "/inbox"),
            "publicKey": keys[0] if len(keys) == 1 else list(keys),
            **extra,
        }
        self.put(path, document)
        return document

    def key(self, key_id: str, owner: str, slot: int = 0) -> dict[str, Any]:
        return {"id": key_id, "owner": owner, "publicKeyPem": pem(slot)}

    async def handle(self, request: web.Request) -> web.Response:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        status, document = self.documents.get(request.path, (404, {"error": "not found"}))
        if status == 302:
            return web.Response(status=302, headers={"Location": document})
        return web.json_response(document, status=status, content_type=ACTIVITY_JSON)


@pytest.fixture(autouse=True)
async def instance_key(ctx: BridgeContext, clock: FakeClock) -> None:
    """The instance actor's key pair, premade (the bridge signs its fetches with it)."""
    await ctx.store.put_keypair_if_absent(premade_keypair(INSTANCE_OWNER, 0, clock))


@pytest.fixture
async def keys_site(serve: Serve, resolver: MappingResolver) -> KeyServer:
    site = KeyServer()
    app = web.Application()
    app.router.add_get("/{tail:.*}", site.handle)
    port = (await serve(app)).rsplit(":", 1)[1]
    resolver.names["keys.test"] = ("127.0.0.1",)
    resolver.names["other.test"] = ("127.0.0.1",)
    site.base = f"http://keys.test:{port}"
    return site


async def test_a_key_embedded_in_its_actor(ctx: BridgeContext, keys_site: KeyServer) -> None:
    alice = keys_site.url("/users/alice")
    keys_site.actor("/users/alice", keys_site.key(alice + "#main-key", alice))
    key = await KeyCache().public_key_for(ctx, alice + "#main-key")
    assert (key.owner, key.public_pem) == (alice, pem(0))
    assert await ctx.store.get_remote_key(alice + "#main-key") == key
    cached = await ctx.store.get_remote_actor(alice)
    assert cached is not None and cached.inbox == alice + "/inbox"


async def test_one_of_several_keys_is_picked_by_its_id(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    alice = keys_site.url("/users/alice")
    keys_site.actor(
        "/users/alice",
        keys_site.key(alice + "#main-key", alice, 0),
        keys_site.key(alice + "#ed25519-key", alice, 1),
    )
    key = await KeyCache().public_key_for(ctx, alice + "#ed25519-key")
    assert key.public_pem == pem(1)


async def test_a_key_document_of_its_own_whose_owner_lists_it(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    alice, key_id = keys_site.url("/users/alice"), keys_site.url("/keys/1")
    keys_site.put("/keys/1", {"@context": [], **keys_site.key(key_id, alice)})
    keys_site.actor("/users/alice", key_id)  # listed by reference only
    key = await KeyCache().public_key_for(ctx, key_id)
    assert key.owner == alice


@pytest.mark.parametrize("owner_lists", ["another key", "nothing"])
async def test_a_key_document_whose_owner_does_not_list_it_is_refused(
    ctx: BridgeContext, keys_site: KeyServer, owner_lists: str
) -> None:
    alice, key_id = keys_site.url("/users/alice"), keys_site.url("/keys/1")
    keys_site.put("/keys/1", keys_site.key(key_id, alice))
    listed = [keys_site.key(alice + "#main-key", alice)] if owner_lists == "another key" else []
    keys_site.actor("/users/alice", *listed) if listed else keys_site.put(
        "/users/alice", {"id": alice, "type": "Person", "inbox": alice + "/inbox"}
    )
    with pytest.raises(KeyNotOwned):
        await KeyCache().public_key_for(ctx, key_id)
    assert await ctx.store.get_remote_key(key_id) is None


async def test_a_key_document_without_owner_is_refused(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    key_id = keys_site.url("/keys/1")
    keys_site.put("/keys/1", {"id": key_id, "publicKeyPem": pem(0)})
    with pytest.raises(KeyNotOwned):
        await KeyCache().public_key_for(ctx, key_id)


async def test_an_embedded_key_owned_by_someone_else_is_refused(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    alice, bob = keys_site.url("/users/alice"), keys_site.url("/users/bob")
    keys_site.actor("/users/alice", keys_site.key(alice + "#main-key", bob))
    with pytest.raises(KeyNotOwned):
        await KeyCache().public_key_for(ctx, alice + "#main-key")


async def test_a_key_without_pem_is_refused(ctx: BridgeContext, keys_site: KeyServer) -> None:
    alice = keys_site.url("/users/alice")
    keys_site.actor("/users/alice", {"id": alice + "#main-key", "owner": alice})
    with pytest.raises(KeyNotOwned):
        await KeyCache().public_key_for(ctx, alice + "#main-key")


async def test_a_goto_social_key_stub_is_read_from_the_claimed_actor(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    tobi = keys_site.url("/users/tobi")
    key_id = tobi + "/main-key"
    stub = keys_site.actor("/users/tobi", keys_site.key(key_id, tobi))
    keys_site.put("/users/tobi/main-key", {**stub, "inbox": None})  # the stub calls itself tobi
    key = await KeyCache().public_key_for(ctx, key_id, actor_hint=tobi)
    assert key.owner == tobi
    assert keys_site.hits == {"/users/tobi/main-key": 1, "/users/tobi": 1}
    # Without the claimed actor, or with one on another origin, nothing vouches for the key.
    keys_site.put("/users/tobi/main-key2", stub)
    with pytest.raises(KeyUnavailable, match="claims id"):
        await KeyCache().public_key_for(ctx, tobi + "/main-key2")
    elsewhere = keys_site.base.replace("keys.test", "other.test") + "/users/tobi"
    keys_site.put("/users/tobi/main-key3", stub)
    with pytest.raises(KeyUnavailable, match="claims id"):
        await KeyCache().public_key_for(ctx, tobi + "/main-key3", actor_hint=elsewhere)
    assert keys_site.hits["/users/tobi"] == 1


async def test_a_key_url_that_redirects_is_refused(
    ctx: BridgeContext, keys_site: KeyServer
) -> None:
    alice = keys_site.url("/users/alice")
    keys_site.actor("/users/alice", keys_site.key(alice + "#main-key", alice))
    keys_site.redirect("/k", alice)
    with pytest.raises(KeyNotOwned, match="redirects"):
        await KeyCache().public_key_for(ctx, keys_site.url("/k"), actor_hint=alice)


@pytest.mark.parametrize("key_id", ["not a url", "mailto:a@b.test", "http://keys.test:1/x"])
async def test_unusable_key_ids_are_unavailable(ctx: BridgeContext, key_id: str) -> None:
    with pytest.raises(KeyUnavailable):
        await KeyCache().public_key_for(ctx, key_id)


async def test_keys_are_refetched_after_their_ttl_and_kept_while_the_server_is_down(
    ctx: BridgeContext, keys_site: KeyServer, clock: FakeClock
) -> None:
    alice = keys_site.url("/users/alice")
    key_id = alice + "#main-key"
    document = keys_site.actor("/users/alice", keys_site.key(key_id, alice))
    cache = KeyCache()
    first = await cache.public_key_for(ctx, key_id)
    clock.advance(60)
    assert await cache.public_key_for(ctx, key_id) == first
    assert keys_site.hits["/users/alice"] == 1
    clock.advance(ctx.config.limits.key_cache_ttl)
    keys_site.put("/users/alice", {"error": "down"}, status=503)
    assert await cache.public_key_for(ctx, key_id) == first  # stale, but the best we have
    assert keys_site.hits["/users/alice"] == 2
    # Once the failure is forgotten it is fetched again; the actor now has a new key.
    clock.advance(ctx.config.limits.key_failure_ttl + 1)
    keys_site.put("/users/alice", {**document, "publicKey": keys_site.key(key_id, alice, 1)})
    renewed = await cache.public_key_for(ctx, key_id)
    assert renewed.public_pem == pem(1) and renewed.fetched_at == clock()


@pytest.mark.parametrize("now", ["gone", "without the key"])
async def test_a_stale_key_is_not_kept_once_its_actor_disowns_it(
    ctx: BridgeContext, keys_site: KeyServer, clock: FakeClock, now: str
) -> None:
    alice = keys_site.url("/users/alice")
    key_id = alice + "#main-key"
    document = keys_site.actor("/users/alice", keys_site.key(key_id, alice))
    cache = KeyCache()
    await cache.public_key_for(ctx, key_id)
    clock.advance(ctx.config.limits.key_cache_ttl + 1)
    if now == "gone":
        keys_site.put("/users/alice", {"error": "gone"}, status=410)
        with pytest.raises(KeyUnavailable) as raised:
            await cache.public_key_for(ctx, key_id)
        assert raised.value.gone
    else:
        keys_site.put("/users/alice", {**document, "publicKey": []})
        with pytest.raises(KeyNotOwned):
            await cache.public_key_for(ctx, key_id)


async def test_refreshing_is_limited_per_key(
    ctx: BridgeContext, keys_site: KeyServer, clock: FakeClock
) -> None:
    alice = keys_site.url("/users/alice")
    key_id = alice + "#main-key"
    keys_site.actor("/users/alice", keys_site.key(key_id, alice))
    cache = KeyCache()
    await cache.public_key_for(ctx, key_id)
    assert await cache.refreshed(ctx, key_id) is None  # just fetched
    clock.advance(ctx.config.limits.key_refresh_interval)
    assert await cache.refreshed(ctx, key_id) is not None
    assert await cache.refreshed(ctx, key_id) is None
    assert keys_site.hits["/users/alice"] == 2


async def test_failures_are_remembered_for_a_while(
    ctx: BridgeContext, keys_site: KeyServer, clock: FakeClock
) -> None:
    key_id = keys_site.url("/users/nobody#main-key")
    cache = KeyCache()
    for _ in range(3):
        with pytest.raises(KeyUnavailable, match="404"):
            await cache.public_key_for(ctx, key_id)
    assert keys_site.hits["/users/nobody"] == 1
    clock.advance(ctx.config.limits.key_failure_ttl)
    with pytest.raises(KeyUnavailable):
        await cache.public_key_for(ctx, key_id)
    assert keys_site.hits["/users/nobody"] == 2


async def test_memory_is_bounded(ctx: BridgeContext, keys_site: KeyServer) -> None:
    cache = KeyCache(max_remembered=3)
    for number in range(6):
        with pytest.raises(KeyUnavailable):
            await cache.public_key_for(ctx, keys_site.url(f"/users/u{number}#k"))
    assert len(cache._failures) == 3 and len(cache._attempts) == 3
    # The oldest failures were forgotten first: u0 is fetched again, u5 is not.
    with pytest.raises(KeyUnavailable):
        await cache.public_key_for(ctx, keys_site.url("/users/u0#k"))
    with pytest.raises(KeyUnavailable):
        await cache.public_key_for(ctx, keys_site.url("/users/u5#k"))
    assert keys_site.hits["/users/u0"] == 2 and keys_site.hits["/users/u5"] == 1
