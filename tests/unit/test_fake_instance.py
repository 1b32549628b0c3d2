"""The fake fediverse instances (tests/fakes/instance*.py) on 127.0.0.1, driven by a
stand-in bridge that signs with keys of its own: verification against fetched keys, virtual
hosting, actor documents, the behaviour knobs, follow bookkeeping and the counts."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from yarl import URL

from tests.fakes import httpsig
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_server import FakeServer
from tests.fakes.instance_signing import Tamper, sign_request
from tests.fakes.resolver import LOOPBACK, MappingResolver, TripwireError


@pytest.fixture(scope="module")
def keys() -> list[rsa.RSAPrivateKey]:
    """A few RSA-2048 keys made once: fresh ones cost ~40 ms each."""
    return [httpsig.new_key() for _ in range(4)]


# fakes on 127.0.0.1, driven by a stand-in bridge


class StandIn:
    """A stand-in bridge on ``bridge.test``: an actor and an instance actor with keys, and an
    inbox that checks the fakes' signatures against the fake actors' published keys."""

    def __init__(self, key: rsa.RSAPrivateKey, instance_key: rsa.RSAPrivateKey) -> None:
        self.key, self.instance_key, self.base = key, instance_key, ""
        self.known: dict[str, rsa.RSAPublicKey] = {}
        self.inbox: list[tuple[str, str, dict[str, Any]]] = []  # (verdict, key id, activity)

    actor = property(lambda self: f"{self.base}/users/blog")
    key_id = property(lambda self: f"{self.base}/users/blog#main-key")
    instance_key_id = property(lambda self: f"{self.base}/actor#main-key")

    def document(self, path: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
        actor = self.base + path
        public = {
            "id": f"{actor}#main-key",
            "owner": actor,
            "publicKeyPem": httpsig.public_pem(key),
        }
        return {"id": actor, "type": "Service", "inbox": f"{actor}/inbox", "publicKey": public}

    async def get(self, request: web.Request) -> web.Response:
        key = self.key if request.path == "/users/blog" else self.instance_key
        return web.json_response(
            self.document(request.path, key), content_type="application/activity+json"
        )

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = httpsig.Request("POST", request.raw_path, request.headers, body)
        key_id = ""
        try:
            pending = httpsig.check_request(received, now=datetime.now(UTC))
            key_id = pending.key_id
            pending.holds(self.known[key_id])
            verdict = "ok"
        except httpsig.SignatureRejected as error:
            verdict = error.reason
        self.inbox.append((verdict, key_id, json.loads(body)))
        return web.Response(status=202 if verdict == "ok" else 401)

    def headers(self, method: str, url: str, body: bytes = b"", **options: Any) -> dict[str, str]:
        """Headers of a request signed as the blog actor."""
        key_id = options.pop("key_id", self.key_id)
        now = datetime.now(UTC)
        signed, _ = sign_request(method, url, body, key=self.key, key_id=key_id, now=now, **options)
        return signed


@pytest.fixture
async def world(
    serve: Callable[[web.Application], Awaitable[str]], keys: list[rsa.RSAPrivateKey]
) -> AsyncIterator[tuple[FakeServer, StandIn, aiohttp.ClientSession]]:
    """Fakes mastodon.test (alice, bob) and misskey.test (carol) on one server, the
    stand-in bridge, and a client session that resolves only their names."""
    bridge = StandIn(keys[0], keys[1])
    app = web.Application()
    app.router.add_get("/users/blog", bridge.get)
    app.router.add_get("/actor", bridge.get)
    app.router.add_post("/users/blog/inbox", bridge.post)
    port = URL(await serve(app)).port
    bridge.base = f"http://bridge.test:{port}"
    server = FakeServer(resolve={"bridge.test": LOOPBACK})
    mastodon = server.instance("mastodon.test", key=keys[2])
    for username in ("alice", "bob"):
        mastodon.add_actor(username, key=keys[2 if username == "alice" else 3])
    server.instance("misskey.test", key=keys[3]).add_actor("carol", key=keys[3], shared_inbox=False)
    async with server:
        resolver = MappingResolver({**server.names, "bridge.test": LOOPBACK})
        connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector) as client:
            yield server, bridge, client


async def deliver(
    client: aiohttp.ClientSession,
    bridge: StandIn,
    url: str,
    activity: dict[str, Any],
    **options: Any,
) -> int:
    body = json.dumps(activity).encode()
    async with client.post(
        url, data=body, headers=bridge.headers("POST", url, body, **options)
    ) as response:
        return response.status


def create(bridge: StandIn, number: int = 1) -> dict[str, Any]:
    return {"id": f"{bridge.actor}/activities/{number}", "type": "Create", "actor": bridge.actor}


async def test_a_signed_delivery_is_verified_against_the_key_fetched_from_the_bridge(
    world: Any,
) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    alice = mastodon.actors["alice"]
    for scheme in ("cavage", "rfc9421"):
        assert (
            await deliver(client, bridge, alice.shared_inbox, create(bridge), scheme=scheme) == 202
        )
    first, second = mastodon.received
    assert (first.verdict.ok, first.verdict.scheme, first.verdict.key_id) == (
        True,
        "cavage",
        bridge.key_id,
    )
    assert (second.verdict.scheme, second.type, second.url) == (
        "rfc9421",
        "Create",
        alice.shared_inbox,
    )
    assert mastodon.keys.fetched == [bridge.key_id]  # fetched once, then cached
    assert mastodon.activities_of_type("Create") == [create(bridge)] * 2


async def test_a_bad_delivery_is_answered_401_with_its_reason(world: Any) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    inbox = mastodon.actors["alice"].inbox
    stranger = {**create(bridge), "actor": f"{bridge.base}/users/other"}
    assert await deliver(client, bridge, inbox, stranger) == 401
    assert (
        await deliver(client, bridge, inbox, create(bridge), tamper=Tamper(omit=("digest",))) == 401
    )
    assert await deliver(client, bridge, inbox, create(bridge), key_id="http://10.0.0.1/key") == 401
    elsewhere = inbox.replace(f":{server.port}/", ":9/")  # signed for another port
    body = json.dumps(create(bridge)).encode()
    headers = bridge.headers("POST", elsewhere, body)
    async with client.post(inbox, data=body, headers=headers) as response:
        assert response.status == 401
    reasons = [entry.verdict.reason for entry in mastodon.received]
    assert "not the activity's actor" in reasons[0]
    assert reasons[1] == "digest is not signed"
    assert "unreachable" in reasons[2] and "10.0.0.1" in reasons[2]
    assert reasons[3] == "addressed to mastodon.test:9, not to us"
    assert mastodon.deliveries() == []
    assert mastodon.keys.fetched == [bridge.key_id, "http://10.0.0.1/key"]


async def test_a_rotated_key_is_fetched_again_once(
    world: Any, keys: list[rsa.RSAPrivateKey]
) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    inbox = mastodon.actors["alice"].inbox
    assert await deliver(client, bridge, inbox, create(bridge, 1)) == 202
    bridge.key = keys[3]
    assert await deliver(client, bridge, inbox, create(bridge, 2)) == 202
    assert mastodon.keys.fetched == [bridge.key_id, bridge.key_id]


async def test_virtual_hosts_route_by_host_and_serve_mastodon_shaped_actors(world: Any) -> None:
    server, _, client = world
    mastodon, misskey = server.instances["mastodon.test"], server.instances["misskey.test"]
    alice = mastodon.actors["alice"]
    assert mastodon.base == f"http://mastodon.test:{server.port}"
    async with client.get(alice.id) as response:
        assert response.content_type == "application/activity+json"
        document = await response.json()
    assert document["@context"][:2] == [
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1",
    ]
    assert document["publicKey"] == {
        "id": alice.key_id,
        "owner": alice.id,
        "publicKeyPem": alice.public_pem,
    }
    assert (document["id"], document["preferredUsername"], document["inbox"]) == (
        alice.id,
        "alice",
        alice.inbox,
    )
    assert document["endpoints"] == {"sharedInbox": f"{mastodon.base}/inbox"}
    assert "endpoints" not in misskey.actors["carol"].document()
    async with client.get(f"{misskey.base}/users/alice") as response:
        assert response.status == 404  # alice lives on mastodon.test only
    url = f"http://127.0.0.1:{server.port}/users/alice"
    async with client.get(url, headers={"Host": f"pleroma.test:{server.port}"}) as response:
        assert response.status == 421
    webfinger = f"{mastodon.base}/.well-known/webfinger?resource=acct:alice@mastodon.test"
    async with client.get(webfinger) as response:
        links = (await response.json())["links"]
    assert links == [{"rel": "self", "type": "application/activity+json", "href": alice.id}]


async def test_failure_knob_answers_503_with_retry_after_then_recovers(world: Any) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    mastodon.fail_with(503, count=2, retry_after="120")
    inbox = mastodon.actors["bob"].inbox
    async with client.post(
        inbox, data=b"{}", headers=bridge.headers("POST", inbox, b"{}")
    ) as response:
        assert (response.status, response.headers["Retry-After"]) == (503, "120")
    statuses = [await deliver(client, bridge, inbox, create(bridge)) for _ in range(2)]
    assert statuses == [503, 202]
    assert [e.verdict.reason for e in mastodon.received[:2]] == ["not checked"] * 2
    mastodon.fail_with(500)
    assert await deliver(client, bridge, mastodon.actors["bob"].inbox, create(bridge)) == 500
    mastodon.clear_failures()
    assert await deliver(client, bridge, mastodon.actors["bob"].inbox, create(bridge)) == 202


async def test_gone_accounts_answer_410(world: Any) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    bob = mastodon.actors["bob"]
    mastodon.gone(bob)
    assert await deliver(client, bridge, bob.inbox, create(bridge)) == 410
    async with client.get(bob.id) as response:
        assert response.status == 410


async def test_cavage_only_servers_refuse_rfc9421(world: Any) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    mastodon.reject_rfc9421 = True
    inbox = mastodon.actors["alice"].shared_inbox
    assert await deliver(client, bridge, inbox, create(bridge), scheme="rfc9421") == 401
    assert await deliver(client, bridge, inbox, create(bridge), scheme="cavage") == 202


async def test_authorized_fetch_demands_a_signature_checked_with_the_fetched_key(
    world: Any,
) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    mastodon.require_signed_fetch = True
    alice = mastodon.actors["alice"]
    async with client.get(alice.id) as response:
        assert response.status == 401
    async with client.get(f"{mastodon.base}/actor") as response:
        assert response.status == 200  # the instance actor stays readable
    async with client.get(
        alice.id, headers=bridge.headers("GET", alice.id, key_id=bridge.key_id)
    ) as response:
        assert response.status == 200
    seen = [(fetch.url, fetch.status, fetch.verdict.reason) for fetch in mastodon.fetches]
    assert seen == [
        (alice.id, 401, "unsigned"),
        (f"{mastodon.base}/actor", 200, "not checked"),
        (alice.id, 200, "ok"),
    ]


async def test_follow_accept_undo_and_the_followers_digest(world: Any) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    alice, bob = mastodon.actors["alice"], mastodon.actors["bob"]
    bridge.known = {actor.key_id: actor.key.public_key() for actor in (alice, bob)}
    follows = [mastodon.follow(actor, bridge.actor) for actor in (alice, bob)]
    for actor, follow, scheme in zip((alice, bob), follows, ("rfc9421", "cavage"), strict=True):
        assert await mastodon.send(actor, f"{bridge.actor}/inbox", follow, scheme=scheme) == (
            202,
            "",
        )
        accept = {
            "id": f"{follow['id']}/accept",
            "type": "Accept",
            "actor": bridge.actor,
            "object": follow,
        }
        assert await deliver(client, bridge, actor.inbox, accept) == 202
    assert [(verdict, key_id) for verdict, key_id, _ in bridge.inbox] == [
        ("ok", alice.key_id),
        ("ok", bob.key_id),
    ]
    assert mastodon.following(alice) == {bridge.actor}
    xor = int.from_bytes(hashlib.sha256(alice.id.encode()).digest(), "big") ^ int.from_bytes(
        hashlib.sha256(bob.id.encode()).digest(), "big"
    )
    assert mastodon.followers_digest(bridge.actor) == f"{xor:064x}"
    assert await mastodon.send(bob, f"{bridge.actor}/inbox", bob.undo(follows[1])) == (202, "")
    assert mastodon.following(bob) == set()
    broken = Tamper(key_of=alice)
    assert (await mastodon.send(bob, f"{bridge.actor}/inbox", follows[1], tamper=broken))[0] == 202
    assert bridge.inbox[-1][:2] == ("ok", alice.key_id)


async def test_duplicates_counts_and_waits(world: Any) -> None:
    server, bridge, client = world
    for name, inbox in (("mastodon.test", "/inbox"), ("misskey.test", "/users/carol/inbox")):
        url = server.instances[name].base + inbox
        for number in (1, 1, 2):
            assert await deliver(client, bridge, url, create(bridge, number)) == 202
    mastodon_inbox = server.instances["mastodon.test"].base + "/inbox"
    assert server.log.by_host == {"mastodon.test": 3, "misskey.test": 3}
    assert server.log.by_inbox[mastodon_inbox] == 3
    assert server.log.duplicates() == {
        (mastodon_inbox, f"{bridge.actor}/activities/1"): 2,
        (
            server.instances["misskey.test"].base + "/users/carol/inbox",
            f"{bridge.actor}/activities/1",
        ): 2,
    }
    found = await server.log.wait_for(lambda entry: entry.host == "misskey.test")
    assert found.activity_id == f"{bridge.actor}/activities/1"
    with pytest.raises(AssertionError, match="6 requests came"):
        await server.log.wait_for(lambda entry: entry.type == "Delete", timeout=0.05)


async def test_a_fleet_shares_one_port_and_the_fakes_stay_on_loopback() -> None:
    async with FakeServer() as server:
        actors = server.fleet(3, 2)
        assert len(actors) == 6 and sorted(server.names) == [
            "host0.test",
            "host1.test",
            "host2.test",
        ]
        assert {actor.shared_inbox for actor in actors} == {
            f"http://host{n}.test:{server.port}/inbox" for n in range(3)
        }
        host = server.instances["host0.test"]
        with pytest.raises(TripwireError):
            await host.send(actors[0], "http://10.1.2.3/inbox", {"type": "Follow"})
        status, document = await host.fetch(actors[5].id)  # one fake reads another
        assert (status, document["id"]) == (200, actors[5].id)


async def test_a_lone_instance_starts_its_own_server() -> None:
    async with FakeInstance("alone.test") as alone:
        carl = alone.add_actor("carl")
        status, document = await alone.fetch(carl.id, signed_by=carl)
        assert (status, document["preferredUsername"]) == (200, "carl")
        assert alone.fetches[-1].verdict.ok  # it verified its own actor's signed fetch


async def test_slow_hosts_count_concurrent_posts_and_redirects_are_not_followed(
    world: Any,
) -> None:
    server, bridge, client = world
    mastodon = server.instances["mastodon.test"]
    mastodon.delay = 0.1
    inbox = mastodon.actors["alice"].shared_inbox
    statuses = await asyncio.gather(
        *(deliver(client, bridge, inbox, create(bridge, n)) for n in range(3))
    )
    assert statuses == [202] * 3 and mastodon.peak_in_flight == 3 and mastodon.in_flight == 0
    await mastodon.wait_until(lambda: len(mastodon.deliveries()) == 3, timeout=1)
    mastodon.delay = 0
    mastodon.redirects["/keys/blog"] = bridge.actor  # a key URL that redirects to its actor
    assert (
        await deliver(client, bridge, inbox, create(bridge), key_id=f"{mastodon.base}/keys/blog")
        == 401
    )
    assert mastodon.received[-1].verdict.reason == f"key {mastodon.base}/keys/blog: HTTP 302"
