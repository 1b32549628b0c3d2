"""Following blogs from fake fediverse instances: Follow → Accept, approval, Undo, Reject,
account deletion and Move, and the ``feedfed followers`` / ``domains`` commands.

Activities go through the real inbox (signed by the fakes' own code), are processed by the
``inbound`` job handler, and what the bridge sends back is delivered by the real delivery
handler to the fake instances, which verify its signature with their independent code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bridge.errors import Rejected, RetryLater
from bridge.federation.delivery import Deliverer
from bridge.federation.dispatch import process_inbound
from bridge.jobs import DELIVER, INBOUND, Handler
from bridge.jobs.worker import JobWorker
from bridge.store.base import BlogSettings
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, World, fake_fediverse, fake_key, running_bridge
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[World]:
    async with fake_fediverse(resolver, clock) as fediverse:
        yield fediverse


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> AsyncIterator[InboxBridge]:
    blogs = {"talkabout": BlogSettings(), "diary": BlogSettings(manually_approves_followers=True)}
    async with running_bridge(sqlite_store, http, resolver, clock, blogs=blogs) as running:
        yield running


# Follow → Accept


async def test_a_follow_is_accepted_and_the_accept_verifies_at_the_follower(
    bridge: InboxBridge, world: World
) -> None:
    activity = await world.follow(bridge)
    blog = bridge.blogs["talkabout"]
    follower = await bridge.store.get_follower(blog.id, world.alice.id)
    assert follower is not None
    assert (follower.state, follower.inbox, follower.shared_inbox, follower.follow_id) == (
        "accepted",
        world.alice.inbox,
        world.alice.shared_inbox,
        activity["id"],
    )
    assert await bridge.last_state() == ("processed", None)
    [accept] = await bridge.sent()
    assert accept["type"] == "Accept"
    assert accept["actor"] == bridge.actor()
    assert accept["id"].startswith(bridge.actor() + "/activities/")
    assert accept["object"] == {
        "id": activity["id"],
        "type": "Follow",
        "actor": world.alice.id,
        "object": bridge.actor(),
    }
    [job] = await bridge.queued(DELIVER)
    assert job.payload["inbox"] == world.alice.inbox  # the personal inbox, not the shared one
    assert await bridge.deliver() == [202]
    [received] = world.mastodon.received
    assert received.verdict.ok, received.verdict.reason
    assert received.verdict.key_id == bridge.ctx.urls.key_id("talkabout")
    assert world.mastodon.following(world.alice) == {bridge.actor()}
    # The followers collection counts alice now.
    status, collection = await world.mastodon.fetch(bridge.actor() + "/followers")
    assert status == 200 and collection["totalItems"] == 1


async def test_a_follower_without_shared_inbox_is_kept_with_its_own(
    bridge: InboxBridge, world: World
) -> None:
    await world.follow(bridge, world.bob)
    follower = await bridge.store.get_follower(bridge.blogs["talkabout"].id, world.bob.id)
    assert follower is not None and follower.shared_inbox is None
    assert follower.delivery_inbox == world.bob.inbox


async def test_a_repeated_follow_gets_a_fresh_accept(bridge: InboxBridge, world: World) -> None:
    await world.follow(bridge)
    again = await world.follow(bridge)
    accepts = await bridge.sent()
    assert [a["type"] for a in accepts] == ["Accept", "Accept"]
    assert accepts[0]["id"] != accepts[1]["id"]
    assert accepts[1]["object"]["id"] == again["id"]
    assert await bridge.count("followers") == 1


async def test_a_rerun_of_the_same_job_sends_the_same_accept_once(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    activity = world.mastodon.follow(world.alice, bridge.actor())
    assert (await world.mastodon.send(world.alice, bridge.inbox(None), activity))[0] == 202
    [job] = await bridge.store.claim_jobs([INBOUND], clock(), 1, 60, "test")
    await process_inbound(bridge.ctx, job)
    # The worker died before finishing the job; the row says processed, so nothing happens.
    await process_inbound(bridge.ctx, job)
    # Even when the outcome was not recorded yet, the Accept is the same and queued once.
    [stored] = await bridge.inbound()
    await bridge.store.mark_inbound(stored.id, "received")
    await process_inbound(bridge.ctx, job)
    assert len(await bridge.sent()) == 1


async def test_a_follow_of_something_else_is_ignored(bridge: InboxBridge, world: World) -> None:
    for target in (bridge.actor("nobody"), world.bob.id, bridge.ctx.urls.instance_actor()):
        activity = world.mastodon.follow(world.alice, target)
        await world.send(world.alice, bridge, activity)
        state, error = await bridge.last_state()
        assert state == "ignored" and error is not None
    assert await bridge.count("followers") == 0
    assert await bridge.sent() == []


async def test_a_follower_whose_actor_is_unreachable_is_retried(
    bridge: InboxBridge, world: World, clock: FakeClock
) -> None:
    activity = world.mastodon.follow(world.alice, bridge.actor())
    assert (await world.mastodon.send(world.alice, bridge.inbox(None), activity))[0] == 202
    # The actor document expires from the cache and alice's server is down by then.
    clock.advance(bridge.ctx.config.limits.actor_cache_ttl + 1)
    world.mastodon.redirects["/users/alice"] = "http://down.test:1/"
    [job] = await bridge.store.claim_jobs([INBOUND], clock(), 1, 60, "test")
    with pytest.raises(RetryLater):
        await process_inbound(bridge.ctx, job)
    assert (await bridge.last_state())[0] == "received"
    world.mastodon.redirects.clear()
    world.mastodon.gone(world.alice)
    with pytest.raises(Rejected):
        await process_inbound(bridge.ctx, job)
    state, error = await bridge.last_state()
    assert state == "failed" and error is not None and "410" in error
    assert await bridge.count("followers") == 0


# ending a follow


@pytest.mark.parametrize("embedded", [True, False])
async def test_undo_follow_removes_the_follower(
    bridge: InboxBridge, world: World, embedded: bool
) -> None:
    activity = await world.follow(bridge)
    undo = world.alice.undo(activity) if embedded else world.alice.activity("Undo", activity["id"])
    await world.send(world.alice, bridge, undo)
    assert await bridge.last_state() == ("processed", None)
    assert await bridge.count("followers") == 0


async def test_nobody_can_undo_someone_elses_follow(bridge: InboxBridge, world: World) -> None:
    activity = await world.follow(bridge)
    # bob, properly signed, sends an Undo of alice's Follow.
    await world.send(world.bob, bridge, world.bob.undo(activity))
    state, error = await bridge.last_state()
    assert state == "ignored" and error is not None and "not the signer's" in error
    await world.send(world.bob, bridge, world.bob.activity("Undo", activity["id"]))
    assert (await bridge.last_state())[0] == "ignored"
    assert await bridge.count("followers") == 1


async def test_undo_of_something_else_is_ignored(bridge: InboxBridge, world: World) -> None:
    await world.follow(bridge)
    like = world.alice.activity("Like", bridge.actor() + "/posts/x")
    await world.send(world.alice, bridge, world.alice.undo(like))
    state, error = await bridge.last_state()
    assert state == "ignored" and error is not None and "Like" in error
    assert await bridge.count("followers") == 1


@pytest.mark.parametrize("direction", ["their follow", "the blog's follow", "by id"])
async def test_reject_of_a_follow_ends_the_relationship(
    bridge: InboxBridge, world: World, direction: str
) -> None:
    activity = await world.follow(bridge)
    inner: Any = {
        "their follow": {k: v for k, v in activity.items() if k != "@context"},
        "the blog's follow": {"type": "Follow", "actor": bridge.actor(), "object": world.alice.id},
        "by id": activity["id"],
    }[direction]
    await world.send(world.alice, bridge, world.alice.activity("Reject", inner))
    assert await bridge.last_state() == ("processed", None)
    assert await bridge.count("followers") == 0


# account deletion and moves


async def test_an_actor_deleting_itself_leaves_every_blog(
    bridge: InboxBridge, world: World
) -> None:
    await world.follow(bridge)
    await world.follow(bridge, handle="diary")
    await world.follow(bridge, world.bob)
    await world.send(world.alice, bridge, world.alice.delete())
    assert await bridge.last_state() == ("processed", None)
    remaining = await bridge.store._rows("SELECT actor_id FROM followers")
    assert [row[0] for row in remaining] == [world.bob.id]
    assert await bridge.store.get_remote_actor(world.alice.id) is None
    assert await bridge.store.get_remote_key(world.alice.key_id) is None


async def test_deleting_an_object_is_not_deleting_the_actor(
    bridge: InboxBridge, world: World
) -> None:
    await world.follow(bridge)
    deletion = world.alice.activity("Delete", world.mastodon.base + "/notes/1")
    await world.send(world.alice, bridge, deletion)
    assert (await bridge.last_state())[0] == "ignored"
    assert await bridge.count("followers") == 1


async def test_a_move_to_an_account_that_confirms_it_moves_the_follows(
    bridge: InboxBridge, world: World
) -> None:
    await world.follow(bridge)
    await world.follow(bridge, handle="diary")
    new = world.social.add_actor("alice", key=fake_key(2), also_known_as=[world.alice.id])
    await world.send(world.alice, bridge, world.alice.move(new.id))
    assert await bridge.last_state() == ("processed", None)
    for handle, state in (("talkabout", "accepted"), ("diary", "pending")):
        blog = bridge.blogs[handle]
        assert await bridge.store.get_follower(blog.id, world.alice.id) is None
        moved = await bridge.store.get_follower(blog.id, new.id)
        assert moved is not None
        assert (moved.state, moved.inbox, moved.shared_inbox) == (
            state,
            new.inbox,
            new.shared_inbox,
        )


async def test_a_move_to_an_account_that_does_not_confirm_it_is_ignored(
    bridge: InboxBridge, world: World
) -> None:
    await world.follow(bridge)
    new = world.social.add_actor("alice", key=fake_key(2))  # no alsoKnownAs
    await world.send(world.alice, bridge, world.alice.move(new.id))
    state, error = await bridge.last_state()
    assert state == "ignored" and error is not None and "alsoKnownAs" in error
    assert await bridge.count("followers") == 1
    # Nor can anyone move another account.
    hijack = {**world.bob.move(world.bob.id), "object": world.alice.id}
    await world.send(world.bob, bridge, hijack)
    assert (await bridge.last_state())[0] == "ignored"
    assert await bridge.store.get_follower(bridge.blogs["talkabout"].id, world.alice.id)


# end to end, with the worker


async def test_end_to_end_with_the_job_worker(bridge: InboxBridge, world: World) -> None:
    deliverer = Deliverer(timeout=5)
    handlers: dict[str, Handler] = {INBOUND: process_inbound, DELIVER: deliverer}
    worker = JobWorker(bridge.ctx, handlers, worker_id="e2e", poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        activity = world.mastodon.follow(world.alice, bridge.actor())
        status, _ = await world.mastodon.send(world.alice, bridge.inbox(), activity)
        assert status == 202
        accept = await world.mastodon.wait_for(lambda r: r.type == "Accept", timeout=5)
        assert accept.verdict.ok, accept.verdict.reason
        assert accept.activity["object"]["id"] == activity["id"]
        assert world.mastodon.following(world.alice) == {bridge.actor()}
        undo = world.alice.undo(activity)
        assert (await world.mastodon.send(world.alice, bridge.inbox(), undo))[0] == 202
        for _ in range(100):
            if await bridge.count("followers") == 0:
                break
            await asyncio.sleep(0.02)
        assert await bridge.count("followers") == 0
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        deliverer.close()
