"""Answering follow requests and blocking domains: ``feedfed followers …`` and
``feedfed domains …``, run through their argparse registration against a running bridge,
with Accept and Reject delivered to fake instances that verify them.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.commands import followers as commands
from bridge.errors import ConfigError, FollowerNotFound
from bridge.federation import follows
from bridge.store.base import BlogSettings
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, World, fake_fediverse, running_bridge
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


# manual approval


async def test_manual_approval(
    bridge: InboxBridge, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    blog = bridge.blogs["diary"]
    await world.follow(bridge, handle="diary")
    await world.follow(bridge, world.bob, handle="diary")
    pending = await bridge.store.list_followers(blog.id, 10, state="pending")
    assert {f.actor_id for f in pending} == {world.alice.id, world.bob.id}
    assert await bridge.sent() == []
    assert await bridge.store.count_followers(blog.id) == 0

    assert await run_cli(bridge, "followers", "list", "diary", "--pending") == 0
    listing = capsys.readouterr().out
    assert world.alice.id in listing and "2 pending follow requests" in listing

    assert await run_cli(bridge, "followers", "approve", "diary", world.alice.id) == 0
    assert await run_cli(bridge, "followers", "reject", "@diary", world.bob.id) == 0
    assert await bridge.store.get_follower(blog.id, world.bob.id) is None
    approved = await bridge.store.get_follower(blog.id, world.alice.id)
    assert approved is not None and approved.state == "accepted"
    sent = await bridge.sent()
    assert [(a["type"], a["to"]) for a in sent] == [
        ("Accept", [world.alice.id]),
        ("Reject", [world.bob.id]),
    ]
    assert await bridge.deliver() == [202, 202]
    assert world.mastodon.following(world.alice) == {bridge.actor("diary")}
    [rejection] = world.social.received
    assert rejection.verdict.ok and rejection.type == "Reject"

    # A Follow from an accepted follower of a manual blog is accepted again at once.
    await world.follow(bridge, handle="diary")
    assert [a["type"] for a in await bridge.sent()] == ["Accept"]

    capsys.readouterr()
    assert await run_cli(bridge, "followers", "list", "diary") == 0
    assert "1 follower of" in capsys.readouterr().out
    with pytest.raises(FollowerNotFound):
        await follows.approve_follower(bridge.ctx, blog, world.bob.id)
    with pytest.raises(FollowerNotFound):
        await follows.reject_follower(bridge.ctx, blog, world.bob.id)


async def test_rejecting_an_accepted_follower_removes_it(bridge: InboxBridge, world: World) -> None:
    await world.follow(bridge)
    await bridge.deliver()
    blog = bridge.blogs["talkabout"]
    await follows.reject_follower(bridge.ctx, blog, world.alice.id)
    assert await bridge.store.get_follower(blog.id, world.alice.id) is None
    await bridge.deliver()
    assert world.mastodon.following(world.alice) == set()
    assert len(world.mastodon.follows) == 1 and world.mastodon.rejected


# domain blocks


async def test_blocking_a_domain_drops_its_followers_and_refuses_it(
    bridge: InboxBridge, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    await world.follow(bridge)
    await world.follow(bridge, handle="diary")
    await world.follow(bridge, world.bob)
    assert (
        await run_cli(bridge, "domains", "block", "https://MASTODON.test/@x", "--reason", "spam")
        == 0
    )
    assert "removed 2 follower(s)" in capsys.readouterr().out
    remaining = await bridge.store._rows("SELECT actor_id FROM followers")
    assert [row[0] for row in remaining] == [world.bob.id]
    status, _ = await world.mastodon.send(
        world.alice, bridge.inbox(None), world.mastodon.follow(world.alice, bridge.actor())
    )
    assert status == 403
    assert await run_cli(bridge, "domains", "list") == 0
    assert "mastodon.test" in capsys.readouterr().out
    assert await run_cli(bridge, "domains", "unblock", "mastodon.test") == 0
    assert await run_cli(bridge, "domains", "unblock", "mastodon.test") == 1
    await world.follow(bridge)
    assert await bridge.count("followers") == 2


def test_domains_are_normalised() -> None:
    assert commands.normalize_domain(" Bücher.DE. ") == "xn--bcher-kva.de"
    assert commands.normalize_domain("https://spam.example:8443/users/x") == "spam.example"
    for bad in ("com", "not a domain", "ftp://x.example/", ""):
        with pytest.raises(ConfigError, match="DOMAIN"):
            commands.normalize_domain(bad)
    assert commands.in_domain("a.spam.example", "spam.example")
    assert not commands.in_domain("notspam.example", "spam.example")


async def run_cli(bridge: InboxBridge, *argv: str) -> int:
    """Run a ``feedfed`` subcommand registered by :func:`commands.register`."""
    parser = argparse.ArgumentParser(prog="feedfed")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = await args.action(args)(bridge.ctx)
    return result
