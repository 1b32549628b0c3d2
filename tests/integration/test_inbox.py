"""The inboxes against fake fediverse instances: what is taken (202) and every refusal.

The bridge runs on a real server of 127.0.0.1; the senders are fake instances under test host
names with their own keys and their own signing code (tests/fakes/httpsig.py). For every bad
request the test checks the status and that nothing was stored, queued or fetched for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from bridge.activitypub.addresses import AddressPolicy
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, World, fake_fediverse, fake_key, running_bridge
from tests.fakes.instance import FakeInstance
from tests.fakes.instance_signing import Tamper
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[World]:
    async with fake_fediverse(resolver, clock) as fediverse:
        yield fediverse


def fetches_of(site: FakeInstance) -> int:
    """GETs of the site's actors (key and actor fetches by the bridge)."""
    return len(site.fetches)


# what is taken


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
@pytest.mark.parametrize("shared", [False, True])
async def test_signed_follow_is_stored_and_queued(
    bridge: InboxBridge, world: World, scheme: str, shared: bool
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    url = bridge.inbox(None if shared else "talkabout")
    status, _ = await world.mastodon.send(world.alice, url, follow, scheme=scheme)
    assert status == 202
    [stored] = await bridge.inbound()
    assert (stored.activity_id, stored.type, stored.actor_id) == (
        follow["id"],
        "Follow",
        world.alice.id,
    )
    assert stored.origin == world.mastodon.authority
    assert stored.payload == follow
    assert stored.blog_id == (None if shared else bridge.blogs["talkabout"].id)
    assert stored.state == "received"
    [job] = await bridge.queued("inbound")
    assert job.payload == {"inbound_id": stored.id}
    assert bridge.ctx.jobs_ready.is_set()
    # The key came with alice's actor document, which is cached for the Follow to come.
    key = await bridge.store.get_remote_key(world.alice.key_id)
    assert key is not None and key.owner == world.alice.id
    actor = await bridge.store.get_remote_actor(world.alice.id)
    assert actor is not None and actor.shared_inbox == world.alice.shared_inbox


async def test_the_bridge_signs_its_key_fetches_as_the_instance_actor(
    bridge: InboxBridge, world: World
) -> None:
    world.mastodon.require_signed_fetch = True  # authorized fetch
    follow = world.mastodon.follow(world.alice, bridge.actor())
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow)
    assert status == 202
    [fetch] = world.mastodon.fetches
    assert fetch.verdict.ok, fetch.verdict.reason
    assert fetch.verdict.key_id == bridge.ctx.urls.instance_key_id()


async def test_a_duplicate_is_answered_202_and_kept_once(bridge: InboxBridge, world: World) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    for _ in range(3):
        status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), follow)
        assert status == 202
    assert await bridge.count("inbound") == 1
    assert len(await bridge.queued("inbound")) == 1


async def test_types_not_handled_yet_are_taken_and_ignored(
    bridge: InboxBridge, world: World
) -> None:
    like = world.alice.activity("Flag", bridge.actor() + "/posts/abc")
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), like)
    assert status == 202
    await bridge.run_inbound()
    [stored] = await bridge.inbound()
    assert stored.state == "ignored"
    assert stored.error is not None and "Flag" in stored.error


async def test_an_actor_given_as_an_object_is_read_by_its_id(
    bridge: InboxBridge, world: World
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    follow["actor"] = {"id": world.alice.id, "type": "Person"}
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow)
    assert status == 202
    [stored] = await bridge.inbound()
    assert stored.actor_id == world.alice.id


async def test_hearing_from_a_host_makes_it_available_again(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    host = world.mastodon.authority
    await bridge.store.record_host_failure(host, clock())
    await bridge.store.mark_host_unavailable(host, clock())
    follow = world.mastodon.follow(world.alice, bridge.actor())
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow)
    assert status == 202
    health = await bridge.store.get_host(host)
    assert health is not None and not health.unavailable and health.failures == 0


# refusals: each with its status, and nothing stored, queued or sent


def sha256_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def _hours(clock: FakeClock, hours: float) -> Tamper:
    return Tamper(date=clock() + timedelta(hours=hours))


