"""The inbox's keys: fetched anew once when an actor rotates its key, failures remembered,
one fetch shared by concurrent requests; and account deletions whose keys are gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, World, fake_fediverse, fake_key
from tests.fakes.instance_signing import Tamper
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[World]:
    async with fake_fediverse(resolver, clock) as fediverse:
        yield fediverse


async def test_a_rotated_key_is_fetched_again_once(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    assert (await world.mastodon.send(world.alice, bridge.inbox(), follow))[0] == 202
    assert len(world.mastodon.fetches) == 1
    clock.advance(bridge.ctx.config.limits.key_refresh_interval + 1)
    # alice's server gives her a new key: the cached one no longer verifies her signatures.
    rotated = world.mastodon.add_actor("alice", key=fake_key(4))
    again = world.mastodon.follow(rotated, bridge.actor())
    assert (await world.mastodon.send(rotated, bridge.inbox(), again))[0] == 202
    assert len(world.mastodon.fetches) == 2
    key = await bridge.store.get_remote_key(rotated.key_id)
    assert key is not None and key.public_pem == rotated.public_pem
    # A signature that fails right after a refetch does not cause another one.
    forged = world.mastodon.follow(rotated, bridge.actor())
    tamper = Tamper(key_of=world.mallory, key_id=rotated.key_id)
    status, _ = await world.mastodon.send(rotated, bridge.inbox(), forged, tamper=tamper)
    assert status == 401
    assert len(world.mastodon.fetches) == 2


async def test_a_key_that_cannot_be_fetched_is_not_fetched_again_for_a_while(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    ghost = world.mastodon.add_actor("ghost", key=fake_key(5))
    del world.mastodon.actors["ghost"]  # its documents now answer 404
    for _ in range(5):
        follow = world.mastodon.follow(ghost, bridge.actor())
        status, _ = await world.mastodon.send(ghost, bridge.inbox(), follow)
        assert status == 401
    assert bridge.keys.fetches == 1
    clock.advance(bridge.ctx.config.limits.key_failure_ttl + 1)
    status, _ = await world.mastodon.send(ghost, bridge.inbox(), follow)
    assert status == 401
    assert bridge.keys.fetches == 2
    await bridge.assert_nothing_kept()


async def test_concurrent_requests_share_one_key_fetch(bridge: InboxBridge, world: World) -> None:
    follows = [world.mastodon.follow(world.alice, bridge.actor()) for _ in range(8)]
    results = await asyncio.gather(
        *(world.mastodon.send(world.alice, bridge.inbox(None), f) for f in follows)
    )
    assert [status for status, _ in results] == [202] * 8
    assert bridge.keys.fetches == 1
    assert await bridge.count("inbound") == 8


# account deletions


async def test_the_deletion_of_an_unknown_actor_is_dropped_unverified(
    bridge: InboxBridge, world: World
) -> None:
    world.mastodon.gone(world.alice)
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), world.alice.delete())
    assert status == 202
    await bridge.assert_nothing_kept()
    assert len(world.mastodon.fetches) == 0


async def test_the_deletion_of_a_known_actor_is_verified_with_the_kept_key(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    follow = world.mastodon.follow(world.alice, bridge.actor())
    assert (await world.mastodon.send(world.alice, bridge.inbox(), follow))[0] == 202
    await bridge.run_inbound()
    assert await bridge.store.get_follower(bridge.blogs["talkabout"].id, world.alice.id)
    # Much later the account is deleted: its key answers 410, the cached copy is stale.
    clock.advance(bridge.ctx.config.limits.key_cache_ttl + 1)
    world.mastodon.gone(world.alice)
    status, _ = await world.mastodon.send(world.alice, bridge.inbox(None), world.alice.delete())
    assert status == 202
    await bridge.run_inbound()
    assert await bridge.count("followers") == 0
    assert await bridge.store.get_remote_actor(world.alice.id) is None
    assert await bridge.store.get_remote_key(world.alice.key_id) is None
    # A forged deletion of a known actor is refused, even though the key is gone.
    bobs_follow = world.social.follow(world.bob, bridge.actor())
    assert (await world.social.send(world.bob, bridge.inbox(), bobs_follow))[0] == 202
    world.social.gone(world.bob)
    clock.advance(bridge.ctx.config.limits.key_cache_ttl + 1)
    tamper = Tamper(key_of=world.mallory, key_id=world.bob.key_id)
    status, _ = await world.social.send(
        world.bob, bridge.inbox(), world.bob.delete(), tamper=tamper
    )
    assert status == 401
