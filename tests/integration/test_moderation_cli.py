"""``feedfed moderation list|approve|reject|block``, ``blocklist import`` and ``threads
refresh``, parsed as the CLI parses them and run against a bridge fed by fake instances."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bridge.commands import moderation
from bridge.errors import CommentNotFound
from bridge.jobs import DELIVER
from bridge.store.base import BlogSettings, NewJob
from bridge.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.fakes.inbox_bridge import InboxBridge, running_bridge
from tests.fakes.note_instances import NoteWorld, add_post, create, note, note_fediverse
from tests.fakes.resolver import MappingResolver


@pytest.fixture
async def world(resolver: MappingResolver, clock: FakeClock) -> AsyncIterator[NoteWorld]:
    async with note_fediverse(resolver, clock) as fediverse:
        yield fediverse


@pytest.fixture
async def bridge(
    sqlite_store: SQLiteStore,
    http: aiohttp.ClientSession,
    resolver: MappingResolver,
    clock: FakeClock,
) -> AsyncIterator[InboxBridge]:
    blogs = {"talkabout": BlogSettings(moderation="hold_first_time")}
    async with running_bridge(sqlite_store, http, resolver, clock, blogs=blogs) as running:
        yield running


async def feedfed(bridge: InboxBridge, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="feedfed")
    moderation.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(await args.action(args)(bridge.ctx))


async def test_list_approve_and_reject_the_queue(
    bridge: InboxBridge, world: NoteWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    _, article = await add_post(bridge)
    first = note(world.alice, "<p>Zum ersten Mal hier</p>", in_reply_to=article)
    second = note(world.bob, "<p>Ich auch</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, first))
    await world.send(world.bob, bridge, create(world.bob, second))
    assert await feedfed(bridge, "moderation", "list") == 0
    out = capsys.readouterr().out
    assert first["id"] in out and second["id"] in out
    assert "first comment by this author" in out and out.endswith(
        "2 comments (held, spam, duplicate)\n"
    )
    assert await feedfed(bridge, "moderation", "approve", first["id"]) == 0
    assert await feedfed(bridge, "moderation", "reject", second["id"]) == 0
    approved = await bridge.store.get_comment(first["id"])
    rejected = await bridge.store.get_comment(second["id"])
    assert approved is not None and approved.state == "published"
    assert rejected is not None and rejected.state == "rejected"
    capsys.readouterr()
    await feedfed(bridge, "moderation", "list", "talkabout", "--state", "published")
    assert first["id"] in capsys.readouterr().out
    # An approved author is no first-timer any more: the next comment is published.
    later = note(world.alice, "<p>Wieder da</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, later))
    latest = await bridge.store.get_comment(later["id"])
    assert latest is not None and latest.state == "published"
    with pytest.raises(CommentNotFound):
        await feedfed(bridge, "moderation", "approve", "https://nowhere.test/x")


async def test_blocking_an_actor_removes_its_comments_reactions_and_follows(
    bridge: InboxBridge, world: NoteWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    stored, article = await add_post(bridge)
    blog = bridge.blogs["talkabout"]
    await world.send(world.bob, bridge, world.social.follow(world.bob, bridge.actor()))
    reply = note(world.bob, "<p>Hallo</p>", in_reply_to=article)
    await world.send(world.bob, bridge, create(world.bob, reply))
    await world.send(world.bob, bridge, world.bob.activity("Like", article))
    follow = await bridge.store.get_follower(blog.id, world.bob.id)
    assert follow is not None
    # A post on its way to bob when he is blocked does not reach him any more.
    payload = {"blog": blog.handle, "inbox": follow.delivery_inbox, "activity_id": article}
    await bridge.store.enqueue([NewJob(DELIVER, payload, host="social.test")], bridge.ctx.clock())
    assert await feedfed(bridge, "moderation", "block", world.bob.id, "--reason", "Troll") == 0
    assert "cancelled 1 queued delivery(ies)" in capsys.readouterr().out
    (cancelled,) = await bridge.store.list_jobs("done", DELIVER)
    assert cancelled.payload == payload
    assert cancelled.last_error == "cancelled: no follower at this inbox"
    gone = await bridge.store.get_comment(reply["id"])
    assert gone is not None and gone.state == "deleted"
    assert await bridge.store.count_reactions(blog.id, stored.entry_id, "like") == 0
    assert await bridge.store.get_follower(blog.id, world.bob.id) is None
    assert await bridge.store.is_actor_blocked(world.bob.id)
    # What it sends afterwards is not stored.
    again = note(world.bob, "<p>Noch einmal</p>", in_reply_to=article)
    await world.send(world.bob, bridge, create(world.bob, again))
    assert await bridge.store.get_comment(again["id"]) is None


async def test_blocking_a_domain_removes_what_its_actors_left(
    bridge: InboxBridge, world: NoteWorld
) -> None:
    stored, article = await add_post(bridge)
    blog = bridge.blogs["talkabout"]
    reply = note(world.mallory, "<p>Hallo</p>", in_reply_to=article)
    await world.send(world.mallory, bridge, create(world.mallory, reply))
    await world.send(world.mallory, bridge, world.mallory.activity("Announce", article))
    await world.send(world.alice, bridge, world.alice.activity("Announce", article))
    assert await feedfed(bridge, "moderation", "block", "evil.test") == 0
    gone = await bridge.store.get_comment(reply["id"])
    assert gone is not None and gone.state == "deleted"
    assert await bridge.store.count_reactions(blog.id, stored.entry_id, "boost") == 1
    assert await bridge.store.is_domain_blocked("evil.test")


async def test_blocklist_import_blocks_suspended_and_limits_silenced_servers(
    bridge: InboxBridge, tmp_path: Path, capsys: pytest.CaptureFixture[str], world: NoteWorld
) -> None:
    csv = tmp_path / "blocks.csv"
    csv.write_text(
        "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n"
        "evil.test,suspend,true,true,Spam,false\n"
        "mastodon.test,silence,false,false,,false\n"
        "ex**ple.com,suspend,false,false,,true\n",
        encoding="utf-8",
    )
    assert await feedfed(bridge, "blocklist", "import", str(csv), "--dry-run") == 0
    assert "would block evil.test" in capsys.readouterr().out
    assert await bridge.store.domain_block_severity("evil.test") is None
    assert await feedfed(bridge, "blocklist", "import", str(csv)) == 0
    assert await bridge.store.domain_block_severity("evil.test") == "block"
    assert await bridge.store.domain_block_severity("mastodon.test") == "limit"
    _, article = await add_post(bridge)
    reply = note(world.alice, "<p>limitiert</p>", in_reply_to=article)
    await world.send(world.alice, bridge, create(world.alice, reply))
    held = await bridge.store.get_comment(reply["id"])
    assert held is not None and "server limited by the operator" in held.reasons


async def test_threads_refresh_stores_replies_found_below_known_comments(
    bridge: InboxBridge, world: NoteWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    _, article = await add_post(bridge)
    replies_url = f"{world.alice.id}/replies-of-first"
    first = note(world.alice, "<p>A</p>", in_reply_to=article, replies=replies_url)
    await world.send(world.alice, bridge, create(world.alice, first))
    answer = world.mastodon.publish(note(world.alice, "<p>A2</p>", in_reply_to=first["id"]))
    world.mastodon.publish({"id": replies_url, "type": "Collection", "items": [answer]})
    assert await feedfed(bridge, "threads", "refresh", article) == 0
    assert capsys.readouterr().out.endswith(f"1 new comment(s) on {article}\n")
    found = await bridge.store.get_comment(answer["id"])
    assert found is not None and found.parent_id == first["id"]


def test_policy_takes_the_mode_from_the_config_file_for_declared_blogs(
    bridge: InboxBridge,
) -> None:
    from dataclasses import replace

    from bridge.backfeed.moderation_facts import policy_for
    from tests.conftest import make_config

    config = make_config(
        blogs=[
            {"handle": "talkabout", "feed_url": "https://a.example/feed", "moderation": "hold_all"}
        ],
        moderation={"keywords": [" Viagra "], "max_links": 1, "duplicate_window": 60},
    )
    stored = bridge.blogs["talkabout"]
    assert policy_for(config, stored).mode == "hold_first_time"  # added by the CLI: its own
    policy = policy_for(config, replace(stored, from_config=True))
    assert (policy.mode, policy.keywords, policy.max_links, policy.duplicate_window) == (
        "hold_all",
        ("Viagra",),
        1,
        60.0,
    )