TAMPERINGS = {
    "unsigned": lambda w, c: Tamper(unsigned=True),
    "wrong digest": lambda w, c: Tamper(digest=sha256_digest(b"something else")),
    "digest not signed": lambda w, c: Tamper(omit=("digest",)),
    "date not signed": lambda w, c: Tamper(omit=("date",)),
    "target not signed": lambda w, c: Tamper(omit=("(request-target)",)),
    "stale date": lambda w, c: _hours(c, -2),
    "future date": lambda w, c: _hours(c, 2),
    "unknown algorithm": lambda w, c: Tamper(algorithm="rsa-sha512"),
    "hmac algorithm": lambda w, c: Tamper(algorithm="hmac-sha256"),
    "key of another actor": lambda w, c: Tamper(key_of=w.bob),
    "another actor's key id": lambda w, c: Tamper(key_id=w.bob.key_id),
    "body swapped after signing": lambda w, c: Tamper(
        body=json.dumps(w.mastodon.follow(w.alice, "http://127.0.0.1/other")).encode()
    ),
    "signed for another host": lambda w, c: Tamper(headers={"Host": "elsewhere.test"}),
    "garbage signature": lambda w, c: Tamper(headers={"Signature": 'keyId="x",,,=="'}),
    "signature without keyId": lambda w, c: Tamper(
        headers={"Signature": 'algorithm="rsa-sha256",headers="date",signature="AAAA"'}
    ),
    "oversized signature": lambda w, c: Tamper(
        headers={"Signature": 'keyId="' + "k" * 8000 + '",signature="AA=="'}
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
async def test_bad_signatures_are_refused_with_401(
    bridge: InboxBridge, world: World, clock: FakeClock, name: str
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    tamper = TAMPERINGS[name](world, clock)
    status, text = await world.mastodon.send(world.alice, bridge.inbox(), follow, tamper=tamper)
    assert status == 401, text
    assert "error" in json.loads(text)
    await bridge.assert_nothing_kept()


async def test_an_rfc9421_signature_without_the_digest_is_refused(
    bridge: InboxBridge, world: World
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    tamper = Tamper(omit=("content-digest",))
    status, _ = await world.mastodon.send(
        world.alice, bridge.inbox(), follow, scheme="rfc9421", tamper=tamper
    )
    assert status == 401
    await bridge.assert_nothing_kept()


async def test_a_key_document_that_redirects_is_refused(bridge: InboxBridge, world: World) -> None:
    # mastodon.test redirects /keys/alice to alice's actor: the key does not live at its id.
    world.mastodon.redirects["/keys/alice"] = world.alice.id
    key_id = world.mastodon.base + "/keys/alice"
    follow = world.mastodon.follow(world.alice, bridge.actor())
    status, _ = await world.mastodon.send(
        world.alice, bridge.inbox(), follow, tamper=Tamper(key_id=key_id)
    )
    assert status == 401
    await bridge.assert_nothing_kept()
    assert await bridge.store.get_remote_key(key_id) is None


async def test_a_key_id_on_a_private_address_is_refused_by_default(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
    world: World,
) -> None:
    async with running_bridge(sqlite_store, http, resolver, clock, policy=AddressPolicy()) as b:
        follow = world.mastodon.follow(world.alice, b.actor())
        status, text = await world.mastodon.send(world.alice, b.inbox(), follow)
        assert status == 401
        assert "address" in json.loads(text)["error"]
        await b.assert_nothing_kept()
    # The guard refused before connecting: mastodon.test never saw a request.
    assert fetches_of(world.mastodon) == 0


async def test_a_body_over_the_cap_is_refused_with_413(bridge: InboxBridge, world: World) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    follow["padding"] = "x" * (2 * 1024 * 1024)
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow)
    assert status == 413
    await bridge.assert_nothing_kept()
    assert fetches_of(world.mastodon) == 0


async def test_a_streamed_body_over_the_cap_is_cut_off(
    bridge: InboxBridge, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"id": "http://alice.test/x", "padding": "'
        for _ in range(40):
            yield b"x" * 64 * 1024

    # No Content-Length: the body arrives chunked and is counted as it is read.
    async with http.post(bridge.inbox(), data=chunks()) as response:
        assert response.status == 413
    await bridge.assert_nothing_kept()


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b"\xff\xfe\x00garbage",
        b'["an", "array"]',
        b'{"id": "http://a.test/1", "type": "Follow", "actor": NaN}',
        b"",
        b'{"unterminated": ',
    ],
)
async def test_bodies_that_are_no_json_object_get_400(
    bridge: InboxBridge, world: World, body: bytes
) -> None:
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), body)
    assert status == 400
    await bridge.assert_nothing_kept()


async def test_json_nested_ten_thousand_deep_gets_a_fast_400(
    bridge: InboxBridge, world: World
) -> None:
    body = b'{"id": "http://alice.test/1", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    started = time.perf_counter()
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), body)
    assert status == 400
    assert time.perf_counter() - started < 0.5
    await bridge.assert_nothing_kept()


@pytest.mark.parametrize(
    "change",
    [
        {"id": None},
        {"id": 42},
        {"type": None},
        {"type": ["Follow"]},
        {"actor": None},
        {"actor": "not a url"},
        {"actor": "ftp://alice.test/users/alice"},
        {"actor": {"type": "Person"}},
        {"actor": ["http://alice.test/users/alice"]},
    ],
)
async def test_activities_without_id_type_or_actor_get_400(
    bridge: InboxBridge, world: World, change: dict[str, object]
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    for key, value in change.items():
        if value is None:
            del follow[key]
        else:
            follow[key] = value
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow)
    assert status == 400
    await bridge.assert_nothing_kept()


@pytest.mark.parametrize("blocked", ["mastodon.test", "sub.mastodon.test"])
async def test_a_blocked_domain_gets_403(
    bridge: InboxBridge, world: World, clock: FakeClock, blocked: str
) -> None:
    await bridge.store.block_domain("mastodon.test", "spam", clock())
    site = world.mastodon
    actor = world.alice
    if blocked != "mastodon.test":
        site = world.server.instance(blocked, clock=clock, key=fake_key(20))
        actor = site.add_actor("sub", key=fake_key(3))
    follow = site.follow(actor, bridge.actor())
    status, _ = await site.send(actor, bridge.inbox(), follow)
    assert status == 403
    await bridge.assert_nothing_kept()
    assert fetches_of(site) == 0


async def test_a_blocked_key_host_gets_403(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    await bridge.store.block_domain("evil.test", None, clock())
    follow = world.mastodon.follow(world.alice, bridge.actor())
    tamper = Tamper(key_id=world.mallory.key_id)
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(), follow, tamper=tamper)
    assert status == 403
    await bridge.assert_nothing_kept()


async def test_the_inbox_of_an_unknown_account_gets_404(bridge: InboxBridge, world: World) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor("nobody"))
    status, _ = await world.mastodon.send(world.alice, bridge.inbox("nobody"), follow)
    assert status == 404
    await bridge.assert_nothing_kept()


async def test_nobody_may_claim_to_be_one_of_our_actors(bridge: InboxBridge, world: World) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    forged = {**follow, "actor": bridge.actor()}
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), forged)
    assert status == 401
    # Nor sign with a key id of ours (the bridge never fetches its own keys).
    tamper = Tamper(key_id=bridge.ctx.urls.key_id("talkabout"))
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), follow, tamper=tamper)
    assert status == 401
    await bridge.assert_nothing_kept()


async def test_an_activity_whose_actor_is_on_another_host_than_the_signer_is_refused(
    bridge: InboxBridge, world: World
) -> None:
    # mallory signs properly with her own key, but claims bob's Follow.
    follow = world.social.follow(world.bob, bridge.actor())
    status, _ = await world.evil.send(world.mallory, bridge.inbox(), follow)
    assert status == 401
    await bridge.assert_nothing_kept()


async def test_garbage_never_causes_a_server_error(
    bridge: InboxBridge, world: World, http: aiohttp.ClientSession
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    body = json.dumps(follow).encode()
    headers_variants: list[dict[str, str]] = [
        {},
        {"Signature": ""},
        {"Signature": 'keyId="ü",signature="ß"'},
        {"Signature": 'keyId="http://alice.test/users/alice#main-key"'},
        {"Signature": 'keyId="javascript:alert(1)",signature="AA=="'},
        {"Signature-Input": "sig=(", "Signature": "sig=:AA==:"},
        {"Signature-Input": 'sig=("@method");keyid="x"', "Signature": "sig=:!!:"},
        {"Signature-Input": 'sig=();keyid="http://unknown.test/k"', "Signature": "sig=:AA==:"},
        {"Authorization": "Signature garbage"},
        {"Digest": "SHA-256=***", "Signature": 'keyId="http://x.test/k",signature="AA=="'},
        {"Date": "yesterday", "Signature": 'keyId="http://x.test/k",signature="AA=="'},
    ]
    rng = os.urandom
    bodies = [body, rng(512), b"{}", b"null", b'{"id": "", "type": "", "actor": ""}']
    for headers in headers_variants:
        for payload in bodies:
            async with http.post(bridge.inbox(None), data=payload, headers=headers) as response:
                assert response.status < 500, (headers, payload[:40])
                assert response.status in (400, 401, 403, 404, 413)
    await bridge.assert_nothing_kept()
